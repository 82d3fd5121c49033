using System.Diagnostics;
using Mtcp.Stack;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Interop.Tests;

/// <summary>The application side of one engine connection, called by the driver with the engine locked.</summary>
internal interface IEngineApplication
{
    /// <summary>Reads, writes, polls events and closes as the application sees fit; must not block.</summary>
    void Pump(Instant now, TcpConnection connection);

    /// <summary>True once the application has done everything it set out to do.</summary>
    bool Finished { get; }
}

/// <summary>
/// Runs one <see cref="TcpConnection"/> over an <see cref="IPacketTransport"/> in real time, as the
/// quinn-style sans-IO contract asks: a receive thread decodes each segment with the codec (checksum
/// verified over the pseudo-header) and feeds <see cref="TcpConnection.HandleSegment"/>; a pump thread
/// fires due timers, lets the application act, and drains <see cref="TcpConnection.PollTransmit"/>
/// into the transport, then sleeps until the next deadline or the next segment.
/// </summary>
internal sealed class TransportConnectionDriver : IDisposable
{
    private static readonly TimeSpan ReceivePollInterval = TimeSpan.FromMilliseconds(100);
    private const int MaxIdleWaitMilliseconds = 20;

    private readonly IPacketTransport _transport;
    private readonly TcpConnection _connection;
    private readonly IEngineApplication _application;
    private readonly object _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly byte[] _payload = new byte[TcpSegmentRepr.MaxSegmentLength];
    private readonly byte[] _segment = new byte[TcpSegmentRepr.MaxSegmentLength];
    private readonly long[] _rejectedByError = new long[Enum.GetValues<WireError>().Length];
    private readonly Thread _receiver;
    private readonly Thread _pump;
    private IpAddress _remoteAddress;
    private bool _remoteKnown;
    private bool _inputPending;
    private volatile bool _stopping;
    private Exception? _failure;

    private TransportConnectionDriver(IPacketTransport transport, TcpConnection connection, IEngineApplication application, IpAddress? remoteAddress)
    {
        _transport = transport;
        _connection = connection;
        _application = application;
        if (remoteAddress is { } remote)
        {
            _remoteAddress = remote;
            _remoteKnown = true;
        }

        _receiver = new Thread(ReceiveLoop) { IsBackground = true, Name = "engine receive" };
        _pump = new Thread(PumpLoop) { IsBackground = true, Name = "engine pump" };
        _receiver.Start();
        _pump.Start();
    }

    /// <summary>Serves one passive open on <paramref name="localPort"/>; the first SYN fixes the peer.</summary>
    public static TransportConnectionDriver Listen(IPacketTransport transport, TcpConfig config, ushort localPort, SeqNumber iss, IEngineApplication application) =>
        new(transport, TcpConnection.Listen(config, localPort, iss), application, remoteAddress: null);

    /// <summary>Opens a connection from <paramref name="localPort"/> to the peer.</summary>
    public static TransportConnectionDriver Connect(
        IPacketTransport transport, TcpConfig config, ushort localPort, IpAddress remoteAddress, ushort remotePort, SeqNumber iss, IEngineApplication application) =>
        new(transport, TcpConnection.Connect(config, localPort, remotePort, iss, Instant.Zero), application, remoteAddress);

    /// <summary>Segments the codec refused, by reason (a bad checksum from a real peer would show here).</summary>
    public IReadOnlyDictionary<WireError, long> RejectedSegments
    {
        get
        {
            lock (_gate)
            {
                return Enum.GetValues<WireError>().Where(e => _rejectedByError[(int)e] > 0).ToDictionary(e => e, e => _rejectedByError[(int)e]);
            }
        }
    }

    public TcpConnectionStats Stats => _connection.Stats;

    public TcpState State
    {
        get
        {
            lock (_gate)
            {
                return _connection.State;
            }
        }
    }

    /// <summary>Reads a property of the engine under the driver's lock.</summary>
    public T Inspect<T>(Func<TcpConnection, T> read)
    {
        lock (_gate)
        {
            return read(_connection);
        }
    }

    /// <summary>Waits until the application finished and the connection reached CLOSED or TIME-WAIT; rethrows a driver failure.</summary>
    public bool WaitUntilFinished(TimeSpan timeout)
    {
        var deadline = _clock.Elapsed + timeout;
        lock (_gate)
        {
            while (!(_application.Finished && _connection.State is TcpState.Closed or TcpState.TimeWait) && _failure is null)
            {
                var remaining = deadline - _clock.Elapsed;
                if (remaining <= TimeSpan.Zero)
                {
                    return false;
                }

                Monitor.Wait(_gate, TimeSpan.FromMilliseconds(Math.Min(remaining.TotalMilliseconds, 100)));
            }

            return _failure is null ? true : throw new InvalidOperationException("the engine driver failed", _failure);
        }
    }

    private Instant Now() => new(_clock.Elapsed.Ticks / TimeSpan.TicksPerMicrosecond);

    private void ReceiveLoop()
    {
        var buffer = new byte[_transport.ReceiveBufferLength];
        try
        {
            while (!_stopping)
            {
                var outcome = _transport.Receive(buffer, ReceivePollInterval, out var received);
                if (outcome == ReceiveOutcome.Closed)
                {
                    return;
                }

                if (outcome == ReceiveOutcome.Received)
                {
                    Deliver(received.SliceOf(buffer.AsSpan()), received.Source, received.Destination);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void Deliver(ReadOnlySpan<byte> bytes, IpAddress source, IpAddress destination)
    {
        var parsed = TcpSegmentRepr.TryParse(bytes, source, destination, ChecksumPolicy.Verify, out var header, out var payloadOffset, out var error);
        lock (_gate)
        {
            if (!parsed)
            {
                _rejectedByError[(int)error]++;
                return;
            }

            if (header.DestinationPort != _connection.LocalPort)
            {
                return;
            }

            if (!_remoteKnown)
            {
                _remoteAddress = source;
                _remoteKnown = true;
            }
            else if (source != _remoteAddress)
            {
                return;
            }

            _connection.HandleSegment(Now(), header, bytes[payloadOffset..]);
            _inputPending = true;
            Monitor.PulseAll(_gate);
        }
    }

    private void PumpLoop()
    {
        try
        {
            lock (_gate)
            {
                while (!_stopping)
                {
                    var now = Now();
                    if (_connection.PollTimeout() is { } due && due <= now)
                    {
                        _connection.HandleTimeout(now);
                    }

                    _application.Pump(now, _connection);
                    TransmitAll(now);
                    Monitor.PulseAll(_gate);

                    if (_inputPending)
                    {
                        _inputPending = false;
                        continue;
                    }

                    var wait = MaxIdleWaitMilliseconds;
                    if (_connection.PollTimeout() is { } next)
                    {
                        wait = (int)Math.Clamp(Math.Ceiling((next - Now()).TotalMilliseconds), 0, MaxIdleWaitMilliseconds);
                    }

                    if (wait > 0)
                    {
                        Monitor.Wait(_gate, wait);
                    }
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void TransmitAll(Instant now)
    {
        while (_connection.PollTransmit(now, _payload, out var header, out var length))
        {
            if (!_remoteKnown)
            {
                continue;
            }

            var written = header.Emit(_segment, _payload.AsSpan(0, length), _transport.LocalAddress, _remoteAddress);
            _transport.Send(_remoteAddress, _segment.AsSpan(0, written));
        }
    }

    private void Fail(Exception e)
    {
        lock (_gate)
        {
            _failure ??= e;
            Monitor.PulseAll(_gate);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }

        _pump.Join();
        _receiver.Join();
    }
}

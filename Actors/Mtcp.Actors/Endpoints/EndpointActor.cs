using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// One connection endpoint: owns one <see cref="TcpConnection"/> and is its only driver, in the sans-IO order the
/// engine asks for. Every input (a segment, an application command, the timer) is fed in with the time; then the
/// actor drains the engine's segments into the transport, its events into the application's stream, and arms its
/// one keyed timer at the engine's next deadline. Behaviours model the endpoint's lifecycle only (connecting,
/// active, closing); the TCP state machine stays in the engine.
/// </summary>
/// <remarks>
/// Segments go straight from this actor to the transport, which is thread-safe: a hop through the packet actor
/// would cost a message and a copy per segment and funnel every connection's output through one mailbox.
/// A migration adds lifecycle behaviours here (exporting, migrated away); the stream-facing channel stays.
/// </remarks>
internal sealed class EndpointActor : ReceiveActor, IWithTimers
{
    private const string TimerKey = "engine-deadline";

    private readonly EndpointContext _context;
    private readonly ConnectionKey _key;
    private readonly TcpConnection _connection;
    private readonly SegmentEncoder _encoder;
    private readonly EndpointChannel _channel;
    private readonly TaskCompletionSource<EndpointChannel>? _connectCompletion;
    private readonly CancellationToken _connectCancellation;
    private CancellationTokenRegistration _connectCancellationRegistration;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private Instant? _armedDeadline;
    private bool _peerFinished;

    public EndpointActor(EndpointContext context, ConnectionKey key, TaskCompletionSource<EndpointChannel>? connectCompletion, CancellationToken connectCancellation)
    {
        _context = context;
        _key = key;
        _connectCompletion = connectCompletion;
        _connectCancellation = connectCancellation;
        _encoder = new SegmentEncoder(context.LocalAddress, context.MaxPayload);
        _channel = new EndpointChannel(Self, context.LocalAddress, key);
        var tcp = context.Tcp with { MaxSegmentSize = context.MaxPayload };
        var iss = context.NextIss(key);
        _connection = connectCompletion is null
            ? TcpConnection.Listen(tcp, key.LocalPort, iss)
            : TcpConnection.Connect(tcp, key.LocalPort, key.RemotePort, iss, context.Clock.Now);
        Connecting();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The passive side of one connection, created by its listener for the first SYN of a 4-tuple.</summary>
    public static Props Accepting(EndpointContext context, ConnectionKey key) =>
        Props.Create(() => new EndpointActor(context, key, null, CancellationToken.None));

    /// <summary>The active side; completes <paramref name="connected"/> once established (or fails it). Sends its SYN on <see cref="OpenActive"/>.</summary>
    public static Props Connecting(EndpointContext context, ConnectionKey key, TaskCompletionSource<EndpointChannel> connected, CancellationToken cancellation) =>
        Props.Create(() => new EndpointActor(context, key, connected, cancellation));

    protected override void PreStart()
    {
        if (_connectCancellation.CanBeCanceled)
        {
            _connectCancellationRegistration = _connectCancellation.UnsafeRegister(static self => ((IActorRef)self!).Tell(ConnectCancelled.Instance), Self);
        }

        base.PreStart();
    }

    private void Connecting()
    {
        ReceiveEngineInput();
        Receive<OpenActive>(_ => Drive(_context.Clock.Now));
        Receive<ConnectCancelled>(_ =>
        {
            _connectCompletion?.TrySetCanceled(_connectCancellation);
            var now = _context.Clock.Now;
            _connection.Abort(now);
            Drive(now);
        });
    }

    private void Active()
    {
        ReceiveEngineInput();
        Receive<ReadRequested>(_ => OnRead());
        Receive<WriteRequested>(_ =>
        {
            _channel.Writer.ServeWrite(_connection);
            Drive(_context.Clock.Now);
        });
        Receive<CloseRequested>(_ =>
        {
            var now = _context.Clock.Now;
            _connection.Close(now);
            Become(Closing);
            Drive(now);
        });
    }

    /// <summary>The application closed its side; the engine still delivers what the peer sends until its FIN.</summary>
    private void Closing()
    {
        ReceiveEngineInput();
        Receive<ReadRequested>(_ => OnRead());
    }

    private void ReceiveEngineInput()
    {
        Receive<InboundSegment>(OnSegment);
        Receive<EngineTick>(_ => OnTick());
        Receive<AbortRequested>(_ =>
        {
            var now = _context.Clock.Now;
            _connection.Abort(now);
            Drive(now);
        });
    }

    private void OnSegment(InboundSegment segment)
    {
        var now = _context.Clock.Now;
        try
        {
            _connection.HandleSegment(now, segment.Header, segment.Payload);
        }
        finally
        {
            segment.Release();
        }

        Drive(now);
    }

    private void OnTick()
    {
        _armedDeadline = null;
        var now = _context.Clock.Now;
        if (_connection.PollTimeout() is { } due && due <= now)
        {
            _connection.HandleTimeout(now);
        }

        Drive(now);
    }

    private void OnRead()
    {
        _channel.Reader.ServeRead(_connection, _peerFinished);

        // Reading may have opened the window enough to announce it (RFC 1122 §4.2.3.3).
        Drive(_context.Clock.Now);
    }

    /// <summary>The engine's outputs in the order it asks: segments, events (which may read, write and so send more), deadline.</summary>
    private void Drive(Instant now)
    {
        do
        {
            Transmit(now);
        }
        while (DrainEvents());

        if (_connection.State == TcpState.Closed)
        {
            Context.Stop(Self);
            return;
        }

        ArmTimer(now);
    }

    private void Transmit(Instant now)
    {
        var remote = _key.RemoteAddress;
        while (_encoder.TryPoll(_connection, now, remote, out var segment))
        {
            if (!_context.Transport.Send(remote, segment))
            {
                // IP is best effort: the engine's retransmission recovers the segment.
                _context.Counters.SendDropped();
            }
        }
    }

    private bool DrainEvents()
    {
        var any = false;
        while (_connection.PollEvent(out var e))
        {
            any = true;
            switch (e)
            {
                case TcpEvent.Connected:
                    OnConnected();
                    break;
                case TcpEvent.Readable:
                    _channel.Reader.ServeRead(_connection, _peerFinished);
                    break;
                case TcpEvent.Writable:
                    _channel.Writer.ServeWrite(_connection);
                    break;
                case TcpEvent.PeerClosed:
                    _peerFinished = true;
                    _channel.Reader.ServeRead(_connection, peerFinished: true);
                    break;
                case TcpEvent.Reset:
                    FailAll("the connection was reset by the peer (RST)");
                    break;
                case TcpEvent.TimedOut:
                    FailAll("the connection timed out (RFC 9293 §3.8.3: no answer within the retransmission limit)");
                    break;
                case TcpEvent.Closed:
                    OnClosed();
                    break;
            }
        }

        return any;
    }

    private void OnConnected()
    {
        _connectCancellationRegistration.Unregister();
        Become(Active);
        if (_connectCompletion is null)
        {
            Context.Parent.Tell(new EndpointEstablished(_channel));
        }
        else if (!_connectCompletion.TrySetResult(_channel))
        {
            // The caller cancelled while the handshake was in flight: nobody will use this connection.
            _connection.Abort(_context.Clock.Now);
        }
    }

    private void OnClosed()
    {
        if (_peerFinished)
        {
            _channel.Reader.EndOfStream();
        }

        FailAll("the connection is closed");
    }

    private void FailAll(string reason, Exception? cause = null)
    {
        _connectCompletion?.TrySetException(new IOException($"connecting to {_key.RemoteAddress}:{_key.RemotePort} failed: {reason}", cause));
        _channel.Reader.Fail(reason, cause);
        _channel.Writer.Fail(reason, cause);
    }

    private void ArmTimer(Instant now)
    {
        // One keyed timer. It is moved only to an earlier deadline; when it fires before a deadline that moved
        // later, OnTick finds nothing due and re-arms, which is cheaper than rescheduling for every ACK.
        if (_connection.PollTimeout() is not { } deadline || (_armedDeadline is { } armed && armed <= deadline))
        {
            return;
        }

        _armedDeadline = deadline;
        var delay = deadline - now;
        Timers.StartSingleTimer(TimerKey, EngineTick.Instance, delay > TimeSpan.Zero ? delay : TimeSpan.Zero);
    }

    protected override void PostStop()
    {
        _connectCancellationRegistration.Unregister();
        _context.Table.RemoveEndpoint(_key, Self);
        if (_connection.State is not (TcpState.Closed or TcpState.Listen or TcpState.TimeWait))
        {
            // Stopped from outside (a crash, the runtime shutting down): tell the peer, as an aborting socket would.
            try
            {
                var now = _context.Clock.Now;
                _connection.Abort(now);
                Transmit(now);
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or InvalidOperationException or ArgumentException)
            {
                _log.Debug("endpoint {0}: could not send the RST while stopping: {1}", _key, e.Message);
            }
        }

        FailAll("the connection's endpoint stopped");
        base.PostStop();
    }
}

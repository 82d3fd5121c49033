using System.Diagnostics;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// A sans-IO <see cref="MtcpClientConnection"/> driven in real time over one fabric endpoint, against server nodes
/// that run the shipping runtime: a client the test controls byte for byte, so that it can play the attacker that
/// holds a genuine connection and alters what it sends (<see cref="Tamper"/>). As the runtime's client endpoint does,
/// it starts the migration each failover event asks for, from a fresh local port.
/// </summary>
internal sealed class SansIoClientDriver(InMemoryPacketTransport transport, IpAddress clientAddress)
{
    /// <summary>Rewrites a segment on its way out: its header (returned) and its payload, in place.</summary>
    public delegate TcpSegmentRepr Tampering(TcpSegmentRepr header, Span<byte> payload);

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly byte[] _payload = new byte[InMemoryPacketFabric.MaxSegmentLength];
    private readonly byte[] _segment = new byte[InMemoryPacketFabric.MaxSegmentLength];
    private readonly byte[] _received = new byte[InMemoryPacketFabric.MaxSegmentLength];

    private readonly List<MigrationEvent> _events = [];
    private int _eventsSeen;
    private ushort _nextFailoverPort = 43000;

    public MtcpClientConnection Client { get; private set; } = null!;

    /// <summary>The client's migration events so far, in order.</summary>
    public IReadOnlyList<MigrationEvent> Events => _events;

    /// <summary>Applied to every segment sent while set.</summary>
    public Tampering? Tamper { get; set; }

    /// <summary>A <see cref="Tampering"/> that flips a bit of the MIGRATED_CONN authenticator of every special SYN: a forgery.</summary>
    public static TcpSegmentRepr FlipMigratedConnectionAuthenticator(TcpSegmentRepr header, Span<byte> payload) =>
        header.Options.MigratedConnection is { } migrated
            ? header with { Options = header.Options with { MigratedConnection = migrated with { Authenticator = migrated.Authenticator ^ 1 } } }
            : header;

    /// <summary>Called with the stream offset and the bytes of each read, in order.</summary>
    public Action<long, ReadOnlySpan<byte>>? OnRead { get; set; }

    /// <summary>The bytes the client has read from its stream.</summary>
    public long BytesRead { get; private set; }

    public Instant Now => new(_clock.Elapsed.Ticks / TimeSpan.TicksPerMicrosecond);

    public void Open(ServerEndpoint server, ushort localPort, ClientFailover? failover = null)
    {
        Client = MtcpClientConnection.Connect(TcpConfig.Default, clientAddress, localPort, server, new SeqNumber(0xFFFF_F000), Now);
        if (failover is not null)
        {
            Client.Failover = failover;
        }

        Flush();
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        Assert.Equal(data.Length, Client.Write(data));
        Flush();
    }

    /// <param name="state">what the timeout's message shows of the state at that moment.</param>
    public void RunUntil(Func<bool> done, TimeSpan within, string what, Func<string>? state = null)
    {
        var deadline = _clock.Elapsed + within;
        while (!done())
        {
            Assert.True(_clock.Elapsed < deadline, $"timed out waiting for {what}{(state is null ? "" : $" ({state()})")}");
            Step();
        }
    }

    /// <summary>Runs until a migration event after those already seen here ends a migration, and returns it.</summary>
    public MigrationEvent RunUntilMigrationEnds(TimeSpan within)
    {
        MigrationEvent? ended = null;
        RunUntil(
            () =>
            {
                for (; _eventsSeen < _events.Count && ended is null; _eventsSeen++)
                {
                    if (_events[_eventsSeen].Kind is MigrationEventKind.Completed or MigrationEventKind.Failed)
                    {
                        ended = _events[_eventsSeen];
                    }
                }

                return ended is not null;
            },
            within,
            "the migration to end");
        return ended!.Value;
    }

    private void Step()
    {
        if (transport.Receive(_received, TimeSpan.FromMilliseconds(10), out var received) == ReceiveOutcome.Received
            && TcpSegmentRepr.TryParse(received.SliceOf(_received), received.Source, received.Destination, ChecksumPolicy.Verify, out var header, out var payloadOffset, out _))
        {
            var segment = received.SliceOf(_received);
            Client.HandleSegment(Now, new ServerEndpoint(received.Source, header.SourcePort), header, segment[payloadOffset..]);
        }

        if (Client.PollTimeout() is { } due && due <= Now)
        {
            Client.HandleTimeout(Now);
        }

        while (Client.PollMigrationEvent(out var e))
        {
            _events.Add(e);
            if (e.Kind == MigrationEventKind.FailoverTo && !Client.IsMigrating)
            {
                Client.BeginMigration(Now, e.Destination, new SeqNumber((uint)Random.Shared.Next()), _nextFailoverPort++);
            }
        }

        int read;
        while ((read = Client.Read(_payload)) > 0)
        {
            OnRead?.Invoke(BytesRead, _payload.AsSpan(0, read));
            BytesRead += read;
        }

        Flush();
    }

    private void Flush()
    {
        while (Client.PollTransmit(Now, _payload, out var destination, out var header, out var payloadLength))
        {
            var payload = _payload.AsSpan(0, payloadLength);
            if (Tamper is { } tamper)
            {
                header = tamper(header, payload);
            }

            Assert.True(header.TryEmit(_segment, payload, clientAddress, destination.Address, out var written, out var error), error.ToString());
            transport.Send(destination.Address, _segment.AsSpan(0, written));
        }
    }
}

using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>
/// A simulated client host with one <see cref="MtcpClientConnection"/> and its application. Migration events go to
/// <see cref="OnMigrationEvent"/> (the policy's seat); by default an accepted trigger or a failover starts the migration it
/// asks for.
/// </summary>
public sealed class MtcpClientNode : ISimNode
{
    private readonly byte[] _payload = new byte[65536];
    private readonly WireRoundTrip _wire = new();
    private readonly Func<SeqNumber> _issSource;
    private ushort _nextPort = 50000;

    public MtcpClientNode(IpAddress address, Func<SeqNumber> issSource)
    {
        Address = address;
        _issSource = issSource;
        OnMigrationEvent = (now, e) =>
        {
            if (e.Kind is MigrationEventKind.TriggerAccepted or MigrationEventKind.FailoverTo)
            {
                TryMigrate(now, e.Destination);
            }
        };
    }

    public IpAddress Address { get; }

    public MtcpClientConnection? Connection { get; private set; }

    public ClientApplication? Application { get; set; }

    public Action<Instant, MigrationEvent> OnMigrationEvent { get; set; }

    public List<MigrationEvent> MigrationEvents { get; } = [];

    public MtcpClientConnection Connect(Instant now, TcpConfig config, ServerEndpoint server)
    {
        Connection = MtcpClientConnection.Connect(config, Address, _nextPort++, server, _issSource(), now);
        return Connection;
    }

    /// <summary>Starts a migration from a fresh local port if the connection can migrate now; false otherwise.</summary>
    public bool TryMigrate(Instant now, ServerEndpoint destination)
    {
        var connection = Connection ?? throw new InvalidOperationException("not connected");
        if (connection.IsMigrating || !connection.CanMigrate || destination == connection.CurrentServer
            || connection.State is not (TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait or TcpState.Closing or TcpState.LastAck))
        {
            return false;
        }

        connection.BeginMigration(now, destination, _issSource(), _nextPort++);
        return true;
    }

    public void Receive(Instant now, in SimPacket packet)
    {
        Connection?.HandleSegment(now, new ServerEndpoint(packet.Source, packet.Header.SourcePort), packet.Header, packet.Payload.Span);
        DrainMigrationEvents(now);
    }

    public bool PollTransmit(Instant now, out SimPacket packet)
    {
        packet = default;
        if (Connection is not { } connection)
        {
            return false;
        }

        Application?.Pump(now, connection);
        if (connection.PollTransmit(now, _payload, out var destination, out var header, out var length))
        {
            packet = _wire.Packet(Address, destination.Address, header, _payload.AsSpan(0, length));
            return true;
        }

        return false;
    }

    public Instant? PollTimeout() => Connection?.PollTimeout();

    public void HandleTimeout(Instant now)
    {
        Connection?.HandleTimeout(now);
        DrainMigrationEvents(now);
    }

    private void DrainMigrationEvents(Instant now)
    {
        while (Connection is { } connection && connection.PollMigrationEvent(out var e))
        {
            MigrationEvents.Add(e);
            OnMigrationEvent(now, e);
        }
    }
}

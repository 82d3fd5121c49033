using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.TestKit;

/// <summary>
/// A simulated cooperating server: an <see cref="MtcpServerHost"/> on the packet network, its control connections on a
/// <see cref="ControlChannel"/>, and one application session per accepted connection, created by
/// <see cref="SessionFactory"/> from the connection and what <see cref="TcpConnection.ImportState"/> returned.
/// </summary>
public sealed class SimulatedServerNode : ISimNode
{
    private readonly ControlChannel _control;
    private readonly byte[] _payload = new byte[65536];
    private readonly WireRoundTrip _wire = new();
    private readonly List<ServerSession> _sessions = [];

    public SimulatedServerNode(MtcpServerHost host, ControlChannel control, Func<TcpConnection, ImportedState, ServerSession> sessionFactory)
    {
        Host = host;
        _control = control;
        SessionFactory = sessionFactory;
        control.Attach(this);
    }

    public IpAddress Address => Host.Service.Address;

    public MtcpServerHost Host { get; }

    public Func<TcpConnection, ImportedState, ServerSession> SessionFactory { get; }

    public IReadOnlyList<ServerSession> Sessions => _sessions;

    public void Receive(Instant now, in SimPacket packet)
    {
        Host.Receive(now, packet.Source, packet.Header, packet.Payload.Span);
        Drain(now);
    }

    public void HandleControl(Instant now, IpAddress from, ControlMessage message)
    {
        Host.HandleControl(now, from, message);
        Drain(now);
    }

    public bool PollTransmit(Instant now, out SimPacket packet)
    {
        foreach (var session in _sessions)
        {
            session.Pump(now);
        }

        Drain(now);
        if (Host.PollTransmit(now, _payload, out var destination, out var header, out var length))
        {
            packet = _wire.Packet(Address, destination, header, _payload.AsSpan(0, length));
            return true;
        }

        packet = default;
        return false;
    }

    public Instant? PollTimeout() => Host.PollTimeout();

    public void HandleTimeout(Instant now)
    {
        Host.HandleTimeout(now);
        Drain(now);
    }

    private void Drain(Instant now)
    {
        while (Host.PollControl(out var peer, out var message))
        {
            _control.Send(now, Address, peer, message);
        }

        while (Host.PollAccepted(out var connection, out _))
        {
            _sessions.Add(SessionFactory(connection, connection.ImportState()));
        }
    }
}

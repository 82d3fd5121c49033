using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.TestKit;

/// <summary>
/// A simulated cooperating server: an <see cref="MtcpServerHost"/> on the packet network, its control connections on a
/// <see cref="ControlChannel"/>, and one application session per accepted connection, created by
/// <see cref="SessionFactory"/> from the connection and what <see cref="TcpConnection.ImportState"/> returned. With
/// <see cref="Replication"/> its connections are replicated to a buddy server. It can crash (<see cref="Crash"/>): it
/// loses every endpoint, session and replica, and is deaf and mute until <see cref="Restart"/> brings it back blank.
/// </summary>
public sealed class SimulatedServerNode : ISimNode
{
    private readonly ControlChannel _control;
    private readonly byte[] _payload = new byte[65536];
    private readonly WireRoundTrip _wire = new();
    private readonly List<ServerSession> _sessions = [];
    private readonly Func<SimulatedBuddyReplication?> _replicationFactory;

    public SimulatedServerNode(MtcpServerHost host, ControlChannel control, Func<TcpConnection, ImportedState, ServerSession> sessionFactory)
        : this(host, control, sessionFactory, () => null)
    {
    }

    /// <param name="replicationFactory">a new incarnation's buddy replication (null: none).</param>
    public SimulatedServerNode(MtcpServerHost host, ControlChannel control, Func<TcpConnection, ImportedState, ServerSession> sessionFactory, Func<SimulatedBuddyReplication?> replicationFactory)
    {
        Host = host;
        _control = control;
        SessionFactory = sessionFactory;
        _replicationFactory = replicationFactory;
        Replication = replicationFactory();
        control.Attach(this);
    }

    public IpAddress Address => Host.Service.Address;

    public MtcpServerHost Host { get; private set; }

    public Func<TcpConnection, ImportedState, ServerSession> SessionFactory { get; }

    public IReadOnlyList<ServerSession> Sessions => _sessions;

    /// <summary>This incarnation's buddy replication; null when the testbed replicates nothing.</summary>
    public SimulatedBuddyReplication? Replication { get; private set; }

    /// <summary>Crashed and not restarted: receives nothing, sends nothing.</summary>
    public bool IsDown { get; private set; }

    /// <summary>Sessions of earlier incarnations, lost in crashes (for a test's account of who served what).</summary>
    public List<ServerSession> LostSessions { get; } = [];

    /// <summary>
    /// The node dies (SIGKILL): its endpoints, sessions and replicas are gone; packets and control messages to it are
    /// lost from now on. <paramref name="blankHost"/> is the empty host it will come back with.
    /// </summary>
    public void Crash(MtcpServerHost blankHost)
    {
        ArgumentNullException.ThrowIfNull(blankHost);
        if (blankHost.Service != Host.Service)
        {
            throw new ArgumentException("a node comes back at its own address", nameof(blankHost));
        }

        IsDown = true;
        LostSessions.AddRange(_sessions);
        _sessions.Clear();
        Host = blankHost;
        Replication = null;
    }

    /// <summary>A new incarnation of a crashed node: blank, it holds nothing and knows of no lost server.</summary>
    public void Restart()
    {
        IsDown = false;
        Replication = _replicationFactory();
    }

    public void Receive(Instant now, in SimPacket packet)
    {
        if (IsDown)
        {
            return;
        }

        Host.Receive(now, packet.Source, packet.Header, packet.Payload.Span);
        Drain(now);
    }

    public void HandleControl(Instant now, IpAddress from, ControlMessage message)
    {
        if (IsDown)
        {
            return;
        }

        if (Replication?.HandleControl(Host, from, message, (to, reply) => _control.Send(now, Address, to, reply)) != true)
        {
            Host.HandleControl(now, from, message);
        }

        Drain(now);
    }

    public bool PollTransmit(Instant now, out SimPacket packet)
    {
        packet = default;
        if (IsDown)
        {
            return false;
        }

        foreach (var session in _sessions)
        {
            session.Pump(now);
        }

        Drain(now);
        if (Replication is { } replication && replication.PollTrigger(out var client, out var trigger))
        {
            packet = _wire.Packet(Address, client, trigger, ReadOnlySpan<byte>.Empty);
            return true;
        }

        if (Host.PollTransmit(now, _payload, out var destination, out var header, out var length))
        {
            packet = _wire.Packet(Address, destination, header, _payload.AsSpan(0, length));
            return true;
        }

        return false;
    }

    public Instant? PollTimeout() => IsDown ? null : Host.PollTimeout();

    public void HandleTimeout(Instant now)
    {
        if (IsDown)
        {
            return;
        }

        Host.HandleTimeout(now);
        Drain(now);
    }

    private void Drain(Instant now)
    {
        var answers = new List<(IpAddress Peer, ControlMessage Answer)>();
        do
        {
            foreach (var (peer, answer) in answers)
            {
                Host.HandleControl(now, peer, answer);
            }

            answers.Clear();
            while (Host.PollControl(out var peer, out var message))
            {
                if (Replication is { } replication && (_control.IsDown(peer) || replication.Lost.Contains(peer)))
                {
                    // The control connection to a dead or lost origin reports it gone: the replica keeper answers.
                    if (replication.AnswerForLostPeer(Host, peer, message) is { } answer)
                    {
                        answers.Add((peer, answer));
                    }

                    continue;
                }

                _control.Send(now, Address, peer, message);
            }

            while (Host.PollAccepted(out var connection, out _))
            {
                _sessions.Add(SessionFactory(connection, connection.ImportState()));
            }
        }
        while (answers.Count > 0);

        Replication?.Replicate(now, Host, (to, update) => _control.Send(now, Address, to, update));
    }
}

using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>
/// A simulated host running <see cref="TcpConnection"/>s: demultiplexes segments by (remote address, remote port,
/// local port), keeps one listener per listening port (a SYN turns it into a connection and a fresh listener takes
/// its place), answers segments for unknown connections with a RST (RFC 9293 §3.10.7.1), and lets an application
/// callback act on each connection before its output is collected.
/// </summary>
public sealed class TcpNode : ISimNode
{
    private readonly Dictionary<(IpAddress RemoteAddress, ushort RemotePort, ushort LocalPort), TcpConnection> _connections = [];
    private readonly Dictionary<TcpConnection, IpAddress> _remoteAddresses = [];
    private readonly List<TcpConnection> _order = [];
    private readonly Dictionary<ushort, TcpConnection> _listeners = [];
    private readonly Queue<SimPacket> _replies = new();
    private readonly Func<SeqNumber> _issSource;
    private readonly byte[] _payload = new byte[65536];
    private int _nextPoll;
    private ushort _nextEphemeralPort = 49152;

    /// <param name="address">This host's address.</param>
    /// <param name="config">Configuration of every connection this host creates.</param>
    /// <param name="issSource">Initial sequence numbers for new connections (seeded by the test).</param>
    public TcpNode(IpAddress address, TcpConfig config, Func<SeqNumber> issSource)
    {
        Address = address;
        Config = config;
        _issSource = issSource;
    }

    public IpAddress Address { get; }

    public TcpConfig Config { get; }

    /// <summary>Connections in creation order (accepted or opened), closed ones included.</summary>
    public IReadOnlyList<TcpConnection> Connections => _order;

    /// <summary>Called for every connection each time the network collects output: the application's turn.</summary>
    public Action<Instant, TcpConnection>? Application { get; set; }

    /// <summary>Called once when a listener turns into a connection (a SYN arrived).</summary>
    public Action<TcpConnection>? Accepted { get; set; }

    public IpAddress RemoteAddressOf(TcpConnection connection) => _remoteAddresses[connection];

    public void Listen(ushort port) => _listeners[port] = TcpConnection.Listen(Config, port, _issSource());

    public TcpConnection Connect(Instant now, IpAddress remoteAddress, ushort remotePort, SeqNumber? iss = null, ushort? localPort = null)
    {
        var port = localPort ?? _nextEphemeralPort++;
        var connection = TcpConnection.Connect(Config, port, remotePort, iss ?? _issSource(), now);
        Register(connection, remoteAddress, remotePort);
        return connection;
    }

    public void Receive(Instant now, in SimPacket packet)
    {
        var header = packet.Header;
        var key = (packet.Source, header.SourcePort, header.DestinationPort);
        if (_connections.TryGetValue(key, out var connection))
        {
            connection.HandleSegment(now, header, packet.Payload.Span);
            return;
        }

        if (_listeners.TryGetValue(header.DestinationPort, out var listener))
        {
            listener.HandleSegment(now, header, packet.Payload.Span);
            if (listener.State != TcpState.Listen)
            {
                _listeners[header.DestinationPort] = TcpConnection.Listen(Config, header.DestinationPort, _issSource());
                Register(listener, packet.Source, header.SourcePort);
                Accepted?.Invoke(listener);
            }
            else
            {
                // A listener's RST answer (to an ACK) is addressed by the listener itself.
                DrainListenerReply(now, listener, packet.Source);
            }

            return;
        }

        if (TcpConnection.TryMakeReset(header, packet.Payload.Length, out var reset))
        {
            _replies.Enqueue(new SimPacket(Address, packet.Source, reset, ReadOnlyMemory<byte>.Empty));
        }
    }

    public bool PollTransmit(Instant now, out SimPacket packet)
    {
        if (_replies.TryDequeue(out packet))
        {
            return true;
        }

        // Round-robin so that one busy connection cannot starve the others of their turn on the wire.
        for (var i = 0; i < _order.Count; i++)
        {
            var index = (_nextPoll + i) % _order.Count;
            var connection = _order[index];
            Application?.Invoke(now, connection);
            if (connection.PollTransmit(now, _payload, out var header, out var length))
            {
                _nextPoll = index;
                packet = new SimPacket(Address, _remoteAddresses[connection], header, _payload.AsSpan(0, length).ToArray());
                return true;
            }
        }

        packet = default;
        return false;
    }

    public Instant? PollTimeout()
    {
        Instant? earliest = null;
        foreach (var connection in _order)
        {
            earliest = Instant.Earliest(earliest, connection.PollTimeout());
        }

        return earliest;
    }

    public void HandleTimeout(Instant now)
    {
        foreach (var connection in _order)
        {
            if (connection.PollTimeout() is { } t && t <= now)
            {
                connection.HandleTimeout(now);
            }
        }
    }

    private void Register(TcpConnection connection, IpAddress remoteAddress, ushort remotePort)
    {
        _connections[(remoteAddress, remotePort, connection.LocalPort)] = connection;
        _remoteAddresses[connection] = remoteAddress;
        _order.Add(connection);
    }

    private void DrainListenerReply(Instant now, TcpConnection listener, IpAddress remote)
    {
        while (listener.PollTransmit(now, _payload, out var header, out var length))
        {
            _replies.Enqueue(new SimPacket(Address, remote, header, _payload.AsSpan(0, length).ToArray()));
        }
    }
}

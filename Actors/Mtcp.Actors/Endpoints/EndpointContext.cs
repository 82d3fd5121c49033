using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>What every endpoint actor of one packet actor shares: the transport, the table, the clock and the settings.</summary>
internal sealed class EndpointContext
{
    public EndpointContext(IPacketTransport transport, ConnectionTable table, PacketCounters counters, TcpConfig tcp, InitialSequenceNumbers isn, MonotonicClock clock)
    {
        Transport = transport;
        Table = table;
        Counters = counters;
        Tcp = tcp;
        Isn = isn;
        Clock = clock;

        // The transport's largest segment bounds the MSS, with room for the largest header (RFC 9293 §3.1).
        MaxPayload = Math.Min(tcp.MaxSegmentSize, transport.MaxSegmentLength - TcpSegment.MinHeaderLength - TcpSegment.MaxOptionsLength);
    }

    public IPacketTransport Transport { get; }

    public IpAddress LocalAddress => Transport.LocalAddress;

    public ConnectionTable Table { get; }

    public PacketCounters Counters { get; }

    public TcpConfig Tcp { get; }

    public InitialSequenceNumbers Isn { get; }

    public MonotonicClock Clock { get; }

    /// <summary>Largest payload of one segment on this transport.</summary>
    public int MaxPayload { get; }

    public SeqNumber NextIss(ConnectionKey key) => Isn.Next(Clock.Now, LocalAddress, key.LocalPort, key.RemoteAddress, key.RemotePort);
}

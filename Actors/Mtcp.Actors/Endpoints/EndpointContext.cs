using Akka.Actor;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>What every endpoint actor of one packet actor shares: the transport, the table, the clock and the settings.</summary>
internal sealed class EndpointContext
{
    private MigrationSupport? _migration;
    private AlternateServersChanged _view = new(AlternateServerList.Empty, ControlMappings.Empty);

    public EndpointContext(IPacketTransport transport, ConnectionTable table, PacketCounters counters, TcpConfig tcp, InitialSequenceNumbers isn, MonotonicClock clock, IActorRef? registry = null)
    {
        Registry = registry;
        Transport = transport;
        Table = table;
        Counters = counters;
        Tcp = tcp;
        Isn = isn;
        Clock = clock;

        // The transport's largest segment bounds the MSS, with room for the largest header (RFC 9293 §3.1).
        MaxPayload = Math.Min(tcp.MaxSegmentSize, transport.MaxSegmentLength - TcpSegment.MinHeaderLength - TcpSegment.MaxOptionsLength);
        ServerTcp = tcp with { MaxSegmentSize = MaxPayload };
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

    /// <summary>The settings of a server endpoint: <see cref="Tcp"/> with the MSS this transport allows.</summary>
    public TcpConfig ServerTcp { get; }

    /// <summary>The node's SYN cookies (RFC 4987 §3.6), under a secret drawn when the packet actor started.</summary>
    public SynCookies SynCookies { get; init; } = SynCookies.CreateRandom(SynCookies.DefaultPeriod);

    /// <summary><c>mtcp.runtime.syn-cookies</c>: when a listener answers a SYN with a cookie.</summary>
    public SynCookieMode SynCookieMode { get; init; } = SynCookieMode.On;

    /// <summary>The node's connection registry, where server endpoints register their Cid; null: no migration out.</summary>
    public IActorRef? Registry { get; }

    /// <summary>Set once migration is enabled; read by endpoint actors on their own threads.</summary>
    public MigrationSupport? Migration
    {
        get => Volatile.Read(ref _migration);
        set => Volatile.Write(ref _migration, value);
    }

    /// <summary>The service directory's latest view: alternates for TCP_MIGRATE, control mappings to find an origin.</summary>
    public AlternateServersChanged View
    {
        get => Volatile.Read(ref _view);
        set => Volatile.Write(ref _view, value);
    }

    /// <summary>The node's summariser of refusals: what a stranger can cause is counted and logged at a bounded rate.</summary>
    public required RefusalLog Refusals { get; init; }

    /// <summary>The ephemeral port range (<c>mtcp.runtime.ephemeral-port-first/-last</c>): a migrating client keeps its port where it can.</summary>
    public (ushort First, ushort Last) EphemeralPorts { get; init; } = (49152, 65535);

    /// <summary>Ids of this node's state requests (unique per node, so per peer too).</summary>
    public ControlRequestIds RequestIds { get; } = new((ulong)Random.Shared.NextInt64());

    /// <summary>The Cid of this node's endpoint of <paramref name="key"/> (client first, thesis 4.2.3).</summary>
    public ConnectionId ConnectionIdOf(ConnectionKey key) => new(key.RemoteAddress, key.RemotePort, LocalAddress, key.LocalPort);

    /// <summary>
    /// The ISS of a new connection on <paramref name="key"/> (RFC 6528). On a 4-tuple a connection migrated away from
    /// less than 2 MSL ago it starts above every sequence number that connection used, as a TIME-WAIT 4-tuple may be
    /// reopened (RFC 1122 §4.2.2.13), so no late segment of one incarnation is taken for the other's.
    /// </summary>
    public SeqNumber NextIss(ConnectionKey key)
    {
        var now = Clock.Now;
        var iss = Isn.Next(now, LocalAddress, key.LocalPort, key.RemoteAddress, key.RemotePort);
        return Table.TryGetSilenced(key, now, out var previousSendMax) ? SeqNumber.Max(iss, previousSendMax + 1) : iss;
    }
}

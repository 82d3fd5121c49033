using System.Collections.Concurrent;
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
    /// <summary>Addresses whose route MTU is cached at most (<c>mtcp.runtime.route-mtu-cache</c>): bounded memory under a SYN flood.</summary>
    private const int MaxCachedRoutes = 1024;

    /// <summary>The least MSS (<see cref="TcpConfig.MaxSegmentSize"/>'s bound), for a route whose MTU leaves less.</summary>
    private const int MinSegmentSize = 64;

    /// <summary><see cref="Tcp"/> with the MSS this transport allows, whatever the route.</summary>
    private readonly TcpConfig _transportTcp;
    private readonly ConcurrentDictionary<IpAddress, (int SegmentSize, Instant Until)> _routeSegmentSizes = new();
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
        _transportTcp = tcp with { MaxSegmentSize = MaxPayload };
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

    /// <summary><c>mtcp.runtime.route-mtu-cache</c>: how long a route's MTU is reused for the next connections to its address.</summary>
    public TimeSpan RouteMtuCache { get; init; }

    /// <summary>
    /// The settings of a connection to or from <paramref name="remote"/>: <see cref="Tcp"/> with the MSS of the route
    /// to it (<see cref="SegmentSizeTo"/>). Called once per connection, at connect and at accept.
    /// </summary>
    public TcpConfig TcpTo(IpAddress remote)
    {
        var segmentSize = SegmentSizeTo(remote);
        return segmentSize == MaxPayload ? _transportTcp : _transportTcp with { MaxSegmentSize = segmentSize };
    }

    /// <summary>
    /// The MSS towards <paramref name="remote"/>: the MTU of the kernel's route to it less the carrier's headers, the
    /// TCP header and room for the largest options (the engine does not shorten a segment by the options it
    /// carries, RFC 6691), bounded by <see cref="MaxPayload"/>. The transport's bound alone where it knows no route.
    /// </summary>
    public int SegmentSizeTo(IpAddress remote)
    {
        var now = Clock.Now;
        if (_routeSegmentSizes.TryGetValue(remote, out var cached) && now < cached.Until)
        {
            return cached.SegmentSize;
        }

        var segmentSize = Transport.MaxSegmentLengthTo(remote) is { } length
            ? Math.Clamp(length - TcpSegment.MinHeaderLength - TcpSegment.MaxOptionsLength, MinSegmentSize, MaxPayload)
            : MaxPayload;
        if (RouteMtuCache > TimeSpan.Zero)
        {
            if (_routeSegmentSizes.Count >= MaxCachedRoutes)
            {
                _routeSegmentSizes.Clear();
            }

            _routeSegmentSizes[remote] = (segmentSize, now + RouteMtuCache);
        }

        return segmentSize;
    }

    /// <summary>The batches endpoints encode their segments into and send with one call (<c>mtcp.runtime.send-batch</c>).</summary>
    public required SendBatchPool SendBatches { get; init; }

    /// <summary>The pool the receive thread rents inbound payloads from and their consumers return them to (<see cref="InboundSegment"/>).</summary>
    public required System.Buffers.ArrayPool<byte> Payloads { get; init; }

    /// <summary>The node's SYN cookies (RFC 4987 §3.6), under a secret drawn when the packet actor started.</summary>
    public SynCookies SynCookies { get; init; } = SynCookies.CreateRandom(SynCookies.DefaultPeriod);

    /// <summary><c>mtcp.runtime.syn-cookies</c>: when a listener answers a SYN with a cookie.</summary>
    public SynCookieMode SynCookieMode { get; init; } = SynCookieMode.On;

    /// <summary>When each server was last heard from on any of this runtime's client connections (keep-alive probes only the silent ones).</summary>
    public ServersHeard ServersHeard { get; } = new();

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

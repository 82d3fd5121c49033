using System.Diagnostics.Metrics;

namespace Mtcp.Actors.Migration;

/// <summary>
/// The runtime's migration instruments, on the meter <c>Mtcp.Migration</c> (collect them with a host's Prometheus
/// endpoint, dotnet-counters, OpenTelemetry or a <see cref="MeterListener"/>; docs/metrics.md lists them). Client side:
/// started, completed (with the time from the special SYN to the switch), failed (tagged with the reason), failovers.
/// Server side: the state a destination received and its wait for the state reply, and connections that migrated away
/// from an origin; state requests refused for a forged or replayed authenticator, control messages from peers dropped
/// because they did not open, and service announcements dropped because they were forged, unsigned or not from the
/// node they name; replication to a buddy.
/// </summary>
/// <remarks>
/// Names follow OpenTelemetry's semantic conventions: dotted lower case, singular namespaces, units in UCUM
/// (<c>s</c>, <c>By</c>, <c>{migration}</c>) rather than in the name, every duration in seconds.
/// </remarks>
internal static class MigrationMetrics
{
    public const string MeterName = "Mtcp.Migration";
    public const string StateSizeName = "mtcp.migration.state.size";
    public const string StateRequestDurationName = "mtcp.migration.state_request.duration";
    public const string MigratedAwayName = "mtcp.migration.migrated_away";

    private static readonly Meter Meter = new(MeterName);

    internal static readonly Counter<long> Started = Meter.CreateCounter<long>("mtcp.migration.started", "{migration}", "Client migrations started");

    internal static readonly Counter<long> Completed = Meter.CreateCounter<long>("mtcp.migration.completed", "{migration}", "Client migrations switched to the new server");

    internal static readonly Counter<long> Failed = Meter.CreateCounter<long>("mtcp.migration.failed", "{migration}", "Client migrations that failed; the connection stayed on its server (tag reason)");

    internal static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("mtcp.migration.duration", "s", "Client's wait from the special SYN to the switch");

    internal static readonly Histogram<long> StateSize = Meter.CreateHistogram<long>(StateSizeName, "By", "Encoded state reply received by a destination server");

    internal static readonly Histogram<double> StateRequestDuration = Meter.CreateHistogram<double>(StateRequestDurationName, "s", "Destination's wait from the state request to the reply");

    internal static readonly Histogram<double> PrepareDuration = Meter.CreateHistogram<double>("mtcp.migration.prepare.duration", "s", "Origin's time to package a state reply");

    internal static readonly Histogram<double> ReinstateDuration = Meter.CreateHistogram<double>("mtcp.migration.reinstate.duration", "s", "Destination's time to reinstate a state reply");

    internal static readonly Histogram<double> HandshakeDuration = Meter.CreateHistogram<double>("mtcp.connection.handshake.duration", "s", "A migrating client's fresh three-way handshake, SYN to SYN+ACK, for comparison with a migration");

    internal static readonly Counter<long> FailoversStarted = Meter.CreateCounter<long>("mtcp.failover.started", "{connection}", "Client connections whose server stopped answering (retransmissions or keep-alive probes), each starting a failover");

    internal static readonly Counter<long> FailoversAbandoned = Meter.CreateCounter<long>("mtcp.failover.abandoned", "{connection}", "Client failovers no alternate server took over in time: the connection was aborted");

    internal static readonly Counter<long> FailoversCalledOff = Meter.CreateCounter<long>("mtcp.failover.called_off", "{connection}", "Client failovers called off because the silent server was heard again before an alternate took over: it was slow, not dead");

    internal static readonly Counter<long> Refused = Meter.CreateCounter<long>("mtcp.migration.refused", "{migration}", "Special SYNs a destination refused (reject, timeout, failure)");

    internal static readonly Counter<long> AuthFailed = Meter.CreateCounter<long>("mtcp.migration.auth_failed", "{request}", "State requests an origin refused because the special SYN's authenticator did not verify (tag check: Forged, Replayed, ...)");

    internal static readonly Counter<long> ControlDropped = Meter.CreateCounter<long>("mtcp.control.dropped", "{message}", "Control messages from a peer dropped because they did not open (tag reason: Unsealed, BadMac, WrongPeer, ...)");

    internal static readonly Counter<long> AnnouncementsRefused = Meter.CreateCounter<long>("mtcp.cluster.announcement.refused", "{announcement}", "Service announcements a directory dropped (tag reason: BadMac, NotFromItsNode, Unsigned, Malformed, NoKey)");

    internal static readonly Counter<long> ClientStates = Meter.CreateCounter<long>("mtcp.replication.client_states", "{state}", "Client-stored states a serving node sealed for its clients (tag outcome: sealed, too-large)");

    internal static readonly Counter<long> ClientStatesRefused = Meter.CreateCounter<long>("mtcp.replication.client_states.refused", "{state}", "Client-stored states presented on a special SYN that a node refused (tag reason: BadTag, Stale, ...)");

    internal static readonly Counter<long> MigratedAway = Meter.CreateCounter<long>(MigratedAwayName, "{connection}", "Connections that left an origin server on a state ack");

    internal static readonly UpDownCounter<long> PortsHeld = Meter.CreateUpDownCounter<long>("mtcp.client.port.usage", "{tuple}", "4-tuples client connections hold: the current one, a migration's, and those left in BLACKHOLE for 2 MSL (each local port of mtcp.runtime.ephemeral-port-first..last serves one 4-tuple per server)");

    internal static readonly Counter<long> PortsExhausted = Meter.CreateCounter<long>("mtcp.client.port.exhausted", "{attempt}", "Connections or migrations refused because no port of the ephemeral range was free towards the server (tag side: connect, migration)");

    internal static readonly UpDownCounter<long> Unreplicated = Meter.CreateUpDownCounter<long>("mtcp.replication.unreplicated", "{connection}", "Connections served with mtcp.migration.replication = buddy but no buddy (no other member serves their port): they die with this node");

    internal static readonly Counter<long> ReplicaUpdates = Meter.CreateCounter<long>("mtcp.replication.updates", "{update}", "Replica updates sent to buddies (tag kind: state, read-log)");

    internal static readonly Counter<long> ReplicaAckTimeouts = Meter.CreateCounter<long>("mtcp.replication.ack_timeouts", "{timeout}", "Connections that sent their buddy the whole state again because an update waited mtcp.migration.buddy-ack-timeout for its ack (it or its ack was lost)");

    internal static readonly Counter<long> ReplicaUpdateBytes = Meter.CreateCounter<long>("mtcp.replication.update.bytes", "By", "Bytes of whole states and read logs sent to buddies, before sealing (tag kind: state, read-log)");

    /// <summary>Buckets from 50 us to 1 s: a control round trip on loopback is a few hundred microseconds.</summary>
    private static readonly double[] ReplicationDelayBuckets = [0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1];

    /// <summary>A histogram of a replication delay, in seconds, in <see cref="ReplicationDelayBuckets"/>, so that the delays add up bucket for bucket.</summary>
    private static Histogram<double> ReplicationDelay(string name, string description) =>
        Meter.CreateHistogram(name, "s", description, tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = ReplicationDelayBuckets });

    internal static readonly Histogram<double> ReplicaAckDelay = ReplicationDelay(
        "mtcp.replication.ack.delay",
        "Serving node's wait from sending a replica update to its buddy's ack (the delay of the client's ACK)");

    /// <summary>The buddy's share of <see cref="ReplicaAckDelay"/>, in the same buckets.</summary>
    internal static readonly Histogram<double> ReplicaBuddyHold = ReplicationDelay(
        "mtcp.replication.buddy.hold",
        "Buddy node's time from a replica update reaching its control connection to the update's ack leaving it (opening, the replica keeper's work and both actor hops)");

    /// <summary>
    /// The control plane's share of <see cref="ReplicaAckDelay"/>, in the same buckets: on the serving node's control
    /// connection, from a replica update handed to Akka.Remote (sealed) to its ack opened there. The rest of the ack
    /// delay is the serving node's own actor hops; this less the buddy's <see cref="ReplicaBuddyHold"/> is the two
    /// crossings of the transport.
    /// </summary>
    internal static readonly Histogram<double> ReplicaRoundTrip = ReplicationDelay(
        "mtcp.replication.round_trip.duration",
        "Serving node's time from a replica update leaving its control connection for the buddy (sealed, handed to the transport) to the update's ack reaching it (both crossings and the buddy's hold)");

    /// <summary>
    /// What a client byte waits before <see cref="ReplicaAckDelay"/> starts, in the same buckets: read logs in flight
    /// are bounded (<c>mtcp.migration.buddy-read-logs-in-flight</c>), and bytes that come meanwhile wait for an ack.
    /// </summary>
    internal static readonly Histogram<double> ReplicaPipelineWait = ReplicationDelay(
        "mtcp.replication.pipeline_wait.duration",
        "Serving node's wait of each read log's first client byte, from its segment reaching the connection's endpoint to the read log leaving the endpoint for the buddy (zero unless the read logs in flight were at mtcp.migration.buddy-read-logs-in-flight)");

    /// <summary>Buckets from 1 KiB to 4 MiB, by powers of two.</summary>
    internal static readonly Histogram<long> ReplicaGatedSize = Meter.CreateHistogram(
        "mtcp.replication.gated.size",
        "By",
        "Client bytes a serving node received and had not acknowledged yet, waiting for the buddy, when a buddy's ack came",
        tags: null,
        new InstrumentAdvice<long> { HistogramBucketBoundaries = [.. Enumerable.Range(10, 13).Select(shift => 1L << shift)] });

    internal static readonly UpDownCounter<long> ReplicasHeld = Meter.CreateUpDownCounter<long>("mtcp.replication.replica.count", "{connection}", "Connections of other nodes this node holds a replica of, as their buddy");

    internal static readonly Counter<long> TakeoverTriggers = Meter.CreateCounter<long>("mtcp.replication.takeover_triggers", "{trigger}", "MIGRATE_TRIGGERs a buddy sent the clients of an unreachable node's connections, naming itself");

    internal static readonly Counter<long> TakenOver = Meter.CreateCounter<long>("mtcp.replication.taken_over", "{connection}", "Connections a buddy took over from a lost node (the replica reinstated at a new endpoint)");

    internal static readonly Counter<long> TakenOverFromSilentOrigin = Meter.CreateCounter<long>("mtcp.replication.taken_over_from_silent", "{connection}", "Of mtcp.replication.taken_over, connections whose origin was still a member but left the state request unanswered for mtcp.control.silent-origin-takeover (the origin is fenced at once)");

    internal static readonly Counter<long> RefusedUpdates = Meter.CreateCounter<long>("mtcp.replication.refused_updates", "{update}", "Replica updates a buddy dropped unacknowledged: their connection was already answered for from the replica");
}

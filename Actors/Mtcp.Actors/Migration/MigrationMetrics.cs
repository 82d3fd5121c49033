using System.Diagnostics.Metrics;

namespace Mtcp.Actors.Migration;

/// <summary>
/// The runtime's migration instruments, on the meter <c>Mtcp.Migration</c> (collect them with dotnet-counters,
/// OpenTelemetry or a <see cref="MeterListener"/>). Client side: started, completed (with the time from the special SYN
/// to the switch), failed (tagged with the reason). Server side: the state bytes a destination received and its wait
/// for the state reply, and connections that migrated away from an origin; state requests refused for a forged or
/// replayed authenticator, control messages from peers dropped because they did not open, and service
/// announcements dropped because they were forged, unsigned or not from the node they name.
/// </summary>
internal static class MigrationMetrics
{
    public const string MeterName = "Mtcp.Migration";

    private static readonly Meter Meter = new(MeterName);

    internal static readonly Counter<long> Started = Meter.CreateCounter<long>("mtcp.migration.started", description: "Client migrations started");

    internal static readonly Counter<long> Completed = Meter.CreateCounter<long>("mtcp.migration.completed", description: "Client migrations switched to the new server");

    internal static readonly Counter<long> Failed = Meter.CreateCounter<long>("mtcp.migration.failed", description: "Client migrations that failed; the connection stayed on its server");

    internal static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("mtcp.migration.duration", unit: "ms", description: "Client's wait from the special SYN to the switch");

    internal static readonly Histogram<long> StateBytes = Meter.CreateHistogram<long>("mtcp.migration.state_bytes", unit: "By", description: "Encoded state reply received by a destination server");

    internal static readonly Histogram<double> StateWait = Meter.CreateHistogram<double>("mtcp.migration.state_wait", unit: "ms", description: "Destination's wait from the state request to the reply");

    internal static readonly Histogram<double> Prepare = Meter.CreateHistogram<double>("mtcp.migration.prepare", unit: "ms", description: "Origin's time to package a state reply");

    internal static readonly Histogram<double> Reinstate = Meter.CreateHistogram<double>("mtcp.migration.reinstate", unit: "ms", description: "Destination's time to reinstate a state reply");

    internal static readonly Histogram<double> Handshake = Meter.CreateHistogram<double>("mtcp.connection.handshake", unit: "ms", description: "A migrating client's fresh three-way handshake, SYN to SYN+ACK, for comparison with a migration");

    internal static readonly Counter<long> ServersSilent = Meter.CreateCounter<long>("mtcp.migration.server_silent", description: "Client connections whose server stopped answering (retransmissions or keep-alive probes), each starting a failover");

    internal static readonly Counter<long> FailoversAbandoned = Meter.CreateCounter<long>("mtcp.migration.failover_abandoned", description: "Client failovers no alternate server took over in time: the connection was aborted");

    internal static readonly Counter<long> Refused = Meter.CreateCounter<long>("mtcp.migration.refused", description: "Special SYNs a destination refused (reject, timeout, failure)");

    internal static readonly Counter<long> AuthFailed = Meter.CreateCounter<long>("mtcp.migration.auth_failed", description: "State requests an origin refused because the special SYN's authenticator did not verify (tag check: Forged, Replayed, ...)");

    internal static readonly Counter<long> ControlDropped = Meter.CreateCounter<long>("mtcp.control.dropped", description: "Control messages from a peer dropped because they did not open (tag reason: Unsealed, BadMac, WrongPeer, ...)");

    internal static readonly Counter<long> AnnouncementsRefused = Meter.CreateCounter<long>("mtcp.cluster.announcements_refused", description: "Service announcements a directory dropped (tag reason: BadMac, NotFromItsNode, Unsigned, Malformed, NoKey)");

    internal static readonly Counter<long> MigratedAway = Meter.CreateCounter<long>("mtcp.migration.migrated_away", description: "Connections that left an origin server on a state ack");

    internal static readonly UpDownCounter<long> PortsHeld = Meter.CreateUpDownCounter<long>("mtcp.client.ports.held", description: "4-tuples client connections hold: the current one, a migration's, and those left in BLACKHOLE for 2 MSL (each local port of mtcp.runtime.ephemeral-port-first..last serves one 4-tuple per server)");

    internal static readonly Counter<long> PortsExhausted = Meter.CreateCounter<long>("mtcp.client.ports.exhausted", description: "Connections or migrations refused because no port of the ephemeral range was free towards the server (tag side: connect, migration)");

    internal static readonly UpDownCounter<long> Unreplicated = Meter.CreateUpDownCounter<long>("mtcp.replication.unreplicated", description: "Connections served with mtcp.migration.replication = buddy but no buddy (no other member serves their port): they die with this node");

    internal static readonly Counter<long> ReplicaUpdates = Meter.CreateCounter<long>("mtcp.replication.updates", description: "Replica updates sent to buddies (tag kind: state, read-log)");

    internal static readonly UpDownCounter<long> ReplicasHeld = Meter.CreateUpDownCounter<long>("mtcp.replication.replicas", description: "Connections of other nodes this node holds a replica of, as their buddy");

    internal static readonly Counter<long> TakeoverTriggers = Meter.CreateCounter<long>("mtcp.replication.takeover_triggers", description: "MIGRATE_TRIGGERs a buddy sent the clients of an unreachable node's connections, naming itself");

    internal static readonly Counter<long> TakenOver = Meter.CreateCounter<long>("mtcp.replication.taken_over", description: "Connections a buddy took over from a lost node (the replica reinstated at a new endpoint)");
}

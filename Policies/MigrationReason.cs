namespace Mtcp.Policies;

/// <summary>Why a policy decided that a connection should move; logged and counted with every decision.</summary>
public enum MigrationReason
{
    /// <summary>Smoothed throughput fell to the trigger ratio of its maximum (thesis 5.3.2).</summary>
    ThroughputDrop,

    /// <summary>The next in-sequence segment was late for several segments in a row (thesis 3.4 (1)).</summary>
    SegmentDelay,

    /// <summary>The response time perceived by the client degraded (thesis 3.4 (2)).</summary>
    ResponseTime,

    /// <summary>This node is more loaded than a peer and pushes a connection to it (thesis 6.2.3 (1)).</summary>
    LoadBalancePush,

    /// <summary>A less-loaded peer asked this node for connections (thesis 6.2.3 (2)).</summary>
    LoadBalancePull,

    /// <summary>This node crossed its overload threshold and sheds connections (thesis 6.2.2).</summary>
    Overload,

    /// <summary>An operator asked for this one connection to move.</summary>
    OperatorCommand,

    /// <summary>An operator is draining this node of every connection.</summary>
    Drain,
}

/// <summary>Which decision-maker produced a decision; the "policy" tag of the metrics.</summary>
public enum PolicyKind
{
    Throughput,
    Latency,
    ResponseTime,
    LoadBalancing,
    Overload,
    Operator,
    Drain,
}

/// <summary>A guard rail that held a decision back (thesis 3.4 leaves storms to the policy; these stop them).</summary>
public enum GuardVerdict
{
    Allowed,

    /// <summary>The connection migrated, or was told to, less than the hold-down ago.</summary>
    HoldDown,

    /// <summary>The node's migration token bucket is empty.</summary>
    RateLimited,

    /// <summary>The move would send the connection straight back to the node it just came from.</summary>
    PingPong,

    /// <summary>There is no server to move the connection to.</summary>
    NoDestination,
}

using Mtcp.Wire;

namespace Mtcp.Stack.Migration;

/// <summary>What happened to a migration, for the driver and the policy; the client application sees none of it.</summary>
public enum MigrationEventKind
{
    /// <summary>The new server's SYN+ACK arrived and the connection switched to it (thesis 4.2.3).</summary>
    Completed,

    /// <summary>The migration failed (reject, reset, timeout, unreachable destination); the connection stays on its server.</summary>
    Failed,

    /// <summary>An authenticated MIGRATE_TRIGGER asks to migrate to <see cref="MigrationEvent.Destination"/> (thesis 3.2.1).</summary>
    TriggerAccepted,

    /// <summary>
    /// The current server, <see cref="MigrationEvent.Destination"/>, left too many retransmissions or keep-alive
    /// probes unanswered (<see cref="ClientFailover"/>); <see cref="MigrationEvent.Detail"/> says which. A failover starts.
    /// </summary>
    ServerSilent,

    /// <summary>The failover asks to migrate to <see cref="MigrationEvent.Destination"/>, the next alternate not tried yet.</summary>
    FailoverTo,

    /// <summary>
    /// No alternate took the connection over from the silent server <see cref="MigrationEvent.Destination"/> in time:
    /// the connection is aborted and the application told it timed out.
    /// </summary>
    FailoverAbandoned,

    /// <summary>
    /// The silent server <see cref="MigrationEvent.Destination"/> was heard again before an alternate took the
    /// connection over: it was slow, not dead. The failover is called off and the connection stays on it.
    /// </summary>
    ServerHeardAgain,

    /// <summary>
    /// A failover's special SYN to <see cref="MigrationEvent.Destination"/>'s successor goes without the held
    /// client-stored state: it no longer covers every byte the silent server acknowledged (<see cref="MigrationEvent.Detail"/>).
    /// </summary>
    ClientStateUnusable,
}

/// <summary>One migration event; <paramref name="Destination"/> is the server concerned.</summary>
public readonly record struct MigrationEvent(MigrationEventKind Kind, ServerEndpoint Destination, string Detail = "");

/// <summary>Counters of the client side of MTCP.</summary>
public sealed class MtcpClientStats
{
    public long MigrationsStarted { get; internal set; }

    public long MigrationsCompleted { get; internal set; }

    public long MigrationsFailed { get; internal set; }

    public long TriggersAccepted { get; internal set; }

    /// <summary>MIGRATE_TRIGGERs to a client with migration off: ignored unchecked.</summary>
    public long TriggersIgnored { get; internal set; }

    /// <summary>MIGRATE_TRIGGERs whose authenticator or connection id did not verify: ignored (thesis 3.2.1).</summary>
    public long ForgedTriggersIgnored { get; internal set; }

    /// <summary>Times the current server fell silent (<see cref="ClientFailover"/>).</summary>
    public long ServersFallenSilent { get; internal set; }

    /// <summary>Failovers that ended on another server.</summary>
    public long Failovers { get; internal set; }

    /// <summary>Failovers that gave up: the connection was aborted.</summary>
    public long FailoversAbandoned { get; internal set; }

    /// <summary>Failovers called off because the silent server was heard again before an alternate took over.</summary>
    public long FailoversCalledOff { get; internal set; }

    /// <summary>Segments swallowed by a control block in BLACKHOLE (thesis 4.2.3 step 4).</summary>
    public long BlackholedSegments { get; internal set; }

    /// <summary>ACKs from the old server ignored while migrating (thesis 4.2.3, fig. 4.12).</summary>
    public long AcksIgnoredWhileMigrating { get; internal set; }

    /// <summary>Sealed client-stored states taken from the current server (each replaces the one held).</summary>
    public long ClientStatesHeld { get; internal set; }

    /// <summary>CLIENT_STATE segments ignored: not from the current server, out of window, malformed, or older than the one held.</summary>
    public long ClientStatesIgnored { get; internal set; }

    /// <summary>Failovers whose held state could not be presented: it no longer covers bytes the server acknowledged, or does not fit a segment.</summary>
    public long ClientStatesUnusable { get; internal set; }

    /// <summary>Special SYNs that presented a held state.</summary>
    public long ClientStatesPresented { get; internal set; }
}

/// <summary>Counters of the server side of MTCP.</summary>
public sealed class MtcpServerStats
{
    public long StateRequestsSent { get; internal set; }

    public long StateRepliesSent { get; internal set; }

    public long StateRejectsSent { get; internal set; }

    public long MigrationsIn { get; internal set; }

    public long MigrationsOut { get; internal set; }

    public long MigrationsRefused { get; internal set; }

    /// <summary>Encoded size of the largest state reply this host sent, frame header included.</summary>
    public int LargestStateReply { get; internal set; }

    /// <summary>Why special SYNs were refused here, with counts (state reject reasons, timeouts, bad replies).</summary>
    public Dictionary<string, int> RefusalReasons { get; } = [];

    /// <summary>Segments for a connection that migrated away, dropped without answer.</summary>
    public long SilencedSegments { get; internal set; }

    /// <summary>State requests whose MIGRATED_CONN authenticator was valid for an attempt number already spent: replays, AUTH_FAILED.</summary>
    public long ReplayedStateRequestsRejected { get; internal set; }

    /// <summary>Special SYNs for an endpoint that already exists here: duplicates, answered without a second state request.</summary>
    public long DuplicateSpecialSyns { get; internal set; }

    /// <summary>SYNs answered statelessly with a SYN cookie (<see cref="MtcpServerHost.SynCookies"/>).</summary>
    public long SynCookiesSent { get; internal set; }

    /// <summary>ACKs that returned a valid SYN cookie and created their connection.</summary>
    public long SynCookiesValidated { get; internal set; }

    /// <summary>ACKs for no connection whose SYN cookie did not verify (forged, stale, another 4-tuple or ISN), answered as CLOSED answers them.</summary>
    public long SynCookiesRefused { get; internal set; }
}

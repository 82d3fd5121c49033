using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>How a client's migration ended.</summary>
public enum MigrationOutcome
{
    /// <summary>The new server's SYN+ACK arrived and the connection switched to it.</summary>
    Completed,

    /// <summary>The connection stayed on <see cref="MigrationReport.From"/>.</summary>
    Failed,
}

/// <summary>
/// One client migration from <paramref name="From"/> to <paramref name="To"/>. <paramref name="Duration"/> is the
/// client's wait from the special SYN to the switch (thesis fig. 5.2's "time to migrate"), or to the failure;
/// <paramref name="Triggered"/> tells a migration a MIGRATE_TRIGGER asked for from one the application started;
/// <paramref name="FailedOver"/> marks the client's own failover, started because <paramref name="From"/> fell silent
/// (<c>mtcp.migration.failover</c>), which no trigger asked for.
/// </summary>
public sealed record MigrationReport(MigrationOutcome Outcome, ServerEndpoint From, ServerEndpoint To, TimeSpan Duration, bool Triggered, string? FailureReason = null, bool FailedOver = false);

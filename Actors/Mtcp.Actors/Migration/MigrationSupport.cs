using Akka.Actor;
using Mtcp.Actors.Cluster;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.Actors.Migration;

/// <summary>
/// What a runtime needs to take part in migrations (see <c>MtcpRuntime.EnableMigrationAsync</c>), with the
/// per-connection authentication of docs/threat-model.md. A server needs the cluster key's
/// <paramref name="Authenticator"/> (it issues each connection's secret on its SYN+ACK, checks special SYNs under it,
/// and seals control messages), its node's <see cref="ControlConnectionManager"/> (to ask origins for state) and
/// <see cref="ServiceDirectory"/> (alternate servers for TCP_MIGRATE, control mappings to find an origin's node).
/// A client uses none of them: its connection's secret comes on the origin's SYN+ACK, so a client-only runtime passes a
/// null <paramref name="Authenticator"/> and holds no cluster secret. Every server of a service must hold the same
/// cluster key.
/// </summary>
public sealed record MigrationSupport(IMigrationAuthenticator? Authenticator, IActorRef? ControlManager = null, IActorRef? ServiceDirectory = null);

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
/// <paramref name="Triggered"/> tells a migration a MIGRATE_TRIGGER asked for from one the application started.
/// </summary>
public sealed record MigrationReport(MigrationOutcome Outcome, ServerEndpoint From, ServerEndpoint To, TimeSpan Duration, bool Triggered, string? FailureReason = null);

/// <summary>Turns migration on in a packet actor; answered with <see cref="MigrationEnabled"/>.</summary>
internal sealed record EnableMigration(MigrationSupport Support);

internal sealed class MigrationEnabled
{
    public static readonly MigrationEnabled Instance = new();

    private MigrationEnabled()
    {
    }
}

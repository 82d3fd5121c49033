using Mtcp.Wire;

namespace Mtcp.Policies;

// What policies decide. A decision names the connection and where it should go, never how: the
// mechanism (thesis 3.3) is the runtime's.

/// <summary>
/// Client side: migrate <paramref name="Connection"/> to <paramref name="Destination"/> (the client is the
/// initiator, thesis 3.2.1). A null destination leaves the choice among the alternates to the runtime.
/// <paramref name="Detail"/> is the human-readable evidence that was logged with the decision.
/// </summary>
public sealed record MigrateConnection(ConnectionId Connection, ServerEndpoint? Destination, MigrationReason Reason, string Detail);

/// <summary>
/// Server side: ask the client of <paramref name="Connection"/> to migrate to <paramref name="Destination"/>;
/// the runtime sends it as a MIGRATE_TRIGGER segment (thesis 3.2.1, case (a) of fig. 3.2).
/// </summary>
public sealed record TriggerMigration(ConnectionId Connection, ServerEndpoint Destination, MigrationReason Reason, string Detail);

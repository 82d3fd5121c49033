using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>
/// What a third party (another server node, an operator tool) needs to trigger one connection's migration (thesis 3.2.1;
/// docs/threat-model.md, "third party holding a trigger key"): the connection's Cid and its trigger key for the current
/// epoch. The node holding the connection issues it (<c>MtcpConnection.IssueTriggerGrantAsync</c>); any runtime sends it
/// (<c>MtcpRuntime.SendMigrationTrigger</c>). The client chooses the destination, and the grant dies with the next migration.
/// </summary>
public sealed record MigrationTriggerGrant(ConnectionId Cid, TriggerKey Key);

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
/// A client uses none of them: its connection's secret comes on the origin's SYN+ACK; <paramref name="Failover"/> says
/// how its connections leave a server that stopped answering (null: they wait for it). Every server of a service
/// must hold the same cluster key.
/// </summary>
/// <para>
/// <paramref name="Replication"/> (servers, <c>mtcp.migration.replication = buddy</c>): each connection's state is kept
/// up to date on a buddy node, and the client's bytes are acknowledged only once the buddy holds them; null: off.
/// <paramref name="ClientState"/> (servers, <c>mtcp.migration.replication = client</c>): each connection's state is
/// sealed for its client, and a special SYN presenting one is answered from it when its origin is lost; null: off.
/// </para>
internal sealed record MigrationSupport(
    IMigrationAuthenticator? Authenticator,
    IActorRef? ControlManager = null,
    IActorRef? ServiceDirectory = null,
    ClientFailover? Failover = null,
    ReplicationSupport? Replication = null,
    ClientStateSupport? ClientState = null);

/// <summary>
/// Buddy replication on a server node: <paramref name="Self"/> is the node's cluster address (its connections' buddy is
/// another member serving the same port, <c>BuddyChoice</c>), <paramref name="MaxPiece"/> the most bytes one replica
/// message carries, <paramref name="ReadLogsInFlight"/> the most read logs of a connection unacknowledged at once
/// (<c>mtcp.migration.buddy-read-logs-in-flight</c>), <paramref name="StateSchedule"/> when a new snapshot goes as a
/// whole state (<c>mtcp.migration.buddy-state</c>), <paramref name="AckTimeout"/> how long an update waits for its ack
/// before the whole state goes again (<c>mtcp.migration.buddy-ack-timeout</c>).
/// </summary>
internal sealed record ReplicationSupport(Address Self, int MaxPiece, int ReadLogsInFlight, Stack.Migration.ReplicaStateSchedule StateSchedule, TimeSpan AckTimeout);

/// <summary>
/// Client-stored state on a server node (docs/failover.md): <paramref name="MaxLength"/> bounds a sealed state
/// (<c>mtcp.migration.client-state.max-size</c>); <paramref name="Opener"/>, shared by the node's listeners, answers
/// special SYNs that present one.
/// </summary>
internal sealed record ClientStateSupport(int MaxLength, ClientStateOpener Opener);

/// <summary>Turns migration on in a packet actor; answered with <see cref="MigrationEnabled"/>.</summary>
internal sealed record EnableMigration(MigrationSupport Support);

internal sealed class MigrationEnabled
{
    public static readonly MigrationEnabled Instance = new();

    private MigrationEnabled()
    {
    }
}

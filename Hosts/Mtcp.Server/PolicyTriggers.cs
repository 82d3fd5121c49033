using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Policies;
using Mtcp.Wire;

namespace Mtcp.Server;

/// <summary>
/// Carries out the server policy's decisions on this node's connections: each <see cref="TriggerMigration"/> becomes a
/// MIGRATE_TRIGGER to the connection's client (thesis 3.2.1, case (a) of fig. 3.2), which then migrates on its own.
/// A decision for a connection that has ended meanwhile is dropped.
/// </summary>
internal sealed class PolicyTriggers : ReceiveActor
{
    public PolicyTriggers(Func<ConnectionId, MtcpConnection?> find)
    {
        Receive<TriggerMigration>(decision =>
        {
            if (find(decision.Connection) is not { } connection)
            {
                return;
            }

            connection.TriggerMigration(decision.Destination);
            ConsoleLog.Info($"policy: cid {connection.FirstCid}, {connection.LocalEndPoint} -> {decision.Destination}: asked the client {connection.RemoteEndPoint} to migrate ({decision.Reason}: {decision.Detail})");
        });
    }

    public static Props Props(Func<ConnectionId, MtcpConnection?> find) => Akka.Actor.Props.Create(() => new PolicyTriggers(find));
}

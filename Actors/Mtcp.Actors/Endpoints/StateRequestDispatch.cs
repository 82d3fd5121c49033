using Akka.Actor;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Actors.Replication;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// Thesis 4.2.3 at S2, step 1, as a special SYN (TCP_MIGRATED_CONN) arrives at a listener: the sans-IO
/// <see cref="StateRequestPlan"/> plus where its request goes (the control connection to the origin's node). The
/// listener sends the request as soon as it has created the endpoint, so the request travels while the endpoint
/// actor starts and takes the SYN; the endpoint waits for the answer. Requesting from the endpoint itself put its
/// creation (a dispatcher hop, the engine's buffers, the ISN) on the migration's critical path.
/// </summary>
/// <remarks>
/// With client-stored state (<c>mtcp.migration.replication = client</c>) a special SYN may present the connection's
/// sealed state: when the origin has left the view, the listener answers the request from it at once
/// (<paramref name="FromClientState"/>), as the origin would have; a state that does not open is refused, logged.
/// </remarks>
internal sealed record StateRequestDispatch(StateRequestPlan Plan, Address? Peer, IActorRef? ControlManager, StateReply? FromClientState = null)
{
    public static StateRequestDispatch For(EndpointContext context, ConnectionKey key, MtcpMigratedConnection migrated, ReadOnlySpan<byte> clientState)
    {
        var now = context.Clock.Now;
        if (context.Migration is not { ControlManager: { } controlManager })
        {
            return Refused(now, "this node takes no migrated connections (migration not enabled)");
        }

        // The control connection times the request out (mtcp.control.state-request-timeout) and says so.
        var plan = StateRequestPlan.For(context.RequestIds.Next(), migrated, context.ConnectionIdOf(key), new ServerEndpoint(context.LocalAddress, key.LocalPort), now, deadline: null);
        if (plan.Origin is not { } origin)
        {
            return new StateRequestDispatch(plan, null, null);
        }

        if (context.View.ControlMappings.TryGetControlAddress(origin, out var peer))
        {
            return new StateRequestDispatch(plan, peer, controlManager);
        }

        // The origin left the view (unreachable or removed): the client may present its state, or this node may be its buddy.
        if (context.Migration is { ClientState: { } support, Authenticator: { } authenticator } && !clientState.IsEmpty)
        {
            var reply = support.Opener.Answer(plan.Request!, clientState, authenticator, out var refusal);
            if (reply is null)
            {
                MigrationMetrics.ClientStatesRefused.Add(1, new KeyValuePair<string, object?>("reason", refusal.ToString()));
                context.Refusals.Refuse(
                    RefusalClass.ClientStateRefused,
                    $"special SYN from {key.RemoteAddress}:{key.RemotePort} for {plan.Request!.MigratingCid}: its client-stored state of {clientState.Length} bytes is refused ({refusal})");
                return Refused(now, $"client-stored state refused ({refusal})");
            }

            return new StateRequestDispatch(plan, null, null, reply);
        }

        return context.Migration.Replication is not null
            ? new StateRequestDispatch(plan, null, controlManager)
            : Refused(now, $"no control mapping for the origin {origin}");
    }

    /// <summary>Sends the request, its answer to go to <paramref name="endpoint"/>; nothing for a refused SYN.</summary>
    public void Send(IActorRef endpoint)
    {
        if (FromClientState is { } reply)
        {
            // No origin to acknowledge the state to: its state ack goes nowhere.
            endpoint.Tell(reply, ActorRefs.Nobody);
            return;
        }

        if (Plan.Request is not { } request || ControlManager is not { } controlManager)
        {
            return;
        }

        controlManager.Tell(Peer is { } peer
            ? new RequestState(peer, request, endpoint)
            : new AnswerFromReplica(request, endpoint, Origin: null, StateRequestFailure.PeerRemoved));
    }

    private static StateRequestDispatch Refused(Instant now, string reason) => new(StateRequestPlan.Refused(now, reason), null, null);
}

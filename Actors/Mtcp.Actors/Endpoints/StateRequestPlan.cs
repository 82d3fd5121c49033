using Akka.Actor;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// Thesis 4.2.3 at S2, step 1, decided by the listener as a special SYN (TCP_MIGRATED_CONN) arrives: either the state
/// request to send to the origin's node, or why the SYN is refused. The listener sends the request as soon as it has
/// created the endpoint, so the request travels while the endpoint actor starts and takes the SYN; the endpoint
/// waits for the answer (<see cref="EndpointActor"/>, awaiting state). Requesting from the endpoint itself put
/// its creation (a dispatcher hop, the engine's buffers, the ISN) on the migration's critical path.
/// </summary>
internal sealed record StateRequestPlan(StateRequest? Request, Address? Peer, IActorRef? ControlManager, Instant Decided, string? Refusal)
{
    public static StateRequestPlan For(EndpointContext context, ConnectionKey key, MtcpMigratedConnection migrated)
    {
        var now = context.Clock.Now;
        if (context.Migration is not { ControlManager: { } controlManager })
        {
            return Refused(now, "this node takes no migrated connections (migration not enabled)");
        }

        var request = ServerMigration.BuildStateRequest(context.RequestIds.Next(), migrated, context.ConnectionIdOf(key));
        var origin = new ServerEndpoint(request.MigratingCid.ServerAddress, request.MigratingCid.ServerPort);
        if (origin == new ServerEndpoint(context.LocalAddress, key.LocalPort))
        {
            return Refused(now, "the connection is already here");
        }

        if (!context.View.ControlMappings.TryGetControlAddress(origin, out var peer))
        {
            return Refused(now, $"no control mapping for the origin {origin}");
        }

        return new StateRequestPlan(request, peer, controlManager, now, null);
    }

    /// <summary>Sends the request, its answer to go to <paramref name="endpoint"/>; nothing for a refused SYN.</summary>
    public void Send(IActorRef endpoint)
    {
        if (Request is { } request && Peer is { } peer && ControlManager is { } controlManager)
        {
            controlManager.Tell(new RequestState(peer, request, endpoint));
        }
    }

    private static StateRequestPlan Refused(Instant now, string reason) => new(null, null, null, now, reason);
}

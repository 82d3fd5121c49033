using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Replication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Migration;

/// <summary>
/// One per runtime: the node's connection registry (the thesis's lookup of the migrating connection by Cid at S1,
/// 4.2.3). Server endpoint actors register their Cid; the <see cref="ControlConnectionManager"/> hands the registry
/// peers' requests and acks, which it passes to the endpoint, which owns the engine and answers the control connection
/// itself. A Cid nobody holds is answered with CB_NOT_FOUND here.
/// </summary>
internal sealed class ConnectionRegistry : ReceiveActor
{
    private readonly Dictionary<ConnectionId, IActorRef> _endpoints = [];
    private readonly Dictionary<IActorRef, ConnectionId> _cids = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RefusalLog _refusals = RefusalLog.Get(Context.System);

    public ConnectionRegistry()
    {
        Receive<RegisterEndpoint>(register =>
        {
            if (_endpoints.Remove(register.Cid, out var previous))
            {
                _cids.Remove(previous);
            }

            _endpoints[register.Cid] = register.Endpoint;
            _cids[register.Endpoint] = register.Cid;
            Context.Watch(register.Endpoint);
        });
        Receive<UnregisterEndpoint>(unregister => Remove(unregister.Endpoint));
        Receive<Terminated>(terminated => Remove(terminated.ActorRef));
        Receive<StateRequestReceived>(received =>
        {
            var request = received.Request;
            if (_endpoints.TryGetValue(request.MigratingCid, out var endpoint))
            {
                endpoint.Forward(new ServeStateRequest(request));
                return;
            }

            Sender.Tell(new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.CbNotFound, $"no connection {request.MigratingCid}"));
        });
        Receive<StateAckReceived>(received =>
        {
            if (_endpoints.TryGetValue(received.Ack.MigratingCid, out var endpoint))
            {
                endpoint.Tell(new MigrateAway(received.Ack));
            }
            else
            {
                _refusals.Refuse(RefusalClass.ControlMessageDropped, $"state ack from {received.Peer} for {received.Ack.MigratingCid}, which no endpoint holds");
            }
        });
        Receive<TakenOverReceived>(received =>
        {
            // None here: the connection ended or left meanwhile, and nothing is left to drop.
            if (_endpoints.TryGetValue(received.Notice.MigratingCid, out var endpoint))
            {
                endpoint.Tell(received);
            }
        });
        Receive<ReplicaAckReceived>(received =>
        {
            // An ack for a connection no longer here (it ended or migrated away meanwhile) has nothing left to release.
            if (_endpoints.TryGetValue(received.Ack.Cid, out var endpoint))
            {
                endpoint.Tell(received);
            }
        });
        Receive<GetConnectionRegistryStatistics>(_ => Sender.Tell(new ConnectionRegistryStatistics(_endpoints.Count)));
        Receive<StateTransferAbandoned>(abandoned =>
            _log.Debug("{0} abandoned state request {1} ({2}); the connection stays here", abandoned.Peer, abandoned.RequestId, abandoned.Reason));
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new ConnectionRegistry());

    private void Remove(IActorRef endpoint)
    {
        if (_cids.Remove(endpoint, out var cid) && _endpoints.TryGetValue(cid, out var holder) && holder.Equals(endpoint))
        {
            _endpoints.Remove(cid);
        }

        Context.Unwatch(endpoint);
    }
}

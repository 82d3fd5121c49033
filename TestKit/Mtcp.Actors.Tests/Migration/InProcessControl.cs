using Akka.Actor;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Stands in for a node's control connection manager when its peers' runtimes live in the same ActorSystem: a state
/// request goes straight to the peer's connection registry, the answer back to the endpoint that asked (with this
/// actor as its sender, as a control connection would be), and the state ack on to the peer. No Akka.Remote, no
/// sealing: for runtime tests that run many migrations and measure what they leave behind, not the control channel.
/// </summary>
internal sealed class InProcessControl : ReceiveActor
{
    private readonly Dictionary<ulong, (Address Peer, IActorRef Asking)> _requests = [];

    public InProcessControl(Address self, IReadOnlyDictionary<Address, IActorRef> registries)
    {
        Receive<UseControlAuthenticator>(_ => Sender.Tell(ControlAuthenticatorInUse.Instance));
        Receive<RequestState>(request =>
        {
            _requests[request.Request.RequestId] = (request.Peer, request.ReplyTo);
            registries[request.Peer].Tell(new StateRequestReceived(self, request.Request), Self);
        });
        Receive<StateReply>(reply => Answer(reply.RequestId, reply, keep: true));
        Receive<StateReject>(reject => Answer(reject.RequestId, reject, keep: false));
        Receive<StateAck>(ack =>
        {
            if (_requests.Remove(ack.RequestId, out var request))
            {
                registries[request.Peer].Tell(new StateAckReceived(self, ack));
            }
        });
        Receive<AcknowledgeState>(acknowledge => registries[acknowledge.Peer].Tell(new StateAckReceived(self, acknowledge.Ack)));
    }

    public static Props Props(Address self, IReadOnlyDictionary<Address, IActorRef> registries) =>
        Akka.Actor.Props.Create(() => new InProcessControl(self, registries));

    private void Answer(ulong requestId, object answer, bool keep)
    {
        if (!_requests.TryGetValue(requestId, out var request))
        {
            return;
        }

        if (!keep)
        {
            _requests.Remove(requestId);
        }

        request.Asking.Tell(answer, Self);
    }
}

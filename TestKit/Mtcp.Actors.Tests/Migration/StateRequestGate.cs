using Akka.Actor;
using Mtcp.Actors.Control;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// In front of a node's real connection registry, as its control connection manager sees it: everything passes (the
/// sender kept, so answers go straight back to the control connection), except that while told to swallow, the peers'
/// state requests are held unanswered: an origin that is alive and a member, but too slow to answer. Released, they
/// reach the registry late, as an overloaded origin's answers do; dropped, they never get an answer, as when the origin's
/// answer comes after its own <c>state-request-timeout</c> and its control connection drops it.
/// </summary>
internal sealed class StateRequestGate : ReceiveActor
{
    private readonly List<(StateRequestReceived Request, IActorRef Sender)> _held = [];
    private bool _swallowing;

    public StateRequestGate(IActorRef registry)
    {
        Receive<SwallowStateRequests>(swallow => _swallowing = swallow.On);
        Receive<ReleaseHeldStateRequests>(_ =>
        {
            foreach (var (request, sender) in _held)
            {
                registry.Tell(request, sender);
            }

            Sender.Tell(_held.Count);
            _held.Clear();
        });
        Receive<DropHeldStateRequests>(_ =>
        {
            Sender.Tell(_held.Count);
            _held.Clear();
        });
        Receive<StateRequestReceived>(_ => _swallowing, request => _held.Add((request, Sender)));
        ReceiveAny(message => registry.Forward(message));
    }

    public static Props Props(IActorRef registry) => Akka.Actor.Props.Create(() => new StateRequestGate(registry));
}

/// <summary>To a <see cref="StateRequestGate"/>: hold (or pass again) the peers' state requests.</summary>
internal sealed record SwallowStateRequests(bool On);

/// <summary>To a <see cref="StateRequestGate"/>: hand the held state requests to the registry now; answered with their count.</summary>
internal sealed record ReleaseHeldStateRequests;

/// <summary>To a <see cref="StateRequestGate"/>: forget the held state requests, never answered; answered with their count.</summary>
internal sealed record DropHeldStateRequests;

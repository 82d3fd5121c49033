using Akka.Actor;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// Props for the actors created per connection (endpoints): built from a delegate, not an expression tree.
/// <see cref="Props.Create{TActor}(System.Linq.Expressions.Expression{Func{TActor}}, SupervisorStrategy)"/> evaluates
/// the expression's arguments by reflection each time, which measured ~90 us per accepted connection and sat on the
/// SYN-to-SYN+ACK path of every handshake and migration. These Props are for local actors only: a delegate cannot be
/// deployed remotely.
/// </summary>
internal static class FactoryProps
{
    public static Props Create<TActor>(Func<TActor> factory)
        where TActor : ActorBase => Props.CreateBy(new Producer<TActor>(factory));

    private sealed class Producer<TActor>(Func<TActor> factory) : IIndirectActorProducer
        where TActor : ActorBase
    {
        public Type ActorType => typeof(TActor);

        public ActorBase Produce() => factory();

        public void Release(ActorBase actor)
        {
        }
    }
}

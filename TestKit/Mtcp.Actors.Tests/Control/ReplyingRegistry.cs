using Akka.Actor;
using Akka.TestKit;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>A registry stand-in that answers every state request with the reply <c>replyFor</c> builds.</summary>
internal sealed class ReplyingRegistry(Func<ulong, StateReply> replyFor) : AutoPilot
{
    public override AutoPilot Run(IActorRef sender, object message)
    {
        if (message is StateRequestReceived received)
        {
            sender.Tell(replyFor(received.Request.RequestId), ActorRefs.NoSender);
        }

        return this;
    }
}

using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

/// <summary>
/// Opens what a replication channel's reader reads, on the reader's thread: the envelope must open under the cluster
/// key for the pair of nodes (<see cref="ControlSealing"/>, the peer as sender, this node as receiver) and carry what
/// that end of the channel carries, the peer's updates (<see cref="ReplicaState"/>, <see cref="ReplicaReadLog"/>,
/// <see cref="ReplicaRelease"/>) on a channel the peer opened, the peer's <see cref="ReplicaAck"/>s on one this node
/// opened. An ack that opens goes straight to the endpoint replicating its connection (<see cref="Acks"/>): that
/// ack is what the client's ACK waits for, and the control connection's mailbox would be one hand-off more on its way.
/// Anything else that opens goes to the peer's control connection as <see cref="ReceivedOnChannel"/>, which handles it
/// as the same message from the control connection; what does not open, or is not what this end carries, is refused
/// through the node's refusal log, and the reader closes the channel.
/// </summary>
internal sealed class ReplicationChannelReceiver(ControlSealing sealing, bool carriesUpdates, string peer, RefusalLog refusals)
{
    /// <summary>The peer's control connection, once known; what opens before is only checked.</summary>
    public IActorRef Connection { get; set; } = ActorRefs.Nobody;

    /// <summary>On the serving node's end: the endpoints the peer's acks go to; null on the buddy's end.</summary>
    public ReplicaAckRoutes? Acks { get; init; }

    /// <summary>Opens <paramref name="envelope"/>; false (refused and logged) when it does not open or is not a message this end carries.</summary>
    public bool TryOpen(ReadOnlySpan<byte> envelope, [NotNullWhen(true)] out ControlMessage? message)
    {
        var result = sealing.TryOpen(envelope, out message);
        if (result != ControlOpenResult.Opened || message is null)
        {
            refusals.Refuse(RefusalClass.ReplicationChannelRefused, $"frame from {peer} does not open under the cluster key for that member ({result}); the channel closes");
            message = null;
            return false;
        }

        var expected = carriesUpdates ? message is ReplicaState or ReplicaReadLog or ReplicaRelease : message is ReplicaAck;
        if (!expected)
        {
            refusals.Refuse(RefusalClass.ReplicationChannelRefused, $"{message.GetType().Name} from {peer} refused: this end of the channel carries only {(carriesUpdates ? "replica updates" : "replica acks")}; the channel closes");
            message = null;
            return false;
        }

        return true;
    }

    /// <summary>The reader's hand-off: opened, to the control connection; false closes the channel.</summary>
    public bool Receive(ReadOnlyMemory<byte> envelope)
    {
        if (!TryOpen(envelope.Span, out var message))
        {
            return false;
        }

        if (message is ReplicaAck ack && Acks is { } acks && acks.TryDeliver(ack, Connection))
        {
            return true;
        }

        Connection.Tell(new ReceivedOnChannel(message), ActorRefs.NoSender);
        return true;
    }
}

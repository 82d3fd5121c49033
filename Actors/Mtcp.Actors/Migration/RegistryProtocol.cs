using Akka.Actor;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Migration;

// The conversation between server endpoint actors, the control connections and the node's ConnectionRegistry
// (thesis 4.2.3 at S1: the migrating connection found by its Cid), top to bottom.

/// <summary>A server endpoint actor holds connection <paramref name="Cid"/>; state requests for it go there.</summary>
internal sealed record RegisterEndpoint(ConnectionId Cid, IActorRef Endpoint);

/// <summary>The endpoint no longer holds <paramref name="Cid"/> (it migrated away).</summary>
internal sealed record UnregisterEndpoint(ConnectionId Cid, IActorRef Endpoint);

/// <summary>
/// To the endpoint actor of <see cref="StateRequest.MigratingCid"/>, with the control connection as sender: answer it
/// with a <see cref="StateReply"/> or <see cref="StateReject"/> from its own engine.
/// </summary>
internal sealed record ServeStateRequest(StateRequest Request);

/// <summary>To the origin endpoint on the state ack: close silently and let the client's segments go unanswered (thesis 4.2.3).</summary>
internal sealed record MigrateAway(StateAck Ack);

/// <summary>Asks a <see cref="ConnectionRegistry"/> how many connections it holds; answered with <see cref="ConnectionRegistryStatistics"/>.</summary>
internal sealed class GetConnectionRegistryStatistics
{
    public static readonly GetConnectionRegistryStatistics Instance = new();

    private GetConnectionRegistryStatistics()
    {
    }
}

/// <summary>
/// The connections a registry holds now: one entry per Cid a server endpoint registered and has not yet given up
/// (migrated away or stopped). Zero on an idle node; an entry that outlives its connection is a leak.
/// </summary>
internal sealed record ConnectionRegistryStatistics(int Connections);

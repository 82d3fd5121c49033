using Akka.Actor;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Control;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

// The replication conversation inside a node (beyond the thesis: its eager state transfer): a server endpoint
// actor keeps its connection's buddy up to date through the control connection manager; the buddy's control
// connection hands the updates to the node's replica keeper, whose acks go back the same way to the endpoint. The
// bytes on the wire are Mtcp.Wire.Control's ReplicaState, ReplicaReadLog, ReplicaAck and ReplicaRelease, sealed
// like every control message.

/// <summary>To the node's <c>ControlConnectionManager</c>: send <paramref name="Update"/> to the buddy node <paramref name="Buddy"/>.</summary>
internal sealed record ReplicateTo(Address Buddy, ControlMessage Update);

/// <summary>To one control connection, from this node: put <paramref name="Message"/> (a replica update or ack) on it, sealed.</summary>
internal sealed record ReplicateToPeer(ControlMessage Message);

/// <summary>
/// A replica update (<see cref="ReplicaState"/>, <see cref="ReplicaReadLog"/> or <see cref="ReplicaRelease"/>) from
/// <paramref name="Origin"/>, handed by its control connection (the sender) to the node's <see cref="ReplicaKeeper"/>;
/// the ack goes back to the sender as a <see cref="ReplicateToPeer"/>.
/// </summary>
internal sealed record ReplicaUpdateReceived(Address Origin, ControlMessage Update);

/// <summary>The buddy <paramref name="Buddy"/> acknowledged replica updates: handed to the registry, then to the connection's endpoint.</summary>
internal sealed record ReplicaAckReceived(Address Buddy, ReplicaAck Ack);

/// <summary>
/// From a packet actor of this node, through the control connection manager, to the <see cref="ReplicaKeeper"/>: takeover
/// triggers may go out through it, from <paramref name="Address"/>, for connections on a port it listens on.
/// </summary>
internal sealed record ReplicaTakeoverTransport(IpAddress Address, IActorRef PacketActor);

/// <summary>
/// To a packet actor: send <paramref name="Segment"/>, a MIGRATE_TRIGGER naming this node, to the client of
/// <paramref name="Cid"/>, if it listens on the Cid's port (the port the trigger comes from).
/// </summary>
internal sealed record SendTakeoverTrigger(ConnectionId Cid, TcpSegmentRepr Segment);

/// <summary>
/// To the <see cref="ReplicaKeeper"/>: the node that served <see cref="StateRequest.MigratingCid"/> is lost
/// (<paramref name="Failure"/>: unreachable, removed or disassociated; <paramref name="Origin"/> null when no control
/// mapping names it any more). <paramref name="ReplyTo"/> gets the answer from the replica, as the origin would have
/// given it, with the keeper as sender (the state ack goes back to it), or a <see cref="StateRequestFailed"/> with
/// <paramref name="Failure"/> when no replica of a lost node is held here.
/// </summary>
internal sealed record AnswerFromReplica(StateRequest Request, IActorRef ReplyTo, Address? Origin, StateRequestFailure Failure);

/// <summary>
/// To the <see cref="ReplicaKeeper"/>, from the control connection to <paramref name="Origin"/>: that origin, still a
/// member, has left <paramref name="Request"/> unanswered for <c>mtcp.control.silent-origin-takeover</c>. If this node
/// holds <paramref name="Origin"/>'s replica of the connection, the keeper answers <paramref name="ReplyTo"/> from it
/// (with itself as sender, as for a lost origin); either way it tells the control connection with
/// <see cref="SilentOriginDecided"/>.
/// </summary>
internal sealed record TakeOverFromSilentOrigin(StateRequest Request, IActorRef ReplyTo, Address Origin);

/// <summary>
/// The <see cref="ReplicaKeeper"/>'s word on a <see cref="TakeOverFromSilentOrigin"/>: <paramref name="AnsweredFromReplica"/>,
/// the requester has its answer (the origin's is not used), the state if <paramref name="TookOver"/> (the origin is then
/// fenced), else a reject; otherwise only the origin can answer request <paramref name="RequestId"/>.
/// </summary>
internal sealed record SilentOriginDecided(ulong RequestId, bool AnsweredFromReplica, bool TookOver);

/// <summary>Asks a <see cref="ReplicaKeeper"/> what it holds; answered with <see cref="ReplicaStatistics"/>.</summary>
internal sealed record GetReplicaStatistics
{
    public static GetReplicaStatistics Instance { get; } = new();
}

/// <summary>The connections of other nodes a <see cref="ReplicaKeeper"/> holds a whole state of, by origin node.</summary>
/// <paramref name="TakenOver"/>: connections this node took over from a lost node, by that node, until it is fenced or gone.
/// <paramref name="TakenOverFromSilentOrigins"/>: connections taken over from a live origin that did not answer in time (fenced at once), in all.
internal sealed record ReplicaStatistics(IReadOnlyDictionary<Address, int> HeldByOrigin, IReadOnlyDictionary<Address, int> TakenOver, int TakenOverFromSilentOrigins)
{
    public int Held => HeldByOrigin.Values.Sum();
}

/// <summary>How a server node keeps its connections' state elsewhere (<c>mtcp.migration.replication</c>).</summary>
internal enum ReplicationMode
{
    /// <summary>Nothing is replicated: a connection dies with its node.</summary>
    Off,

    /// <summary>Every connection's state goes to a buddy node of the same service, which takes it over if this node dies.</summary>
    Buddy,

    /// <summary>Every connection's state is sealed for its client, which presents it to another node if this one dies (thesis 3.2).</summary>
    Client,
}

/// <summary>Which member keeps a node's replicas.</summary>
internal static class BuddyChoice
{
    /// <summary>
    /// The buddy of the connections <paramref name="self"/> serves on <paramref name="servicePort"/>: among the other
    /// members the directory sees serving that port, the next one after this node in address order (wrapping round),
    /// so that every node of a service has a different buddy where it can and all of a node's connections share one.
    /// Null when no other member serves the port: the connections then run unreplicated.
    /// </summary>
    public static Address? For(ControlMappings mappings, Address self, ushort servicePort)
    {
        ArgumentNullException.ThrowIfNull(mappings);
        ArgumentNullException.ThrowIfNull(self);
        var candidates = mappings.ControlByService
            .Where(pair => pair.Key.Port == servicePort && !pair.Value.Equals(self))
            .Select(pair => pair.Value)
            .Distinct()
            .Order(Akka.Cluster.Member.AddressOrdering)
            .ToList();
        if (candidates.Count == 0)
        {
            return null;
        }

        return candidates.FirstOrDefault(address => Akka.Cluster.Member.AddressOrdering.Compare(address, self) > 0) ?? candidates[0];
    }

    /// <summary>The service ports among <paramref name="endpoints"/> no other member serves in <paramref name="mappings"/>.</summary>
    public static IReadOnlyList<ushort> UnreplicatedPorts(ControlMappings mappings, Address self, IEnumerable<ServerEndpoint> endpoints) =>
        [.. endpoints.Select(endpoint => endpoint.Port).Distinct().Where(port => For(mappings, self, port) is null).Order()];
}

using Akka.Actor;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>
/// Asks the control connection to <paramref name="Peer"/> for a migrating connection's state (thesis 4.2.3,
/// step 4 at S2). Sent to the node's <see cref="ControlConnectionManager"/>. <paramref name="ReplyTo"/> gets
/// exactly one of: the <see cref="StateReply"/>, the <see cref="StateReject"/>, a
/// <see cref="StateRequestTimedOut"/> or a <see cref="StateRequestFailed"/>. A reply or reject arrives with
/// the control connection as its sender: answer a reinstated reply with a <see cref="StateAck"/> to that
/// sender. <see cref="ControlMessage.RequestId"/> must be unique among this node's requests in flight to the
/// peer (<see cref="ControlRequestIds"/> hands out such ids); the replies echo it.
/// </summary>
internal sealed record RequestState(Address Peer, StateRequest Request, IActorRef ReplyTo);

/// <summary>
/// Sends <paramref name="Ack"/> to <paramref name="Peer"/> on the control connection: the same as answering the
/// <see cref="StateReply"/>'s sender with the ack, for an endpoint that kept the peer's address instead.
/// Acknowledge only a reply that was delivered and reinstated (thesis 4.2.3, step 4 at S2).
/// </summary>
internal sealed record AcknowledgeState(Address Peer, StateAck Ack);

/// <summary>
/// Sends <paramref name="Notice"/> to <paramref name="Peer"/> on the control connection: this node took a connection of
/// the peer's over from its replica, and the peer's endpoint of the notice's epoch is to drop it (fencing, docs/failover.md).
/// </summary>
internal sealed record NotifyTakenOver(Address Peer, ConnectionTakenOver Notice);

/// <summary>
/// No answer came from <paramref name="Peer"/> within <c>mtcp.control.state-request-timeout</c>: the migration
/// fails and the client stays on its origin. A reply arriving later is never delivered and never acknowledged,
/// so the origin keeps the connection (it closes only on a <see cref="StateAck"/>, thesis 4.2.3).
/// </summary>
internal sealed record StateRequestTimedOut(Address Peer, ulong RequestId, ConnectionId NewEndpointCid, TimeSpan Timeout);

/// <summary>Why a state request ended without a reply, reject or timeout.</summary>
internal enum StateRequestFailure : byte
{
    /// <summary>The cluster's failure detector marked the peer unreachable; requests in flight to it are failed at once.</summary>
    PeerUnreachable = 1,

    /// <summary>The peer left the cluster or was downed and removed.</summary>
    PeerRemoved = 2,

    /// <summary>The Akka.Remote association to the peer was lost; messages in flight on it may be lost.</summary>
    PeerDisassociated = 3,

    /// <summary>A request with the same id is already in flight to the same peer.</summary>
    DuplicateRequestId = 4,

    /// <summary>The peer announced a reply above <c>mtcp.control.max-state-reply-size</c>.</summary>
    ReplyTooLarge = 5,

    /// <summary>The reply would exceed <c>mtcp.control.max-reassembly-bytes</c> with the transfers already in progress.</summary>
    ReassemblyBudgetExceeded = 6,

    /// <summary>The reassembled reply did not decode, or named another request.</summary>
    MalformedReply = 7,

    /// <summary>The control connection stopped (its node is shutting down).</summary>
    ControlConnectionStopped = 8,
}

/// <summary>The state request ended without an answer from the peer, for <paramref name="Reason"/>; the migration fails.</summary>
internal sealed record StateRequestFailed(Address Peer, ulong RequestId, ConnectionId NewEndpointCid, StateRequestFailure Reason);

/// <summary>
/// Handed to the node's connection registry when a peer asks for a connection's state (thesis 4.2.3 at S1).
/// The registry, or the endpoint it delegates to, answers the sender (the control connection) with exactly one
/// <see cref="StateReply"/> or <see cref="StateReject"/> carrying the request's id; the control connection
/// chunks large replies. An answer later than <c>mtcp.control.state-request-timeout</c> is dropped.
/// </summary>
internal sealed record StateRequestReceived(Address Peer, StateRequest Request);

/// <summary>
/// Handed to the node's connection registry when a peer acknowledges a reinstated state reply: the origin
/// endpoint of <see cref="StateAck.MigratingCid"/> may now close (thesis 4.2.3: passive close, then CLOSED).
/// </summary>
internal sealed record StateAckReceived(Address Peer, StateAck Ack);

/// <summary>
/// Handed to the node's connection registry, and by it to the endpoint of <see cref="ConnectionTakenOver.MigratingCid"/>,
/// when a peer took that connection over from its replica: the endpoint drops it if it is the incarnation the notice names.
/// </summary>
internal sealed record TakenOverReceived(Address Peer, ConnectionTakenOver Notice);

/// <summary>
/// Handed to the node's connection registry when a peer gave up on a state request it sent (it timed out, or
/// the reply was refused). No <see cref="StateAck"/> will follow: the origin endpoint keeps serving the client.
/// Best effort: the notice can be lost with the peer, and the absence of a StateAck is what counts.
/// </summary>
internal sealed record StateTransferAbandoned(Address Peer, ulong RequestId, StateTransferAbandonReason Reason);

/// <summary>
/// The manager's word to a new control connection: reach the peer now (resolve its manager over the association), not
/// on the first state request.
/// </summary>
internal sealed record WarmUp
{
    public static WarmUp Instance { get; } = new();
}

/// <summary>Asks a <see cref="ControlConnection"/> whether it has reached its peer; answered with <see cref="ControlConnectionState"/>.</summary>
internal sealed record GetControlConnectionState
{
    public static GetControlConnectionState Instance { get; } = new();
}

/// <summary>A control connection's state: <paramref name="PeerReached"/> once its <see cref="WarmUp"/> resolved the peer's manager.</summary>
internal sealed record ControlConnectionState(Address Peer, bool PeerReached);

/// <summary>Asks the <see cref="ControlConnectionManager"/> for its control connections.</summary>
internal sealed record GetControlConnections
{
    public static GetControlConnections Instance { get; } = new();
}

/// <summary>The control connections a <see cref="ControlConnectionManager"/> holds, one per peer node.</summary>
internal sealed record ControlConnections(IReadOnlyDictionary<Address, IActorRef> ByPeer);

/// <summary>
/// Gives the node's <see cref="ControlConnectionManager"/> the cluster key's authenticator: from now on every control
/// connection seals what it sends and drops what it receives unless it opens (docs/threat-model.md). Sent by
/// <c>MtcpRuntime.EnableMigrationAsync</c>; answered with <see cref="ControlAuthenticatorInUse"/>.
/// </summary>
internal sealed record UseControlAuthenticator(IMigrationAuthenticator Authenticator);

/// <summary>The control connections seal and open control messages with the authenticator given.</summary>
internal sealed record ControlAuthenticatorInUse
{
    public static ControlAuthenticatorInUse Instance { get; } = new();
}

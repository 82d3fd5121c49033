using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

// The direct replication channel's conversation inside a node (docs/failover.md, "The direct replication channel"):
// a control connection opens the channel to its peer for this node's updates and learns of its fate; the channel
// listener hands it the peer's channel to this node; both channels' readers hand it what they opened. The bytes on
// the wire are Wire's ReplicationChannelFrame around the sealed envelope the control connection would have sent.

/// <summary>The channel's settings with the TLS options of the node's certificate: what its control connections need to open channels.</summary>
internal sealed record DirectReplication(ReplicationChannelSettings Settings, ReplicationChannelSecurity Security);

/// <summary>To a control connection, from the manager: the port of the peer's replication channel on its control host; 0: it announces none.</summary>
internal sealed record PeerReplicationChannel(ushort Port);

/// <summary>To a control connection, from its own connector: the channel to the peer is up, <paramref name="Link"/> carries this node's updates.</summary>
internal sealed record ReplicationChannelOpened(ReplicationChannelLink Link);

/// <summary>To a control connection, from its own connector: the channel to the peer could not be opened, for <paramref name="Reason"/>.</summary>
internal sealed record ReplicationChannelUnavailable(string Reason);

/// <summary>To a control connection: <paramref name="Link"/> closed, for <paramref name="Reason"/>; what was queued or in flight on it may be lost.</summary>
internal sealed record ReplicationChannelBroken(ReplicationChannelLink Link, string Reason);

/// <summary>To the peer's control connection, from the channel listener: <paramref name="Link"/> is the peer's channel to this node (its acks go back on it).</summary>
internal sealed record ReplicationChannelAccepted(ReplicationChannelLink Link);

/// <summary>To a control connection, from a channel's reader: <paramref name="Message"/>, opened under the cluster key for the peer.</summary>
internal sealed record ReceivedOnChannel(ControlMessage Message);

/// <summary>Asks the control connection manager for the control connection to <paramref name="Peer"/>; answered with <see cref="ControlConnectionFor"/>.</summary>
internal sealed record GetControlConnection(Address Peer);

/// <summary>The control connection to <paramref name="Peer"/>, created if there was none.</summary>
internal sealed record ControlConnectionFor(Address Peer, IActorRef Connection);

/// <summary>
/// To an endpoint replicating to <paramref name="Buddy"/>: its updates or the buddy's acks may have been lost with a
/// replication channel that broke; the buddy gets the whole state again (the acks of what went before are ignored).
/// </summary>
internal sealed record ReplicationPathLost(Address Buddy);

/// <summary>Asks a control connection about its replication channels; answered with <see cref="ReplicationChannelState"/>.</summary>
internal sealed record GetReplicationChannelState
{
    public static GetReplicationChannelState Instance { get; } = new();
}

/// <summary>
/// A control connection's replication channels: <paramref name="ToPeer"/>, this node's updates go on one;
/// <paramref name="FromPeer"/>, the peer's come on one (and this node's acks go back on it); the frames each carried.
/// </summary>
internal sealed record ReplicationChannelState(bool ToPeer, bool FromPeer, long FramesSent, long FramesReceived);

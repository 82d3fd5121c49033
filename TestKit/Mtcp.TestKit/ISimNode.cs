using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>
/// A host on a <see cref="SimNetwork"/>: a sans-IO endpoint seen from outside. The network delivers packets,
/// drains transmissions after every step and fires the host's timer when virtual time reaches it.
/// </summary>
public interface ISimNode
{
    IpAddress Address { get; }

    void Receive(Instant now, in SimPacket packet);

    /// <summary>Returns the next packet to put on the wire; called until false.</summary>
    bool PollTransmit(Instant now, out SimPacket packet);

    Instant? PollTimeout();

    void HandleTimeout(Instant now);
}

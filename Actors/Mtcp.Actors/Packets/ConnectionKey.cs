using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// Names a connection endpoint from this node's side: the peer's address and port and our port. Our address is
/// the transport's, the same for every key of one packet actor, so it is left out of the key.
/// </summary>
internal readonly record struct ConnectionKey(IpAddress RemoteAddress, ushort RemotePort, ushort LocalPort)
{
    public override string ToString() => $"{LocalPort}<->{RemoteAddress}:{RemotePort}";
}

using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// The name a policy uses for a connection: its <c>Cid</c> (thesis 3.2.1), which stays the same across
/// migrations because the client keeps knowing the connection by its origin server's endpoint.
/// </summary>
public readonly record struct ConnectionKey(ConnectionId Cid)
{
    public override string ToString() => Cid.ToString();
}

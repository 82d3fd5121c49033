namespace Mtcp.Wire;

/// <summary>
/// The 4-tuple that names a connection, <c>Cid</c> in thesis 3.2.1: the client's address and port and the
/// server endpoint the client knows the connection by (its origin server, which stays the name
/// across migrations).
/// </summary>
public readonly record struct ConnectionId(IpAddress ClientAddress, ushort ClientPort, IpAddress ServerAddress, ushort ServerPort)
{
    public override string ToString() => $"{ClientAddress}:{ClientPort}<->{ServerAddress}:{ServerPort}";
}

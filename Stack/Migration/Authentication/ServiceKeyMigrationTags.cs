using System.Buffers.Binary;
using System.Security.Cryptography;
using Mtcp.Wire;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// <see cref="IMigrationTags"/> with one secret key shared by the clients and servers of a service: HMAC-SHA256,
/// truncated to 64 bits, over a domain tag and the message's fields (the Cids, <c>rcv_nxt</c>, the trigger's
/// destination). An off-path attacker without the key cannot forge a special SYN or a trigger (thesis 3.2.1 leaves
/// the authenticator open). Weaker than the per-connection secrets of <see cref="MigrationAuthenticator"/>: anyone
/// holding the service key can move any connection of the service. The actor runtime uses the per-connection scheme,
/// under the cluster key <see cref="MigrationAuthenticator.FromServiceKey"/> derives from such a key.
/// </summary>
public sealed class ServiceKeyMigrationTags : IMigrationTags
{
    private const byte MigratedConnectionTag = 1;
    private const byte TriggerTag = 2;

    private readonly byte[] _key;

    /// <param name="key">at least 16 bytes of secret shared by the service's clients and servers.</param>
    public ServiceKeyMigrationTags(ReadOnlySpan<byte> key)
    {
        if (key.Length < 16)
        {
            throw new ArgumentException("a service key needs at least 16 bytes", nameof(key));
        }

        _key = key.ToArray();
    }

    public ulong ComputeMigratedConnection(ConnectionId cid, ConnectionId newEndpointCid, SeqNumber rcvNxt)
    {
        Span<byte> message = stackalloc byte[128];
        var length = Encode(message, MigratedConnectionTag, cid);
        length += Encode(message[length..], MigratedConnectionTag, newEndpointCid);
        BinaryPrimitives.WriteUInt32BigEndian(message[length..], rcvNxt.Value);
        return Mac(message[..(length + 4)]);
    }

    public bool VerifyMigratedConnection(ConnectionId cid, ConnectionId newEndpointCid, SeqNumber rcvNxt, ulong authenticator) =>
        FixedTimeEquals(ComputeMigratedConnection(cid, newEndpointCid, rcvNxt), authenticator);

    public ulong ComputeTrigger(ConnectionId cid, ServerEndpoint? destination)
    {
        Span<byte> message = stackalloc byte[128];
        var length = Encode(message, TriggerTag, cid);
        if (destination is { } server)
        {
            length += server.Address.WriteTo(message[length..]);
            BinaryPrimitives.WriteUInt16BigEndian(message[length..], server.Port);
            length += 2;
        }

        return Mac(message[..length]);
    }

    public bool VerifyTrigger(ConnectionId cid, ServerEndpoint? destination, ulong authenticator) =>
        FixedTimeEquals(ComputeTrigger(cid, destination), authenticator);

    private static int Encode(Span<byte> destination, byte tag, ConnectionId cid)
    {
        destination[0] = tag;
        var at = 1;
        at += cid.ClientAddress.WriteTo(destination[at..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[at..], cid.ClientPort);
        at += 2;
        at += cid.ServerAddress.WriteTo(destination[at..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[at..], cid.ServerPort);
        return at + 2;
    }

    private ulong Mac(ReadOnlySpan<byte> message)
    {
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key, message, mac);
        return BinaryPrimitives.ReadUInt64BigEndian(mac);
    }

    private static bool FixedTimeEquals(ulong a, ulong b)
    {
        Span<byte> left = stackalloc byte[8];
        Span<byte> right = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(left, a);
        BinaryPrimitives.WriteUInt64BigEndian(right, b);
        return CryptographicOperations.FixedTimeEquals(left, right);
    }
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using Mtcp.Wire;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// <see cref="IMigrationTags"/> under one <see cref="ClusterKey"/> held by the client and every server of a service:
/// each tag is HMAC-SHA256 (truncated to the 64 bits the options carry, thesis 3.2.1) over a domain label and the
/// message's fields. Unlike the per-connection secrets of <see cref="MigrationAuthenticator"/>, whoever holds the key
/// can compute every connection's tags, so the key must stay within the service's trust domain (the hosts read it
/// from <c>mtcp.migration.cluster-key</c>).
/// </summary>
public sealed class ClusterKeyMigrationTags : IMigrationTags
{
    private static ReadOnlySpan<byte> MigratedConnectionLabel => "MTCP1 shared-key MIGRATED_CONN\0"u8;

    private static ReadOnlySpan<byte> TriggerLabel => "MTCP1 shared-key Auth_trig\0"u8;

    private readonly byte[] _key;

    public ClusterKeyMigrationTags(ClusterKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key.Key.ToArray();
    }

    public ulong ComputeMigratedConnection(ConnectionId cid, ConnectionId newEndpointCid, SeqNumber rcvNxt)
    {
        Span<byte> message = stackalloc byte[MacInput.MaxLength];
        var length = Write(message, MigratedConnectionLabel);
        length += WriteConnectionId(message[length..], cid);
        length += WriteConnectionId(message[length..], newEndpointCid);
        BinaryPrimitives.WriteUInt32BigEndian(message[length..], rcvNxt.Value);
        return Mac(message[..(length + sizeof(uint))]);
    }

    public bool VerifyMigratedConnection(ConnectionId cid, ConnectionId newEndpointCid, SeqNumber rcvNxt, ulong authenticator) =>
        FixedTimeEquals(ComputeMigratedConnection(cid, newEndpointCid, rcvNxt), authenticator);

    public ulong ComputeTrigger(ConnectionId cid, ServerEndpoint? destination)
    {
        Span<byte> message = stackalloc byte[MacInput.MaxLength];
        var length = Write(message, TriggerLabel);
        length += WriteConnectionId(message[length..], cid);

        // A presence byte keeps "no destination" distinct from every encoded destination.
        message[length++] = destination is null ? (byte)0 : (byte)1;
        if (destination is { } server)
        {
            length += WriteEndpoint(message[length..], server.Address, server.Port);
        }

        return Mac(message[..length]);
    }

    public bool VerifyTrigger(ConnectionId cid, ServerEndpoint? destination, ulong authenticator) =>
        FixedTimeEquals(ComputeTrigger(cid, destination), authenticator);

    private static int Write(Span<byte> destination, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(destination);
        return bytes.Length;
    }

    private static int WriteConnectionId(Span<byte> destination, ConnectionId cid)
    {
        var length = WriteEndpoint(destination, cid.ClientAddress, cid.ClientPort);
        return length + WriteEndpoint(destination[length..], cid.ServerAddress, cid.ServerPort);
    }

    private static int WriteEndpoint(Span<byte> destination, IpAddress address, ushort port)
    {
        // The family byte keeps an IPv4 endpoint from reading as a prefix of an IPv6 one.
        destination[0] = address.IsIPv4 ? (byte)4 : (byte)6;
        var length = 1 + address.WriteTo(destination[1..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[length..], port);
        return length + sizeof(ushort);
    }

    private ulong Mac(ReadOnlySpan<byte> message)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, message, mac);
        return BinaryPrimitives.ReadUInt64BigEndian(mac);
    }

    private static bool FixedTimeEquals(ulong left, ulong right)
    {
        Span<byte> a = stackalloc byte[sizeof(ulong)];
        Span<byte> b = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(a, left);
        BinaryPrimitives.WriteUInt64BigEndian(b, right);
        return CryptographicOperations.FixedTimeEquals(a, b);
    }
}

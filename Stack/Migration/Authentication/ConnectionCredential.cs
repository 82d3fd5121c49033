using System.Buffers.Binary;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// What the server holding a connection keeps for its authentication, and what travels in
/// <see cref="StateReply.MigrationCredential"/> to the next holder: the <see cref="MigrationCredential"/> and the
/// Cid the secret was derived under, the connection's FIRST Cid. Special SYNs and state requests name the current
/// Cid, which changes at every hop; the secret stays the one the origin put on its SYN+ACK, so a holder needs
/// the first Cid to recompute it (see docs/threat-model.md, "A connection's name across hops").
/// <code>
///  | MigrationCredential (17) | family | client address | client port | family | server address | server port |
/// </code>
/// 31 bytes for IPv4, 55 for IPv6; every field is public material.
/// </summary>
public readonly record struct ConnectionCredential(ConnectionId SecretCid, MigrationCredential Credential)
{
    /// <summary>Bytes of the encoding with IPv6 addresses, the longest.</summary>
    public const int MaxLength = MigrationCredential.BufferLength + (2 * (1 + IpAddress.V6Length + 2));

    /// <summary>At the new holder, on reinstating the state: one more completed migration (the epoch moves on).</summary>
    public ConnectionCredential AfterMigration() => this with { Credential = Credential.AfterMigration() };

    /// <summary>The connection's secret under <paramref name="authenticator"/>'s keys; false when its key generation is no longer held.</summary>
    public bool TryDeriveSecret(IMigrationAuthenticator authenticator, out MigrationSecret secret)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        return authenticator.TryDeriveSecret(Credential, SecretCid, out secret);
    }

    /// <summary>The bytes for <see cref="StateReply.MigrationCredential"/>.</summary>
    public byte[] ToBytes()
    {
        Span<byte> buffer = stackalloc byte[MaxLength];
        var length = Credential.WriteTo(buffer);
        length += WriteEndpoint(buffer[length..], SecretCid.ClientAddress, SecretCid.ClientPort);
        length += WriteEndpoint(buffer[length..], SecretCid.ServerAddress, SecretCid.ServerPort);
        return buffer[..length].ToArray();
    }

    /// <summary>Parses bytes received from another server; false on any malformed or trailing input.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ConnectionCredential result)
    {
        result = default;
        if (source.Length < MigrationCredential.BufferLength
            || !MigrationCredential.TryRead(source[..MigrationCredential.BufferLength], out var credential))
        {
            return false;
        }

        var rest = source[MigrationCredential.BufferLength..];
        if (!TryReadEndpoint(ref rest, out var clientAddress, out var clientPort)
            || !TryReadEndpoint(ref rest, out var serverAddress, out var serverPort)
            || !rest.IsEmpty)
        {
            return false;
        }

        result = new ConnectionCredential(new ConnectionId(clientAddress, clientPort, serverAddress, serverPort), credential);
        return true;
    }

    private static int WriteEndpoint(Span<byte> destination, IpAddress address, ushort port)
    {
        destination[0] = address.IsIPv6 ? (byte)6 : address.IsIPv4 ? (byte)4 : throw new InvalidOperationException("a Cid without an address");
        var length = 1 + address.WriteTo(destination[1..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[length..], port);
        return length + 2;
    }

    private static bool TryReadEndpoint(ref ReadOnlySpan<byte> source, out IpAddress address, out ushort port)
    {
        address = default;
        port = 0;
        var addressLength = source.IsEmpty ? 0 : source[0] switch { 4 => IpAddress.V4Length, 6 => IpAddress.V6Length, _ => 0 };
        if (addressLength == 0 || source.Length < 1 + addressLength + 2)
        {
            return false;
        }

        address = addressLength == IpAddress.V4Length ? IpAddress.FromIPv4(source.Slice(1, addressLength)) : IpAddress.FromIPv6(source.Slice(1, addressLength));
        port = BinaryPrimitives.ReadUInt16BigEndian(source[(1 + addressLength)..]);
        source = source[(1 + addressLength + 2)..];
        return true;
    }
}

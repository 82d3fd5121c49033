using System.Buffers.Binary;
using System.Security.Cryptography;
using Mtcp.Wire;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// Domain-separation labels: every MAC input starts with one, so an input built for one purpose can
/// never equal an input built for another, even under the same key. Each label is NUL-terminated and
/// fixes the layout that follows it, which makes every encoding below unambiguous.
/// </summary>
internal static class MacLabel
{
    public static ReadOnlySpan<byte> MigrationSecret => "MTCP1 migration secret\0"u8;

    public static ReadOnlySpan<byte> MigratedConnection => "MTCP1 MIGRATED_CONN\0"u8;

    public static ReadOnlySpan<byte> TriggerKey => "MTCP1 trigger key\0"u8;

    public static ReadOnlySpan<byte> AuthTrig => "MTCP1 Auth_trig\0"u8;

    public static ReadOnlySpan<byte> AuthDest => "MTCP1 Auth_dest\0"u8;

    public static ReadOnlySpan<byte> ControlKey => "MTCP1 control key\0"u8;

    public static ReadOnlySpan<byte> ClusterKeyFromServiceKey => "MTCP1 cluster key from service key\0"u8;

    public static ReadOnlySpan<byte> KeyGeneration => "MTCP1 cluster key generation\0"u8;

    public static ReadOnlySpan<byte> ControlMessage => "MTCP1 control message\0"u8;

    public static ReadOnlySpan<byte> ClientStateKey => "MTCP1 client state key\0"u8;

    public static ReadOnlySpan<byte> ClientState => "MTCP1 client state\0"u8;
}

/// <summary>
/// Builds a MAC input in a caller-provided (stack) buffer. Endpoints are written as
/// <c>family (4 or 6) | address (4 or 16) | port</c>, integers big-endian.
/// </summary>
internal ref struct MacInput
{
    /// <summary>Enough for the longest input: the control-message header with two 255-byte identities.</summary>
    public const int MaxLength = 640;

    private readonly Span<byte> _buffer;
    private int _length;

    public MacInput(Span<byte> buffer, ReadOnlySpan<byte> label)
    {
        _buffer = buffer;
        _length = 0;
        WriteBytes(label);
    }

    public readonly ReadOnlySpan<byte> Written => _buffer[.._length];

    public void WriteByte(byte value) => _buffer[_length++] = value;

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_buffer[_length..], value);
        _length += 4;
    }

    public void WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64BigEndian(_buffer[_length..], value);
        _length += 8;
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_buffer[_length..]);
        _length += value.Length;
    }

    /// <summary>A length-prefixed byte string of at most 255 bytes.</summary>
    public void WriteShortBytes(ReadOnlySpan<byte> value)
    {
        if (value.Length > byte.MaxValue)
        {
            throw new ArgumentException($"identity is {value.Length} bytes, at most {byte.MaxValue}");
        }

        WriteByte((byte)value.Length);
        WriteBytes(value);
    }

    public void WriteEndpoint(IpAddress address, ushort port)
    {
        WriteByte(address.IsIPv6 ? (byte)6 : address.IsIPv4 ? (byte)4 : throw new ArgumentException("endpoint has no address"));
        _length += address.WriteTo(_buffer[_length..]);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[_length..], port);
        _length += 2;
    }

    public void WriteEndpoint(ServerEndpoint endpoint) => WriteEndpoint(endpoint.Address, endpoint.Port);

    /// <summary>The Cid as client endpoint then server endpoint.</summary>
    public void WriteConnectionId(ConnectionId cid)
    {
        WriteEndpoint(cid.ClientAddress, cid.ClientPort);
        WriteEndpoint(cid.ServerAddress, cid.ServerPort);
    }

    public static void Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, input, mac);
        mac[..output.Length].CopyTo(output);
    }

    /// <summary>HMAC-SHA256 truncated to its leftmost 64 bits (RFC 2104 §5), read big-endian as on the wire.</summary>
    public static ulong Hmac64(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, input, mac);
        return BinaryPrimitives.ReadUInt64BigEndian(mac);
    }
}

/// <summary>Tag comparison that takes the same time whatever the position of the first differing bit.</summary>
internal static class TagComparison
{
    public static bool FixedTimeEquals(ulong expected, ulong received)
    {
        Span<byte> left = stackalloc byte[8];
        Span<byte> right = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(left, expected);
        BinaryPrimitives.WriteUInt64BigEndian(right, received);
        return CryptographicOperations.FixedTimeEquals(left, right);
    }
}

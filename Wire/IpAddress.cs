using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mtcp.Wire;

/// <summary>
/// An IPv4 or IPv6 address held by value (no heap object), for checksums, connection ids and options
/// on the hot path. IPv4 uses the low four bytes of <see cref="_low"/>.
/// </summary>
public readonly struct IpAddress : IEquatable<IpAddress>
{
    public const int V4Length = 4;
    public const int V6Length = 16;

    private readonly ulong _high;
    private readonly ulong _low;

    private IpAddress(AddressFamily family, ulong high, ulong low)
    {
        Family = family;
        _high = high;
        _low = low;
    }

    public AddressFamily Family { get; }

    public bool IsIPv4 => Family == AddressFamily.InterNetwork;

    public bool IsIPv6 => Family == AddressFamily.InterNetworkV6;

    /// <summary>Bytes on the wire: 4 for IPv4, 16 for IPv6, 0 for the default value.</summary>
    public int Length => Family switch
    {
        AddressFamily.InterNetwork => V4Length,
        AddressFamily.InterNetworkV6 => V6Length,
        _ => 0,
    };

    public static IpAddress FromIPv4(ReadOnlySpan<byte> bytes) =>
        new(AddressFamily.InterNetwork, 0, BinaryPrimitives.ReadUInt32BigEndian(bytes));

    public static IpAddress FromIPv6(ReadOnlySpan<byte> bytes) =>
        new(AddressFamily.InterNetworkV6, BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));

    public static IpAddress FromIPAddress(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[V6Length];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException("address does not fit 16 bytes", nameof(address));
        }

        return address.AddressFamily switch
        {
            AddressFamily.InterNetwork when written == V4Length => FromIPv4(bytes),
            AddressFamily.InterNetworkV6 when written == V6Length => FromIPv6(bytes),
            _ => throw new ArgumentException($"unsupported address family {address.AddressFamily}", nameof(address)),
        };
    }

    public static IpAddress Parse(string text) => FromIPAddress(IPAddress.Parse(text));

    /// <summary>Writes the address in network order; returns the byte count (4 or 16).</summary>
    public int WriteTo(Span<byte> destination)
    {
        if (IsIPv4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)_low);
            return V4Length;
        }

        if (IsIPv6)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
            BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
            return V6Length;
        }

        throw new InvalidOperationException("the default IpAddress has no family");
    }

    /// <summary>
    /// The address's contribution to an Internet checksum: the sum of its 32-bit big-endian words, which
    /// folds to the same value as the sum of its 16-bit words (RFC 1071 §2).
    /// </summary>
    internal ulong SumOfWords() =>
        (_high >> 32) + (_high & 0xFFFF_FFFF) + (_low >> 32) + (_low & 0xFFFF_FFFF);

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[V6Length];
        var length = WriteTo(bytes);
        return new IPAddress(bytes[..length]);
    }

    public bool Equals(IpAddress other) => Family == other.Family && _high == other._high && _low == other._low;

    public override bool Equals(object? obj) => obj is IpAddress other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Family, _high, _low);

    public static bool operator ==(IpAddress left, IpAddress right) => left.Equals(right);

    public static bool operator !=(IpAddress left, IpAddress right) => !left.Equals(right);

    public override string ToString() => Length == 0 ? "(none)" : ToIPAddress().ToString();
}

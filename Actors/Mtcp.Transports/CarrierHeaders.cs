using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>Why a received datagram's carrier (its IPv4 header, or the source address the kernel reports) was discarded.</summary>
internal enum CarrierError : byte
{
    None = 0,

    /// <summary>Shorter than the fixed part of its header.</summary>
    Truncated,

    /// <summary>IP version other than 4.</summary>
    NotIPv4,

    /// <summary>IHL below 5 words, or beyond the total length.</summary>
    BadHeaderLength,

    /// <summary>Total length beyond the bytes received.</summary>
    BadTotalLength,

    /// <summary>Another IP protocol than the transport's (another raw socket's traffic).</summary>
    OtherProtocol,

    /// <summary>For another address of this host (every raw socket sees every packet of its protocol).</summary>
    OtherDestination,

    /// <summary>A socket address of a family other than IPv4 or IPv6, or too short for its family.</summary>
    BadSourceAddress,

    /// <summary>From a UDP port other than the peers' (not MTCP traffic).</summary>
    OtherPort,
}

/// <summary>
/// The decoders of what carries a segment to a transport, kept apart from the sockets so that they can be tested and
/// fuzzed byte for byte: the IPv4 header a raw socket returns in front of each segment (RFC 791 §3.1), and the source
/// socket address of a UDP datagram (whose payload is the segment itself). Neither throws: a datagram either locates
/// its segment or is discarded with a <see cref="CarrierError"/>.
/// </summary>
internal static class CarrierHeaders
{
    // sockaddr_in: family(2) port(2) address(4); sockaddr_in6: family(2) port(2) flowinfo(4) address(16) scope(4).
    public const int PortOffset = 2;
    public const int IPv4SocketAddressOffset = 4;
    public const int IPv6SocketAddressOffset = 8;

    /// <summary>
    /// The segment inside a raw IPv4 packet (header diagram and offsets in <see cref="RawIPv4Transport"/>) of <paramref name="protocol"/> for <paramref name="localAddress"/> (as a
    /// big-endian 32-bit value): after the header, up to the total length (the kernel may hand over trailing bytes).
    /// </summary>
    public static CarrierError TryLocateInIPv4(ReadOnlySpan<byte> packet, byte protocol, uint localAddress, IpAddress localIpAddress, out ReceivedSegment received)
    {
        received = default;
        if (packet.Length < RawIPv4Transport.MinIPv4HeaderLength)
        {
            return CarrierError.Truncated;
        }

        var versionAndIhl = packet[RawIPv4Transport.VersionAndIhlOffset];
        var headerLength = (versionAndIhl & 0x0F) * 4;
        var totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet[RawIPv4Transport.TotalLengthOffset..]);
        var error = (versionAndIhl >> 4) != 4 ? CarrierError.NotIPv4
            : headerLength < RawIPv4Transport.MinIPv4HeaderLength || totalLength < headerLength ? CarrierError.BadHeaderLength
            : totalLength > packet.Length ? CarrierError.BadTotalLength
            : packet[RawIPv4Transport.ProtocolOffset] != protocol ? CarrierError.OtherProtocol
            : BinaryPrimitives.ReadUInt32BigEndian(packet[RawIPv4Transport.DestinationAddressOffset..]) != localAddress ? CarrierError.OtherDestination
            : CarrierError.None;
        if (error == CarrierError.None)
        {
            received = new ReceivedSegment(IpAddress.FromIPv4(packet[RawIPv4Transport.SourceAddressOffset..]), localIpAddress, headerLength, totalLength - headerLength);
        }

        return error;
    }

    /// <summary>The source of a UDP datagram from its socket address (<paramref name="socketAddress"/>'s bytes), accepted only from <paramref name="peerPort"/>.</summary>
    public static CarrierError TryReadUdpSource(ReadOnlySpan<byte> socketAddress, AddressFamily family, ushort peerPort, out IpAddress source)
    {
        var error = TryReadSource(socketAddress, family, out source);
        if (error == CarrierError.None && BinaryPrimitives.ReadUInt16BigEndian(socketAddress[PortOffset..]) != peerPort)
        {
            source = default;
            return CarrierError.OtherPort;
        }

        return error;
    }

    /// <summary>
    /// The source address of a datagram from its socket address (<paramref name="socketAddress"/>'s bytes): a UDP
    /// datagram's, or a raw IPv6 packet's (the kernel returns an IPv6 raw socket's payload without the IPv6 header).
    /// </summary>
    public static CarrierError TryReadSource(ReadOnlySpan<byte> socketAddress, AddressFamily family, out IpAddress source)
    {
        source = default;
        var addressOffset = family switch
        {
            AddressFamily.InterNetwork => IPv4SocketAddressOffset,
            AddressFamily.InterNetworkV6 => IPv6SocketAddressOffset,
            _ => -1,
        };
        var addressLength = family == AddressFamily.InterNetwork ? IpAddress.V4Length : IpAddress.V6Length;
        if (addressOffset < 0 || socketAddress.Length < addressOffset + addressLength)
        {
            return CarrierError.BadSourceAddress;
        }

        var address = socketAddress.Slice(addressOffset, addressLength);
        source = family == AddressFamily.InterNetwork ? IpAddress.FromIPv4(address) : IpAddress.FromIPv6(address);
        return CarrierError.None;
    }

    /// <summary>
    /// A datagram that is one whole segment (a UDP payload, an IPv6 raw socket's payload), from <paramref name="source"/>
    /// to <paramref name="localAddress"/>: kept when its source was read without <paramref name="sourceError"/>.
    /// </summary>
    public static bool TryLocateWhole(CarrierError sourceError, IpAddress source, IpAddress localAddress, int length, out ReceivedSegment received)
    {
        received = sourceError == CarrierError.None ? new ReceivedSegment(source, localAddress, 0, length) : default;
        return sourceError == CarrierError.None;
    }

    /// <summary>Writes <paramref name="ip"/> and <paramref name="port"/> into a sockaddr_in or sockaddr_in6 of the same family.</summary>
    public static void WriteSocketAddress(SocketAddress address, IpAddress ip, ushort port)
    {
        var bytes = address.Buffer.Span;
        BinaryPrimitives.WriteUInt16BigEndian(bytes[PortOffset..], port);
        ip.WriteTo(bytes[(ip.IsIPv4 ? IPv4SocketAddressOffset : IPv6SocketAddressOffset)..]);
    }
}

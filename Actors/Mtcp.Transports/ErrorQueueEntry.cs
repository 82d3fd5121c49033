using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>What one entry of the UDP transport's error queue was taken for.</summary>
internal enum QueuedErrorVerdict : byte
{
    /// <summary>An ICMP "fragmentation needed" or ICMPv6 "packet too big" quoting a segment sent to the peer port: a report.</summary>
    PacketTooBig = 0,

    /// <summary>No sock_extended_err among the control messages, or one cut short.</summary>
    NoExtendedError,

    /// <summary>Another error (port or host unreachable, time exceeded, ...): what it means, retransmission handles.</summary>
    NotPacketTooBig,

    /// <summary>
    /// A datagram this host refused as beyond the MTU it holds for the interface (SO_EE_ORIGIN_LOCAL, EMSGSIZE): the
    /// report names its destination and that MTU and quotes nothing; the transport, which kept the segment, fills it in.
    /// </summary>
    LocalTooBig,

    /// <summary>Fewer than the segment's first 8 bytes were quoted after the UDP header: no ports or sequence number to check.</summary>
    TruncatedQuote,

    /// <summary>The quoted datagram went to another port than the peer port, or its address is not of the socket's family.</summary>
    NotOurs,
}

/// <summary>
/// The decoder of one entry of a UDP socket's error queue (ip(7) and ipv6(7), IP_RECVERR / IPV6_RECVERR; read with
/// recvmsg(2) MSG_ERRQUEUE), kept apart from the socket so that it can be tested byte for byte. The kernel hands over
/// an ICMP error about a datagram we sent in three parts: the control message, a <c>struct sock_extended_err</c> in
/// host byte order (errno, origin, ICMP type and code, and for "fragmentation needed" / "packet too big" the MTU in
/// <c>ee_info</c>); the socket address, which is the quoted datagram's destination address and UDP port; and the
/// data, which is what the ICMP message quoted after the UDP header: the start of our segment. A report is made
/// only of an ICMP 3/4 (RFC 1191) or ICMPv6 2/0 (RFC 8201) whose datagram went to the peer port and whose quote holds
/// the segment's ports and sequence number; the kernel found our socket by the quoted addresses and UDP ports, so the
/// quoted source is ours. Nothing here is authenticated: the connection checks the quote (RFC 5927 §4.1). A send the
/// local host refused (ip_local_error, ipv6_local_error) leaves an entry of origin SO_EE_ORIGIN_LOCAL with its
/// destination (IPv4's port is the socket's connected port, 0 here) and the MTU it was held to, and no data; no ICMP
/// message can make one.
/// </summary>
internal static class ErrorQueueEntry
{
    /// <summary>IP protocol 17, what the quoted packet carried the segment in.</summary>
    public const byte UdpProtocol = 17;

    // <linux/errqueue.h>: ee_origin values.
    public const byte OriginLocal = 1;
    public const byte OriginIcmp = 2;
    public const byte OriginIcmp6 = 3;

    // The control message carrying it: IP_RECVERR at level SOL_IP, IPV6_RECVERR at level SOL_IPV6 (<linux/in.h>, <linux/in6.h>).
    public const int IPLevel = 0;
    public const int IPRecvErr = 11;
    public const int IPv6Level = 41;
    public const int IPv6RecvErr = 25;

    // struct cmsghdr on LP64: size_t cmsg_len, int cmsg_level, int cmsg_type; each message aligned to 8 (CMSG_ALIGN).
    public const int ControlHeaderLength = 16;
    private const int ControlAlignment = 8;

    // struct sock_extended_err: u32 ee_errno; u8 ee_origin, ee_type, ee_code, ee_pad; u32 ee_info; u32 ee_data.
    public const int ExtendedErrorLength = 16;
    private const int ErrnoOffset = 0;
    private const int OriginOffset = 4;
    private const int TypeOffset = 5;
    private const int CodeOffset = 6;
    private const int InfoOffset = 8;

    /// <summary>
    /// Reads one entry: <paramref name="control"/> the control messages recvmsg returned, <paramref name="socketAddress"/>
    /// its socket address (of <paramref name="family"/>), <paramref name="quote"/> its data. Never throws.
    /// </summary>
    public static QueuedErrorVerdict TryRead(ReadOnlySpan<byte> control, ReadOnlySpan<byte> socketAddress, AddressFamily family, ReadOnlySpan<byte> quote, IpAddress localAddress, ushort peerPort, out PacketTooBigReport report)
    {
        report = default;
        var (level, type) = family == AddressFamily.InterNetworkV6 ? (IPv6Level, IPv6RecvErr) : (IPLevel, IPRecvErr);
        if (!TryFindControlMessage(control, level, type, out var extended) || extended.Length < ExtendedErrorLength)
        {
            return QueuedErrorVerdict.NoExtendedError;
        }

        var origin = extended[OriginOffset];
        var mtu = (int)Math.Min(MemoryMarshal.Read<uint>(extended[InfoOffset..]), int.MaxValue);
        var emsgsize = MemoryMarshal.Read<uint>(extended[ErrnoOffset..]) == Libc.Emsgsize;
        if (origin == OriginLocal)
        {
            if (!emsgsize || mtu <= 0 || CarrierHeaders.TryReadSource(socketAddress, family, out var refusedDestination) != CarrierError.None)
            {
                return QueuedErrorVerdict.NotPacketTooBig;
            }

            report = new PacketTooBigReport(localAddress, refusedDestination, UdpProtocol, 0, 0, default, mtu);
            return QueuedErrorVerdict.LocalTooBig;
        }

        var tooBig = emsgsize
            && (family == AddressFamily.InterNetworkV6
                ? origin == OriginIcmp6 && extended[TypeOffset] == IcmpPacketTooBig.IPv6PacketTooBig && extended[CodeOffset] == 0
                : origin == OriginIcmp && extended[TypeOffset] == IcmpPacketTooBig.IPv4DestinationUnreachable && extended[CodeOffset] == IcmpPacketTooBig.IPv4FragmentationNeeded);
        if (!tooBig)
        {
            return QueuedErrorVerdict.NotPacketTooBig;
        }

        if (CarrierHeaders.TryReadUdpSource(socketAddress, family, peerPort, out var destination) != CarrierError.None)
        {
            return QueuedErrorVerdict.NotOurs;
        }

        return IcmpPacketTooBig.TryReadQuotedSegment(localAddress, destination, UdpProtocol, quote, mtu, out report) switch
        {
            IcmpReportError.None => QueuedErrorVerdict.PacketTooBig,
            IcmpReportError.Truncated => QueuedErrorVerdict.TruncatedQuote,
            _ => QueuedErrorVerdict.NotPacketTooBig,
        };
    }

    /// <summary>The data of the first control message of <paramref name="level"/> and <paramref name="type"/> (CMSG_FIRSTHDR / CMSG_NXTHDR).</summary>
    private static bool TryFindControlMessage(ReadOnlySpan<byte> control, int level, int type, out ReadOnlySpan<byte> data)
    {
        data = default;
        var offset = 0;
        while (control.Length - offset >= ControlHeaderLength)
        {
            var header = control[offset..];
            var length = MemoryMarshal.Read<ulong>(header);
            if (length < ControlHeaderLength || length > (ulong)header.Length)
            {
                return false;
            }

            if (MemoryMarshal.Read<int>(header[8..]) == level && MemoryMarshal.Read<int>(header[12..]) == type)
            {
                data = header[ControlHeaderLength..(int)length];
                return true;
            }

            var aligned = ((int)length + ControlAlignment - 1) & ~(ControlAlignment - 1);
            if (aligned >= control.Length - offset)
            {
                return false;
            }

            offset += aligned;
        }

        return false;
    }
}

using System.Buffers.Binary;

namespace Mtcp.Wire;

/// <summary>Why an ICMP or ICMPv6 message was not taken as a packet-too-big report about one of our segments.</summary>
public enum IcmpReportError : byte
{
    None = 0,

    /// <summary>The message ends before its fixed header, the quoted IP header or the quoted 8 transport bytes.</summary>
    Truncated,

    /// <summary>Another type or code than "fragmentation needed" (ICMP 3/4) or "packet too big" (ICMPv6 2/0).</summary>
    NotPacketTooBig,

    /// <summary>The ICMP checksum does not verify (the kernel checks ICMPv6's before a raw socket sees it, not ICMP's).</summary>
    BadChecksum,

    /// <summary>The quoted header is not an IP header of the message's family, or its header length is impossible.</summary>
    BadQuotedHeader,

    /// <summary>The quoted packet is a later fragment, which carries no transport header.</summary>
    QuotedFragment,

    /// <summary>The next-hop MTU field is zero: a router predating RFC 1191 named no MTU.</summary>
    NoMtu,
}

/// <summary>
/// An ICMP "destination unreachable, fragmentation needed and DF set" (RFC 792, RFC 1191 §4) or ICMPv6 "packet too big"
/// (RFC 4443 §3.2): the next hop's MTU and what the message quotes of the packet that was too big, its IP addresses and
/// protocol and the first 8 bytes of its transport header, which for TCP (6) and for MTCP's protocol 253 alike are
/// the source port, destination port and sequence number of a TCP-format header (RFC 9293 §3.1). Nothing here is
/// authenticated: the receiver checks the quoted addresses, ports and sequence number against its own (RFC 5927 §4.1).
/// </summary>
public readonly record struct PacketTooBigReport(
    IpAddress QuotedSource,
    IpAddress QuotedDestination,
    byte QuotedProtocol,
    ushort QuotedSourcePort,
    ushort QuotedDestinationPort,
    SeqNumber QuotedSequence,
    int Mtu)
{
    public bool IsIPv6 => QuotedSource.IsIPv6;
}

/// <summary>The decoders of the ICMP errors that report a path MTU. Never throw on untrusted bytes.</summary>
public static class IcmpPacketTooBig
{
    /// <summary>ICMP destination unreachable (RFC 792).</summary>
    public const byte IPv4DestinationUnreachable = 3;

    /// <summary>Its code "fragmentation needed and DF set" (RFC 792, RFC 1191 §4).</summary>
    public const byte IPv4FragmentationNeeded = 4;

    /// <summary>ICMPv6 packet too big (RFC 4443 §3.2); its code is 0.</summary>
    public const byte IPv6PacketTooBig = 2;

    /// <summary>IPv6 next header of the fragment header (RFC 8200 §4.5).</summary>
    private const byte IPv6FragmentHeader = 44;

    private const int IcmpHeaderLength = 8;
    private const int MinIPv4HeaderLength = 20;
    private const int IPv6HeaderLength = 40;
    private const int FragmentHeaderLength = 8;
    private const int QuotedTransportLength = 8;

    /// <summary>
    /// An IPv4 ICMP message (<paramref name="icmp"/> starts at the ICMP type, after the IPv4 header that carried it):
    /// type 3 code 4, checksum verified, the next-hop MTU from bytes 6-7 (RFC 1191 §4), then the quoted IPv4 header
    /// (any options skipped by its IHL) and 8 bytes of the first fragment's transport header.
    /// </summary>
    public static IcmpReportError TryReadIPv4(ReadOnlySpan<byte> icmp, out PacketTooBigReport report)
    {
        report = default;
        if (icmp.Length < IcmpHeaderLength + MinIPv4HeaderLength + QuotedTransportLength)
        {
            return icmp.Length >= 2 && !IsFragmentationNeeded(icmp) ? IcmpReportError.NotPacketTooBig : IcmpReportError.Truncated;
        }

        if (!IsFragmentationNeeded(icmp))
        {
            return IcmpReportError.NotPacketTooBig;
        }

        if (InternetChecksum.Compute(icmp) != 0)
        {
            return IcmpReportError.BadChecksum;
        }

        var mtu = BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]);
        var quoted = icmp[IcmpHeaderLength..];
        var headerLength = (quoted[0] & 0x0F) * 4;
        if (quoted[0] >> 4 != 4 || headerLength < MinIPv4HeaderLength)
        {
            return IcmpReportError.BadQuotedHeader;
        }

        if (quoted.Length < headerLength + QuotedTransportLength)
        {
            return IcmpReportError.Truncated;
        }

        // Flags and fragment offset (RFC 791 §3.1): only the first fragment, offset 0, starts with the transport header.
        if ((BinaryPrimitives.ReadUInt16BigEndian(quoted[6..]) & 0x1FFF) != 0)
        {
            return IcmpReportError.QuotedFragment;
        }

        if (mtu == 0)
        {
            return IcmpReportError.NoMtu;
        }

        report = Report(IpAddress.FromIPv4(quoted[12..16]), IpAddress.FromIPv4(quoted[16..20]), quoted[9], quoted[headerLength..], mtu);
        return IcmpReportError.None;
    }

    /// <summary>
    /// An ICMPv6 message (<paramref name="icmp"/> starts at the ICMPv6 type; a raw socket returns it without the IPv6
    /// header, its checksum already verified by the kernel): type 2 code 0, the MTU from bytes 4-7 (RFC 4443 §3.2), then
    /// the quoted IPv6 header and 8 bytes of the transport header, after a fragment header of offset 0 if one is quoted.
    /// </summary>
    public static IcmpReportError TryReadIPv6(ReadOnlySpan<byte> icmp, out PacketTooBigReport report)
    {
        report = default;
        if (icmp.Length >= 2 && (icmp[0] != IPv6PacketTooBig || icmp[1] != 0))
        {
            return IcmpReportError.NotPacketTooBig;
        }

        if (icmp.Length < IcmpHeaderLength + IPv6HeaderLength + QuotedTransportLength)
        {
            return IcmpReportError.Truncated;
        }

        var mtu = BinaryPrimitives.ReadUInt32BigEndian(icmp[4..]);
        var quoted = icmp[IcmpHeaderLength..];
        if (quoted[0] >> 4 != 6)
        {
            return IcmpReportError.BadQuotedHeader;
        }

        var nextHeader = quoted[6];
        var transport = quoted[IPv6HeaderLength..];
        if (nextHeader == IPv6FragmentHeader)
        {
            // RFC 8200 §4.5: next header, reserved, then 13 bits of offset, 2 reserved bits and the M flag.
            if (transport.Length < FragmentHeaderLength + QuotedTransportLength)
            {
                return IcmpReportError.Truncated;
            }

            if ((BinaryPrimitives.ReadUInt16BigEndian(transport[2..]) & 0xFFF8) != 0)
            {
                return IcmpReportError.QuotedFragment;
            }

            nextHeader = transport[0];
            transport = transport[FragmentHeaderLength..];
        }

        if (mtu == 0)
        {
            return IcmpReportError.NoMtu;
        }

        report = Report(IpAddress.FromIPv6(quoted[8..24]), IpAddress.FromIPv6(quoted[24..40]), nextHeader, transport, (int)Math.Min(mtu, int.MaxValue));
        return IcmpReportError.None;
    }

    /// <summary>
    /// A report whose ICMP message the kernel has already taken apart, as a UDP socket's error queue hands it over (ip(7)
    /// IP_RECVERR): the addresses and protocol of the quoted packet and the MTU come from the kernel, and
    /// <paramref name="quotedSegment"/> is what the message quoted after the carrier's header, whose first 8 bytes are the
    /// source port, destination port and sequence number of the segment (RFC 9293 §3.1). Fewer than 8 bytes name no
    /// segment (a router that quoted only RFC 792's 64 bits, which end with the UDP header): <see cref="IcmpReportError.Truncated"/>.
    /// </summary>
    public static IcmpReportError TryReadQuotedSegment(IpAddress source, IpAddress destination, byte protocol, ReadOnlySpan<byte> quotedSegment, int mtu, out PacketTooBigReport report)
    {
        report = default;
        if (quotedSegment.Length < QuotedTransportLength)
        {
            return IcmpReportError.Truncated;
        }

        if (mtu <= 0)
        {
            return IcmpReportError.NoMtu;
        }

        report = Report(source, destination, protocol, quotedSegment, mtu);
        return IcmpReportError.None;
    }

    private static bool IsFragmentationNeeded(ReadOnlySpan<byte> icmp) =>
        icmp[0] == IPv4DestinationUnreachable && icmp[1] == IPv4FragmentationNeeded;

    private static PacketTooBigReport Report(IpAddress source, IpAddress destination, byte protocol, ReadOnlySpan<byte> transport, int mtu) =>
        new(source, destination, protocol,
            BinaryPrimitives.ReadUInt16BigEndian(transport),
            BinaryPrimitives.ReadUInt16BigEndian(transport[2..]),
            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(transport[4..])),
            mtu);
}

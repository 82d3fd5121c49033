using System.Buffers.Binary;

namespace Mtcp.Wire.Tests;

[Trait("Category", "Wire")]
public sealed class IcmpPacketTooBigTests
{
    private const ushort SourcePort = 40000;
    private const ushort DestinationPort = 7000;
    private const uint Sequence = 0x89ABCDEF;

    /// <summary>ICMP 3/4 quoting an IPv4 packet of <paramref name="protocol"/> (its header with <paramref name="optionWords"/> words of options) and 8 segment bytes.</summary>
    private static byte[] IPv4Message(ushort mtu, byte protocol = 253, int optionWords = 0, ushort flagsAndOffset = 0x4000)
    {
        var headerLength = 20 + (optionWords * 4);
        var message = new byte[8 + headerLength + 8];
        message[0] = IcmpPacketTooBig.IPv4DestinationUnreachable;
        message[1] = IcmpPacketTooBig.IPv4FragmentationNeeded;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), mtu);
        var quoted = message.AsSpan(8);
        quoted[0] = (byte)(0x40 | (headerLength / 4));
        BinaryPrimitives.WriteUInt16BigEndian(quoted[2..], 1500);
        BinaryPrimitives.WriteUInt16BigEndian(quoted[6..], flagsAndOffset);
        quoted[8] = 64;
        quoted[9] = protocol;
        Golden.V4Client.WriteTo(quoted[12..]);
        Golden.V4Server.WriteTo(quoted[16..]);
        WriteSegmentStart(quoted[headerLength..]);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), InternetChecksum.Compute(message));
        return message;
    }

    /// <summary>ICMPv6 2/0 quoting an IPv6 packet of <paramref name="nextHeader"/>, through a fragment header of <paramref name="fragmentOffset"/> when given.</summary>
    private static byte[] IPv6Message(uint mtu, byte nextHeader = 253, ushort? fragmentOffset = null)
    {
        var fragment = fragmentOffset is null ? 0 : 8;
        var message = new byte[8 + 40 + fragment + 8];
        message[0] = IcmpPacketTooBig.IPv6PacketTooBig;
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), mtu);
        var quoted = message.AsSpan(8);
        quoted[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(quoted[4..], 1440);
        quoted[6] = fragmentOffset is null ? nextHeader : (byte)44;
        quoted[7] = 64;
        Golden.V6Client.WriteTo(quoted[8..]);
        Golden.V6Server.WriteTo(quoted[24..]);
        if (fragmentOffset is { } offset)
        {
            quoted[40] = nextHeader;
            BinaryPrimitives.WriteUInt16BigEndian(quoted[42..], (ushort)((offset << 3) | 1));
        }

        WriteSegmentStart(quoted[(40 + fragment)..]);
        return message;
    }

    private static void WriteSegmentStart(Span<byte> segment)
    {
        BinaryPrimitives.WriteUInt16BigEndian(segment, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment[2..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment[4..], Sequence);
    }

    [Fact]
    public void An_IPv4_fragmentation_needed_must_give_the_next_hop_MTU_and_the_quoted_addresses_ports_and_sequence()
    {
        Assert.Equal(IcmpReportError.None, IcmpPacketTooBig.TryReadIPv4(IPv4Message(1200, optionWords: 2), out var report));

        Assert.Equal(new PacketTooBigReport(Golden.V4Client, Golden.V4Server, 253, SourcePort, DestinationPort, new SeqNumber(Sequence), 1200), report);
        Assert.False(report.IsIPv6);
    }

    [Fact]
    public void An_ICMPv6_packet_too_big_must_give_the_MTU_and_the_quoted_segment_also_behind_a_first_fragment_header()
    {
        Assert.Equal(IcmpReportError.None, IcmpPacketTooBig.TryReadIPv6(IPv6Message(1280, nextHeader: 6), out var plain));
        Assert.Equal(IcmpReportError.None, IcmpPacketTooBig.TryReadIPv6(IPv6Message(1280, fragmentOffset: 0), out var fragmented));

        Assert.Equal(new PacketTooBigReport(Golden.V6Client, Golden.V6Server, 6, SourcePort, DestinationPort, new SeqNumber(Sequence), 1280), plain);
        Assert.Equal(plain with { QuotedProtocol = 253 }, fragmented);
        Assert.True(plain.IsIPv6);
    }

    [Fact]
    public void Other_ICMP_messages_must_not_be_taken_for_a_report()
    {
        var echo = IPv4Message(1200);
        echo[0] = 8;
        var portUnreachable = IPv4Message(1200);
        portUnreachable[1] = 3;
        var destinationUnreachable6 = IPv6Message(1280);
        destinationUnreachable6[0] = 1;
        var badCode6 = IPv6Message(1280);
        badCode6[1] = 1;

        Assert.Equal(IcmpReportError.NotPacketTooBig, IcmpPacketTooBig.TryReadIPv4(echo, out _));
        Assert.Equal(IcmpReportError.NotPacketTooBig, IcmpPacketTooBig.TryReadIPv4(portUnreachable, out _));
        Assert.Equal(IcmpReportError.NotPacketTooBig, IcmpPacketTooBig.TryReadIPv6(destinationUnreachable6, out _));
        Assert.Equal(IcmpReportError.NotPacketTooBig, IcmpPacketTooBig.TryReadIPv6(badCode6, out _));
    }

    [Fact]
    public void A_bad_checksum_a_later_fragment_a_zero_MTU_or_a_quoted_header_of_another_version_must_be_rejected()
    {
        var corrupted = IPv4Message(1200);
        corrupted[^1] ^= 0x01;
        var version6InIPv4 = IPv4Message(1200);
        version6InIPv4[8] = 0x65;
        BinaryPrimitives.WriteUInt16BigEndian(version6InIPv4.AsSpan(2), 0);
        BinaryPrimitives.WriteUInt16BigEndian(version6InIPv4.AsSpan(2), InternetChecksum.Compute(version6InIPv4));
        var version4InIPv6 = IPv6Message(1280);
        version4InIPv6[8] = 0x45;

        Assert.Equal(IcmpReportError.BadChecksum, IcmpPacketTooBig.TryReadIPv4(corrupted, out _));
        Assert.Equal(IcmpReportError.BadQuotedHeader, IcmpPacketTooBig.TryReadIPv4(version6InIPv4, out _));
        Assert.Equal(IcmpReportError.BadQuotedHeader, IcmpPacketTooBig.TryReadIPv6(version4InIPv6, out _));
        Assert.Equal(IcmpReportError.QuotedFragment, IcmpPacketTooBig.TryReadIPv4(IPv4Message(1200, flagsAndOffset: 0x00B9), out _));
        Assert.Equal(IcmpReportError.QuotedFragment, IcmpPacketTooBig.TryReadIPv6(IPv6Message(1280, fragmentOffset: 185), out _));
        Assert.Equal(IcmpReportError.NoMtu, IcmpPacketTooBig.TryReadIPv4(IPv4Message(0), out _));
        Assert.Equal(IcmpReportError.NoMtu, IcmpPacketTooBig.TryReadIPv6(IPv6Message(0), out _));
    }

    [Fact]
    public void Every_truncation_of_a_valid_report_must_be_rejected_without_throwing()
    {
        foreach (var message in new[] { IPv4Message(1200, optionWords: 1), IPv6Message(1280), IPv6Message(1280, fragmentOffset: 0) })
        {
            var ipv6 = message[0] == IcmpPacketTooBig.IPv6PacketTooBig;
            for (var length = 0; length < message.Length; length++)
            {
                var prefix = message.AsSpan(0, length);
                var error = ipv6 ? IcmpPacketTooBig.TryReadIPv6(prefix, out var report) : IcmpPacketTooBig.TryReadIPv4(prefix, out report);

                Assert.NotEqual(IcmpReportError.None, error);
                Assert.Equal(default, report);
            }
        }
    }

    [Fact]
    public void A_quote_the_kernel_took_apart_must_give_the_segments_ports_and_sequence_number_and_refuse_fewer_than_8_bytes()
    {
        var segment = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(segment, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), Sequence);
        segment.AsSpan(8).Fill(0xA5);

        Assert.Equal(IcmpReportError.None, IcmpPacketTooBig.TryReadQuotedSegment(Golden.V6Client, Golden.V6Server, 17, segment, 1280, out var report));
        Assert.Equal(new PacketTooBigReport(Golden.V6Client, Golden.V6Server, 17, SourcePort, DestinationPort, new SeqNumber(Sequence), 1280), report);
        Assert.Equal(IcmpReportError.None, IcmpPacketTooBig.TryReadQuotedSegment(Golden.V4Client, Golden.V4Server, 17, segment.AsSpan(0, 8), 1200, out report));
        Assert.Equal(new PacketTooBigReport(Golden.V4Client, Golden.V4Server, 17, SourcePort, DestinationPort, new SeqNumber(Sequence), 1200), report);

        // A router that quoted RFC 792's 64 bits quoted the UDP header and nothing of the segment.
        for (var length = 0; length < 8; length++)
        {
            Assert.Equal(IcmpReportError.Truncated, IcmpPacketTooBig.TryReadQuotedSegment(Golden.V4Client, Golden.V4Server, 17, segment.AsSpan(0, length), 1200, out report));
            Assert.Equal(default, report);
        }

        Assert.Equal(IcmpReportError.NoMtu, IcmpPacketTooBig.TryReadQuotedSegment(Golden.V4Client, Golden.V4Server, 17, segment, 0, out report));
        Assert.Equal(default, report);
    }

    [Fact]
    public void Random_bytes_must_never_throw_and_rarely_pass()
    {
        var random = new Random(1191);
        var accepted = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var garbage = new byte[random.Next(0, 120)];
            random.NextBytes(garbage);
            if (i % 2 == 0 && garbage.Length > 1)
            {
                // Half with a plausible type and code, so that the decoders get past their first check.
                (garbage[0], garbage[1]) = i % 4 == 0 ? ((byte)3, (byte)4) : ((byte)2, (byte)0);
            }

            accepted += IcmpPacketTooBig.TryReadIPv4(garbage, out _) == IcmpReportError.None ? 1 : 0;
            accepted += IcmpPacketTooBig.TryReadIPv6(garbage, out _) == IcmpReportError.None ? 1 : 0;
        }

        // The IPv4 checksum and the version nibbles turn nearly all of it away; nothing is authenticated beyond that.
        Assert.InRange(accepted, 0, 2_000);
    }
}

using System.Buffers.Binary;

namespace Mtcp.Wire.Tests;

[Trait("Category", "Wire")]
public sealed class TcpSegmentTests
{
    public static TheoryData<string> GoldenNames() => new(Golden.Segments().Select(s => s.Name));

    private static (string Name, byte[] Bytes, TcpSegmentRepr Repr, IpAddress Source, IpAddress Destination) Find(string name) =>
        Golden.Segments().Single(s => s.Name == name);

    [Theory]
    [MemberData(nameof(GoldenNames))]
    public void Parse_must_decode_the_golden_vector(string name)
    {
        var golden = Find(name);

        Assert.True(TcpSegmentRepr.TryParse(golden.Bytes, golden.Source, golden.Destination, ChecksumPolicy.Verify, out var repr, out var payloadOffset, out var error), error.ToString());
        Assert.Equal(WireError.None, error);
        Assert.Equal(golden.Repr, repr);
        Assert.Equal(golden.Repr.HeaderLength, payloadOffset);
    }

    [Theory]
    [MemberData(nameof(GoldenNames))]
    public void Emit_must_write_the_golden_vector_byte_for_byte(string name)
    {
        var golden = Find(name);
        var payload = golden.Bytes.AsSpan(golden.Repr.HeaderLength);
        var buffer = Golden.MarkedBuffer(golden.Bytes.Length + 8);

        var written = golden.Repr.Emit(buffer, payload, golden.Source, golden.Destination);

        Assert.Equal(golden.Bytes.Length, written);
        Assert.Equal(Convert.ToHexString(golden.Bytes), Convert.ToHexString(buffer, 0, written));
        Assert.All(buffer.Skip(written), b => Assert.Equal(Golden.Marker, b));
    }

    [Theory]
    [MemberData(nameof(GoldenNames))]
    public void Every_truncation_of_a_golden_vector_must_give_a_typed_error(string name)
    {
        var golden = Find(name);
        var headerLength = golden.Repr.HeaderLength;
        for (var length = 0; length < golden.Bytes.Length; length++)
        {
            var truncated = golden.Bytes.AsSpan(0, length);

            Assert.False(TcpSegmentRepr.TryParse(truncated, golden.Source, golden.Destination, ChecksumPolicy.Verify, out _, out _, out var verified));
            Assert.NotEqual(WireError.None, verified);

            var ignored = TcpSegmentRepr.TryParse(truncated, golden.Source, golden.Destination, ChecksumPolicy.Ignore, out _, out _, out var error);
            if (length < headerLength)
            {
                // Without the checksum, only a cut into the header is detectable; a cut into the payload
                // is a shorter but well-formed segment.
                Assert.False(ignored, $"length {length}");
                Assert.Equal(length < TcpSegment.MinHeaderLength ? WireError.Truncated : WireError.BadDataOffset, error);
            }
            else
            {
                Assert.True(ignored, $"length {length}: {error}");
            }
        }
    }

    [Fact]
    public void Payload_offset_must_point_at_the_payload()
    {
        Assert.True(TcpSegmentRepr.TryParse(Golden.AckV6, Golden.V6Server, Golden.V6Client, ChecksumPolicy.Verify, out _, out var offset, out _));

        Assert.Equal(Golden.AckV6PayloadOffset, offset);
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(Golden.AckV6.AsSpan(offset)));
    }

    [Fact]
    public void Segment_view_must_expose_every_header_field()
    {
        Assert.True(TcpSegment.TryCreate(Golden.AckV6, out var segment, out _));

        Assert.Equal(443, segment.SourcePort);
        Assert.Equal(50000, segment.DestinationPort);
        Assert.Equal(1u, segment.SequenceNumber.Value);
        Assert.Equal(0x7FFF_FFFFu, segment.AcknowledgmentNumber.Value);
        Assert.Equal(48, segment.HeaderLength);
        Assert.Equal(TcpFlags.Ack | TcpFlags.Psh, segment.Flags);
        Assert.Equal(512, segment.Window);
        Assert.Equal(0x13D7, segment.Checksum);
        Assert.Equal(0, segment.UrgentPointer);
        Assert.Equal(28, segment.Options.Length);
        Assert.Equal(5, segment.Payload.Length);
        Assert.True(segment.VerifyChecksum(Golden.V6Server, Golden.V6Client));
        Assert.False(segment.VerifyChecksum(IpAddress.Parse("2001:db8::3"), Golden.V6Client));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void Data_offset_below_five_words_must_be_rejected(int words)
    {
        var bytes = (byte[])Golden.SynAckUnknownV4.Clone();
        bytes[TcpSegment.Field.DataOffset] = (byte)(words << 4);

        Assert.False(TcpSegmentRepr.TryParse(bytes, Golden.V4Server, Golden.V4Client, ChecksumPolicy.Ignore, out _, out _, out var error));
        Assert.Equal(WireError.BadDataOffset, error);
    }

    [Fact]
    public void Data_offset_past_the_end_must_be_rejected()
    {
        var bytes = (byte[])Golden.SynAckUnknownV4.Clone();
        bytes[TcpSegment.Field.DataOffset] = 15 << 4;

        Assert.False(TcpSegment.TryCreate(bytes, out _, out var error));
        Assert.Equal(WireError.BadDataOffset, error);
    }

    [Fact]
    public void A_flipped_bit_must_fail_the_checksum()
    {
        var golden = Golden.AckV6;
        for (var bit = 0; bit < golden.Length * 8; bit++)
        {
            var bytes = (byte[])golden.Clone();
            bytes[bit / 8] ^= (byte)(1 << (bit % 8));
            if (bit / 8 == TcpSegment.Field.DataOffset)
            {
                continue;
            }

            Assert.False(TcpSegmentRepr.TryParse(bytes, Golden.V6Server, Golden.V6Client, ChecksumPolicy.Verify, out _, out _, out var error));
            Assert.Equal(WireError.BadChecksum, error);
        }
    }

    [Fact]
    public void Checksum_must_cover_the_pseudo_header_addresses()
    {
        var otherSource = IpAddress.Parse("192.0.2.3");

        Assert.False(TcpSegmentRepr.TryParse(Golden.SynV4, otherSource, Golden.V4Server, ChecksumPolicy.Verify, out _, out _, out var error));
        Assert.Equal(WireError.BadChecksum, error);
        Assert.True(TcpSegmentRepr.TryParse(Golden.SynV4, otherSource, Golden.V4Server, ChecksumPolicy.Ignore, out _, out _, out _));
    }

    [Fact]
    public void Addresses_of_mixed_families_or_none_must_be_rejected()
    {
        Assert.False(TcpSegmentRepr.TryParse(Golden.SynV4, Golden.V4Client, Golden.V6Server, ChecksumPolicy.Verify, out _, out _, out var mixed));
        Assert.Equal(WireError.AddressFamilyMismatch, mixed);
        Assert.False(TcpSegmentRepr.TryParse(Golden.SynV4, default, Golden.V4Server, ChecksumPolicy.Verify, out _, out _, out var missing));
        Assert.Equal(WireError.MissingAddress, missing);
        Assert.False(Golden.SynV4Repr.TryEmit(new byte[100], default, Golden.V4Client, Golden.V6Server, out _, out var emitMixed));
        Assert.Equal(WireError.AddressFamilyMismatch, emitMixed);
    }

    [Fact]
    public void Reserved_bits_must_be_ignored_on_receipt_and_zero_on_emit()
    {
        var bytes = (byte[])Golden.SynAckUnknownV4.Clone();
        bytes[TcpSegment.Field.DataOffset] |= 0x0F;

        Assert.True(TcpSegmentRepr.TryParse(bytes, Golden.V4Server, Golden.V4Client, ChecksumPolicy.Ignore, out var repr, out _, out _));
        Assert.Equal(Golden.SynAckUnknownV4Repr, repr);
        var buffer = Golden.MarkedBuffer(bytes.Length);
        repr.Emit(buffer, default, Golden.V4Server, Golden.V4Client);
        Assert.Equal(0x70, buffer[TcpSegment.Field.DataOffset]);
    }

    [Fact]
    public void Emit_must_accept_a_payload_already_in_place()
    {
        var repr = Golden.AckV6Repr;
        var buffer = Golden.MarkedBuffer(Golden.AckV6.Length);
        "hello"u8.CopyTo(buffer.AsSpan(repr.HeaderLength));

        var written = repr.Emit(buffer, buffer.AsSpan(repr.HeaderLength, 5), Golden.V6Server, Golden.V6Client);

        Assert.Equal(Convert.ToHexString(Golden.AckV6), Convert.ToHexString(buffer, 0, written));
    }

    [Fact]
    public void Emit_must_refuse_a_destination_too_small_without_writing_past_it()
    {
        var buffer = Golden.MarkedBuffer(Golden.SynV4.Length + 4);
        var destination = buffer.AsSpan(0, Golden.SynV4.Length - 1);

        Assert.False(Golden.SynV4Repr.TryEmit(destination, default, Golden.V4Client, Golden.V4Server, out _, out var error));
        Assert.Equal(WireError.BufferTooSmall, error);
        Assert.Throws<ArgumentException>(() => Golden.SynV4Repr.Emit(new byte[10], default, Golden.V4Client, Golden.V4Server));
        Assert.All(buffer.Skip(Golden.SynV4.Length - 1), b => Assert.Equal(Golden.Marker, b));
    }

    [Fact]
    public void Emit_must_refuse_a_segment_longer_than_IP_can_carry()
    {
        var payload = new byte[TcpSegmentRepr.MaxSegmentLength];
        var buffer = new byte[payload.Length + 60];

        Assert.False(Golden.SynV4Repr.TryEmit(buffer, payload, Golden.V4Client, Golden.V4Server, out _, out var error));
        Assert.Equal(WireError.SegmentTooLong, error);
    }

    [Fact]
    public void Emitted_segments_must_verify_with_an_independent_checksum_for_both_families()
    {
        var random = new Random(9293);
        var payload = new byte[1001];
        random.NextBytes(payload);
        foreach (var (source, destination) in new[] { (Golden.V4Client, Golden.V4Server), (Golden.V6Client, Golden.V6Server) })
        {
            var buffer = new byte[1200];
            var written = Golden.AckV6Repr.Emit(buffer, payload, source, destination);

            var pseudo = new List<byte>();
            var address = new byte[16];
            pseudo.AddRange(address.AsSpan(0, source.WriteTo(address)).ToArray());
            pseudo.AddRange(address.AsSpan(0, destination.WriteTo(address)).ToArray());
            if (source.IsIPv4)
            {
                pseudo.AddRange([0, 6, (byte)(written >> 8), (byte)written]);
            }
            else
            {
                pseudo.AddRange([0, 0, (byte)(written >> 8), (byte)written, 0, 0, 0, 6]);
            }

            var all = pseudo.Concat(buffer.Take(written)).ToArray();
            uint sum = 0;
            for (var i = 0; i < all.Length; i += 2)
            {
                sum += (uint)(all[i] << 8) | (i + 1 < all.Length ? all[i + 1] : 0u);
            }

            while (sum > 0xFFFF)
            {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }

            Assert.Equal(0xFFFFu, sum);
            Assert.NotEqual(0, BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(TcpSegment.Field.Checksum)));
        }
    }
}

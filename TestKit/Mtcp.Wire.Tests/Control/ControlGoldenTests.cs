using System.Buffers.Binary;
using Mtcp.Wire.Control;

namespace Mtcp.Wire.Tests.Control;

[Trait("Category", "Wire")]
public sealed class ControlGoldenTests
{
    private const byte Marker = 0xEE;

    public static TheoryData<string> Kinds => new() { "SRQ", "SRP", "SAK", "SRJ" };

    private static (ControlMessage Message, byte[] Bytes) Sample(string manifest) =>
        ControlSamples.Golden().Single(sample => sample.Message.Manifest == manifest);

    private static ControlWireError DecodeError(string manifest, byte[] frame)
    {
        Assert.False(ControlMessageCodec.TryDecode(manifest, frame, out var message, out var error));
        Assert.Null(message);
        Assert.NotEqual(ControlWireError.None, error);
        Assert.False(ControlMessageCodec.TryDecode(frame, out _, out var dispatchedError));
        Assert.NotEqual(ControlWireError.None, dispatchedError);
        return error;
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Encoder_must_write_the_golden_bytes_and_nothing_else(string manifest)
    {
        var (message, golden) = Sample(manifest);
        var buffer = new byte[golden.Length + 8];
        Array.Fill(buffer, Marker);

        var written = message.Encode(buffer);

        Assert.Equal(golden.Length, written);
        Assert.Equal(golden.Length, message.GetEncodedLength());
        Assert.Equal(Convert.ToHexString(golden), Convert.ToHexString(buffer, 0, written));
        Assert.All(buffer[written..], b => Assert.Equal(Marker, b));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Decoder_must_read_the_golden_bytes_back_to_the_message(string manifest)
    {
        var (message, golden) = Sample(manifest);

        Assert.True(ControlMessageCodec.TryDecode(golden, out var decoded, out var error), error.ToString());
        Assert.Equal(ControlWireError.None, error);
        Assert.Equal(message, decoded);
        Assert.True(ControlMessageCodec.TryDecode(manifest, golden, out var byManifest, out _));
        Assert.Equal(message, byManifest);
    }

    [Fact]
    public void Golden_reply_must_recover_the_snapshot_sequence_numbers_across_the_wrap()
    {
        Assert.True(StateReply.TryDecode(ControlSamples.ReplyBytes, out var reply, out _));

        Assert.Equal(new SeqNumber(0x00000003), reply.SndSeqSnapshot);
        Assert.Equal(new SeqNumber(0x00001003), reply.RcvSeqSnapshot);
        Assert.Equal(3, reply.AppStateLength);
        Assert.Equal(5, reply.SndStateLength);
        Assert.Equal(2, reply.RcvStateLength);
    }

    [Fact]
    public void Encoder_must_refuse_a_short_destination_without_writing()
    {
        var message = ControlSamples.Reply;
        var buffer = new byte[message.GetEncodedLength() - 1];
        Array.Fill(buffer, Marker);

        Assert.False(message.TryEncode(buffer, out var written));
        Assert.Equal(0, written);
        Assert.All(buffer, b => Assert.Equal(Marker, b));
        Assert.Throws<ArgumentException>(() => message.Encode(buffer));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_truncation_of_a_golden_frame_must_give_a_typed_error(string manifest)
    {
        var (_, golden) = Sample(manifest);
        for (var length = 0; length < golden.Length; length++)
        {
            var error = DecodeError(manifest, golden[..length]);
            Assert.Equal(length < ControlFrameHeader.Length ? ControlWireError.Truncated : ControlWireError.BodyLengthMismatch, error);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_truncation_with_a_matching_body_length_must_give_a_typed_error(string manifest)
    {
        var (_, golden) = Sample(manifest);
        for (var length = ControlFrameHeader.Length; length < golden.Length; length++)
        {
            var frame = golden[..length];
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)(length - ControlFrameHeader.Length));
            var error = DecodeError(manifest, frame);
            Assert.Contains(error, new[] { ControlWireError.Truncated, ControlWireError.LengthExceedsPayload });
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Body_length_that_disagrees_with_the_frame_must_be_rejected(string manifest)
    {
        var (_, golden) = Sample(manifest);
        foreach (var delta in new[] { -1, 1, int.MaxValue })
        {
            var frame = (byte[])golden.Clone();
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)(golden.Length - ControlFrameHeader.Length + delta));
            Assert.Equal(ControlWireError.BodyLengthMismatch, DecodeError(manifest, frame));
        }

        var longer = golden.Append((byte)0).ToArray();
        Assert.Equal(ControlWireError.BodyLengthMismatch, DecodeError(manifest, longer));
        BinaryPrimitives.WriteUInt32BigEndian(longer.AsSpan(4), (uint)(longer.Length - ControlFrameHeader.Length));
        Assert.Equal(ControlWireError.TrailingBytes, DecodeError(manifest, longer));
    }

    [Theory]
    [InlineData(0, 0x02, ControlWireError.UnsupportedVersion)]
    [InlineData(0, 0x00, ControlWireError.UnsupportedVersion)]
    [InlineData(1, 0x00, ControlWireError.UnknownMessageType)]
    [InlineData(1, 0x0A, ControlWireError.UnknownMessageType)]
    [InlineData(1, 0xFF, ControlWireError.UnknownMessageType)]
    [InlineData(2, 0x80, ControlWireError.ReservedNotZero)]
    [InlineData(3, 0x01, ControlWireError.ReservedNotZero)]
    public void Header_with_bad_version_type_or_reserved_bits_must_be_rejected(int offset, byte value, ControlWireError expected)
    {
        foreach (var (message, golden) in ControlSamples.Golden())
        {
            var frame = (byte[])golden.Clone();
            frame[offset] = value;
            Assert.False(ControlFrameHeader.TryRead(frame, out _, out var headerError));
            Assert.Equal(expected, headerError);
            Assert.Equal(expected, DecodeError(message.Manifest, frame));
        }
    }

    [Fact]
    public void Typed_decoder_must_reject_a_frame_of_another_type_and_the_manifest_must_match()
    {
        Assert.False(StateAck.TryDecode(ControlSamples.RequestBytes, out _, out var error));
        Assert.Equal(ControlWireError.UnexpectedMessageType, error);
        Assert.False(ControlMessageCodec.TryDecode("SRP", ControlSamples.AckBytes, out _, out error));
        Assert.Equal(ControlWireError.UnexpectedMessageType, error);
        Assert.False(ControlMessageCodec.TryDecode("XYZ", ControlSamples.AckBytes, out _, out error));
        Assert.Equal(ControlWireError.UnknownManifest, error);
    }

    [Theory]
    [InlineData(16, 0x05, ControlWireError.BadAddressFamily)]
    [InlineData(16, 0x00, ControlWireError.BadAddressFamily)]
    [InlineData(29, 0xFF, ControlWireError.BadAddressFamily)]
    [InlineData(29, 0x06, ControlWireError.Truncated)]
    public void Connection_id_with_an_unknown_or_oversized_family_must_be_rejected(int offset, byte family, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.RequestBytes.Clone();
        frame[offset] = family;
        Assert.Equal(expected, DecodeError("SRQ", frame));
    }

    [Theory]
    [InlineData(0x21, ControlWireError.AuthenticatorTooLong)]
    [InlineData(0xFF, ControlWireError.AuthenticatorTooLong)]
    [InlineData(0x09, ControlWireError.LengthExceedsPayload)]
    [InlineData(0x07, ControlWireError.TrailingBytes)]
    public void Request_authenticator_length_must_agree_with_the_payload(byte authLength, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.RequestBytes.Clone();
        frame[16 + 13 + 13 + 4] = authLength;
        Assert.Equal(expected, DecodeError("SRQ", frame));
    }

    [Theory]
    [InlineData(0, 4u, ControlWireError.LengthExceedsPayload)]
    [InlineData(0, 2u, ControlWireError.TrailingBytes)]
    [InlineData(0, 0xFFFFFFFFu, ControlWireError.LengthExceedsPayload)]
    [InlineData(4, 6u, ControlWireError.LengthExceedsPayload)]
    [InlineData(4, 0xFFFFFFFFu, ControlWireError.LengthExceedsPayload)]
    [InlineData(8, 3u, ControlWireError.LengthExceedsPayload)]
    [InlineData(8, 1u, ControlWireError.TrailingBytes)]
    [InlineData(8, 0x80000000u, ControlWireError.LengthExceedsPayload)]
    public void Reply_component_lengths_must_agree_with_the_payload(int fieldOffset, uint value, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.ReplyBytes.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(ControlSamples.ReplyFixedOffset + fieldOffset), value);
        Assert.Equal(expected, DecodeError("SRP", frame));
    }

    [Fact]
    public void Reply_lengths_whose_32_bit_sum_wraps_must_be_rejected()
    {
        var frame = (byte[])ControlSamples.ReplyBytes.Clone();
        var span = frame.AsSpan(ControlSamples.ReplyFixedOffset);
        BinaryPrimitives.WriteUInt32BigEndian(span, 0xFFFFFFFF);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], 0x00000004);
        BinaryPrimitives.WriteUInt32BigEndian(span[8..], 0x0000000A);
        Assert.Equal(ControlWireError.LengthExceedsPayload, DecodeError("SRP", frame));
    }

    [Theory]
    [InlineData(3, ControlWireError.LengthExceedsPayload)]
    [InlineData(1, ControlWireError.TrailingBytes)]
    [InlineData(0xFFFF, ControlWireError.LengthExceedsPayload)]
    public void Reply_transition_count_must_agree_with_the_payload(ushort count, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.ReplyBytes.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(ControlSamples.ReplyFixedOffset + 34), count);
        Assert.Equal(expected, DecodeError("SRP", frame));
    }

    [Theory]
    [InlineData(24, new byte[] { 11 }, ControlWireError.BadTcpState)]
    [InlineData(24, new byte[] { 0xFF }, ControlWireError.BadTcpState)]
    [InlineData(25, new byte[] { 15 }, ControlWireError.BadWindowScale)]
    [InlineData(26, new byte[] { 0xFF }, ControlWireError.BadWindowScale)]
    [InlineData(27, new byte[] { 0x41 }, ControlWireError.MigrationCredentialTooLong)]
    [InlineData(27, new byte[] { 1 }, ControlWireError.LengthExceedsPayload)]
    [InlineData(28, new byte[] { 0, 0, 0, 0x3F }, ControlWireError.UnknownTcpFlags)]
    [InlineData(28, new byte[] { 0x80, 0, 0, 0x1F }, ControlWireError.UnknownTcpFlags)]
    [InlineData(28, new byte[] { 0, 0, 0, 0x1B }, ControlWireError.BadWindowScale)]
    [InlineData(36, new byte[] { 0, 4 }, ControlWireError.UnknownSocketFlags)]
    [InlineData(38, new byte[] { 0x80, 0 }, ControlWireError.UnknownSocketFlags)]
    [InlineData(16, new byte[] { 0, 0, 0, 1 }, ControlWireError.SndStateConflict)]
    [InlineData(16, new byte[] { 0x80, 0, 0, 0 }, ControlWireError.DiscardTooLarge)]
    [InlineData(52, new byte[] { 0x0B }, ControlWireError.BadTcpState)]
    [InlineData(53, new byte[] { 0xFF }, ControlWireError.BadTcpState)]
    [InlineData(52, new byte[] { 0x05 }, ControlWireError.BadTransitionChain)]
    [InlineData(53, new byte[] { 0x04 }, ControlWireError.BadTransitionChain)]
    [InlineData(54, new byte[] { 0x04 }, ControlWireError.BadTransitionChain)]
    [InlineData(55, new byte[] { 0x06 }, ControlWireError.BadTransitionChain)]
    public void Reply_with_out_of_range_or_inconsistent_fields_must_be_rejected(int fieldOffset, byte[] value, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.ReplyBytes.Clone();
        value.CopyTo(frame.AsSpan(ControlSamples.ReplyFixedOffset + fieldOffset));
        Assert.Equal(expected, DecodeError("SRP", frame));
    }

    [Theory]
    [InlineData(0x00, ControlWireError.BadRejectReason)]
    [InlineData(0x04, ControlWireError.BadRejectReason)]
    [InlineData(0xFF, ControlWireError.BadRejectReason)]
    public void Reject_with_an_undefined_reason_must_be_rejected(byte reason, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.RejectBytes.Clone();
        frame[16 + 13] = reason;
        Assert.Equal(expected, DecodeError("SRJ", frame));
    }

    [Theory]
    [InlineData(0x0A, ControlWireError.LengthExceedsPayload)]
    [InlineData(0xFF, ControlWireError.LengthExceedsPayload)]
    [InlineData(0x08, ControlWireError.TrailingBytes)]
    public void Reject_diagnostic_length_must_agree_with_the_payload(byte length, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.RejectBytes.Clone();
        frame[16 + 13 + 1] = length;
        Assert.Equal(expected, DecodeError("SRJ", frame));
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xC3 })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]
    public void Reject_diagnostic_that_is_not_utf8_must_be_rejected(byte[] badBytes)
    {
        var frame = (byte[])ControlSamples.RejectBytes.Clone();
        badBytes.CopyTo(frame.AsSpan(frame.Length - badBytes.Length));
        Assert.Equal(ControlWireError.DiagnosticNotUtf8, DecodeError("SRJ", frame));
    }
}

using Mtcp.Wire.Control;

namespace Mtcp.Wire.Tests.Control;

[Trait("Category", "Wire")]
public sealed class ControlEnvelopeTests
{
    private const byte Marker = 0xEE;

    private static readonly byte[] Sender = "S1"u8.ToArray();
    private static readonly byte[] Receiver = "S2"u8.ToArray();
    private static readonly byte[] Mac = Convert.FromHexString("F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF");

    /// <summary>The golden state ack between S1 and S2 with a made-up MAC.</summary>
    public static readonly byte[] EnvelopeBytes = Convert.FromHexString(
        "01" + "00" + "02" + "02" + "5331" + "5332"
        + Convert.ToHexString(ControlSamples.AckBytes)
        + "F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF");

    private static ControlWireError DecodeError(ReadOnlySpan<byte> envelope)
    {
        Assert.False(ControlEnvelope.TryDecode(envelope, out var result, out var error));
        Assert.NotEqual(ControlWireError.None, error);
        Assert.True(result.Frame.IsEmpty && result.Sender.IsEmpty && result.Receiver.IsEmpty && result.Mac.IsEmpty);
        return error;
    }

    [Fact]
    public void Encoder_must_write_the_golden_bytes_and_nothing_else()
    {
        var buffer = new byte[EnvelopeBytes.Length + 8];
        Array.Fill(buffer, Marker);

        Assert.True(ControlEnvelope.TryEncode(buffer, Sender, Receiver, ControlSamples.AckBytes, Mac, out var written));

        Assert.Equal(EnvelopeBytes.Length, written);
        Assert.Equal(EnvelopeBytes.Length, ControlEnvelope.GetEncodedLength(Sender.Length, Receiver.Length, ControlSamples.AckBytes.Length));
        Assert.Equal(Convert.ToHexString(EnvelopeBytes), Convert.ToHexString(buffer, 0, written));
        Assert.All(buffer[written..], b => Assert.Equal(Marker, b));
    }

    [Fact]
    public void Unsigned_encoder_must_leave_a_zero_mac_to_fill_in_place()
    {
        var buffer = new byte[EnvelopeBytes.Length + 8];
        Array.Fill(buffer, Marker);

        Assert.True(ControlEnvelope.TryEncodeUnsigned(buffer, Sender, Receiver, ControlSamples.Ack, out var frame, out var mac, out var written));

        Assert.Equal(EnvelopeBytes.Length, written);
        Assert.Equal(ControlSamples.AckBytes, buffer[frame]);
        Assert.Equal(new byte[ControlEnvelope.MacLength], buffer[mac]);
        Mac.CopyTo(buffer.AsSpan(mac));
        Assert.Equal(Convert.ToHexString(EnvelopeBytes), Convert.ToHexString(buffer, 0, written));
        Assert.All(buffer[written..], b => Assert.Equal(Marker, b));
    }

    [Fact]
    public void Decoder_must_split_the_golden_envelope_without_decoding_the_frame_body()
    {
        Assert.True(ControlEnvelope.TryDecode(EnvelopeBytes, out var envelope, out var error), error.ToString());

        Assert.Equal(ControlWireError.None, error);
        Assert.Equal(Sender, envelope.Sender.ToArray());
        Assert.Equal(Receiver, envelope.Receiver.ToArray());
        Assert.Equal(ControlSamples.AckBytes, envelope.Frame.ToArray());
        Assert.Equal(Mac, envelope.Mac.ToArray());
        Assert.Equal(new ControlFrameHeader(ControlMessageType.StateAck, 13, 0x0102030405060708), envelope.FrameHeader);
        Assert.True(ControlMessageCodec.TryDecode(envelope.Frame, out var message, out _));
        Assert.Equal(ControlSamples.Ack, message);
    }

    [Fact]
    public void Every_truncation_must_give_a_typed_error()
    {
        for (var length = 0; length < EnvelopeBytes.Length; length++)
        {
            var error = DecodeError(EnvelopeBytes.AsSpan(0, length));

            // The MAC is the last 16 bytes whatever the length, so a cut shortens the frame in front of it.
            var frameBytes = length - 8 - ControlEnvelope.MacLength;
            var expected = frameBytes < ControlFrameHeader.Length ? ControlWireError.Truncated : ControlWireError.BodyLengthMismatch;
            Assert.True(expected == error, $"cut at {length}: {error}");
        }
    }

    [Fact]
    public void A_byte_more_must_be_rejected_as_a_frame_length_mismatch()
    {
        var longer = EnvelopeBytes.Append((byte)0).ToArray();

        Assert.Equal(ControlWireError.BodyLengthMismatch, DecodeError(longer));
    }

    [Theory]
    [InlineData(0, 0x00, ControlWireError.UnsupportedVersion)]
    [InlineData(0, 0x02, ControlWireError.UnsupportedVersion)]
    [InlineData(1, 0x01, ControlWireError.ReservedNotZero)]
    [InlineData(2, 0x00, ControlWireError.EmptyIdentity)]
    [InlineData(3, 0x00, ControlWireError.EmptyIdentity)]
    [InlineData(2, 0xFF, ControlWireError.Truncated)]
    [InlineData(3, 0x03, ControlWireError.UnsupportedVersion)]
    [InlineData(8, 0x02, ControlWireError.UnsupportedVersion)]
    [InlineData(9, 0x0A, ControlWireError.UnknownMessageType)]
    [InlineData(10, 0x01, ControlWireError.ReservedNotZero)]
    [InlineData(15, 0x0E, ControlWireError.BodyLengthMismatch)]
    public void Envelope_or_frame_header_faults_must_be_rejected(int offset, byte value, ControlWireError expected)
    {
        var envelope = (byte[])EnvelopeBytes.Clone();
        envelope[offset] = value;

        Assert.Equal(expected, DecodeError(envelope));
    }

    [Fact]
    public void Longest_identities_and_a_large_reply_must_round_trip_in_place()
    {
        var sender = Enumerable.Repeat((byte)'a', ControlEnvelope.MaxIdentityLength).ToArray();
        var receiver = Enumerable.Repeat((byte)'b', ControlEnvelope.MaxIdentityLength).ToArray();
        var reply = ControlSamples.ReplyWithCredential;
        var buffer = new byte[ControlEnvelope.GetEncodedLength(sender.Length, receiver.Length, reply.GetEncodedLength())];

        Assert.True(ControlEnvelope.TryEncodeUnsigned(buffer, sender, receiver, reply, out var frame, out var mac, out var written));
        Mac.CopyTo(buffer.AsSpan(mac));

        Assert.Equal(buffer.Length, written);
        Assert.True(ControlEnvelope.TryDecode(buffer, out var envelope, out var error), error.ToString());
        Assert.Equal(sender, envelope.Sender.ToArray());
        Assert.Equal(receiver, envelope.Receiver.ToArray());
        Assert.Equal(Mac, envelope.Mac.ToArray());
        Assert.Equal(buffer[frame], envelope.Frame.ToArray());
        Assert.True(StateReply.TryDecode(envelope.Frame, out var decoded, out _));
        Assert.Equal(reply, decoded);
    }

    [Fact]
    public void Encoder_must_refuse_a_short_destination_without_writing()
    {
        var buffer = new byte[EnvelopeBytes.Length - 1];
        Array.Fill(buffer, Marker);

        Assert.False(ControlEnvelope.TryEncode(buffer, Sender, Receiver, ControlSamples.AckBytes, Mac, out var written));
        Assert.False(ControlEnvelope.TryEncodeUnsigned(buffer, Sender, Receiver, ControlSamples.Ack, out _, out _, out var unsignedWritten));

        Assert.Equal(0, written);
        Assert.Equal(0, unsignedWritten);
        Assert.All(buffer, b => Assert.Equal(Marker, b));
    }

    [Fact]
    public void Encoder_must_refuse_what_a_decoder_would_reject()
    {
        var buffer = new byte[1024];
        var tooLong = new byte[ControlEnvelope.MaxIdentityLength + 1];
        var ack = ControlSamples.AckBytes;

        Assert.Throws<ArgumentException>(() => ControlEnvelope.TryEncode(buffer, [], Receiver, ack, Mac, out _));
        Assert.Throws<ArgumentException>(() => ControlEnvelope.TryEncode(buffer, Sender, tooLong, ack, Mac, out _));
        Assert.Throws<ArgumentException>(() => ControlEnvelope.TryEncode(buffer, Sender, Receiver, ack, Mac[1..], out _));
        Assert.Throws<ArgumentException>(() => ControlEnvelope.TryEncode(buffer, Sender, Receiver, ack[..^1], Mac, out _));
        Assert.Throws<ArgumentException>(() => ControlEnvelope.TryEncode(buffer, Sender, Receiver, [.. ack, 0], Mac, out _));
        Assert.Throws<ArgumentException>(() => ControlEnvelope.TryEncodeUnsigned(buffer, tooLong, Receiver, ControlSamples.Ack, out _, out _, out _));
        Assert.Throws<ArgumentException>(() => ControlEnvelope.TryEncodeUnsigned(buffer, Sender, [], ControlSamples.Ack, out _, out _, out _));
    }
}

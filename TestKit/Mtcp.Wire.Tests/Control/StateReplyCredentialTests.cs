using System.Buffers.Binary;
using Mtcp.Wire.Control;

namespace Mtcp.Wire.Tests.Control;

/// <summary>The migration credential carried, opaque, at the end of a state reply.</summary>
[Trait("Category", "Wire")]
public sealed class StateReplyCredentialTests
{
    private const byte Marker = 0xEE;

    /// <summary>Offset of the credential length byte: header 16, IPv6 connection id 37, then byte 27 of the fixed fields.</summary>
    private const int CredentialLengthOffset = ControlSamples.ReplyFixedOffset + 27;

    private static ControlWireError DecodeError(byte[] frame)
    {
        Assert.False(StateReply.TryDecode(frame, out var message, out var error));
        Assert.Null(message);
        Assert.NotEqual(ControlWireError.None, error);
        Assert.False(ControlMessageCodec.TryDecode(frame, out _, out var dispatched));
        Assert.Equal(error, dispatched);
        return error;
    }

    private static StateReply WithCredential(ReadOnlyMemory<byte> credential)
    {
        var reply = ControlSamples.Reply;
        return new StateReply(
            reply.RequestId,
            reply.NewEndpointCid,
            reply.LastAckSent,
            reply.SndBytesDiscard,
            reply.SndMaxSeen,
            reply.TSnapshot,
            reply.SoSnapshot,
            reply.AppState,
            reply.WriteBufferState,
            reply.ReadBufferState,
            reply.TStateTransitions,
            credential);
    }

    [Fact]
    public void Encoder_must_write_the_golden_bytes_of_a_reply_with_a_credential()
    {
        var message = ControlSamples.ReplyWithCredential;
        var golden = ControlSamples.ReplyWithCredentialBytes;
        var buffer = new byte[golden.Length + 8];
        Array.Fill(buffer, Marker);

        var written = message.Encode(buffer);

        Assert.Equal(golden.Length, written);
        Assert.Equal(golden.Length, message.GetEncodedLength());
        Assert.Equal(Convert.ToHexString(golden), Convert.ToHexString(buffer, 0, written));
        Assert.All(buffer[written..], b => Assert.Equal(Marker, b));
    }

    [Fact]
    public void Decoder_must_read_the_golden_credential_back_and_own_its_bytes()
    {
        var frame = (byte[])ControlSamples.ReplyWithCredentialBytes.Clone();

        Assert.True(StateReply.TryDecode(frame, out var reply, out var error), error.ToString());
        Array.Fill(frame, (byte)0);

        Assert.Equal(ControlSamples.ReplyWithCredential, reply);
        Assert.Equal(ControlSamples.Credential, reply.MigrationCredential.ToArray());
        Assert.Equal("APP"u8.ToArray(), reply.AppState.ToArray());
        Assert.Equal(new SeqNumber(0x00000003), reply.SndSeqSnapshot);
    }

    [Fact]
    public void Reply_without_a_credential_must_keep_the_layout_it_had_before_credentials()
    {
        Assert.True(ControlSamples.Reply.MigrationCredential.IsEmpty);
        Assert.Equal(0, ControlSamples.ReplyBytes[CredentialLengthOffset]);
        Assert.Equal(ControlSamples.ReplyBytes, ControlSamples.Reply.ToArray());
        Assert.Equal(ControlSamples.ReplyBytes.Length + ControlSamples.Credential.Length, ControlSamples.ReplyWithCredentialBytes.Length);
    }

    [Fact]
    public void Replies_that_differ_only_in_their_credential_must_differ()
    {
        var other = (byte[])ControlSamples.Credential.Clone();
        other[^1] ^= 1;

        Assert.NotEqual(ControlSamples.ReplyWithCredential, WithCredential(other));
        Assert.NotEqual(ControlSamples.ReplyWithCredential, ControlSamples.Reply);
        Assert.Equal(ControlSamples.ReplyWithCredential, WithCredential((byte[])ControlSamples.Credential.Clone()));
    }

    [Fact]
    public void Every_credential_length_up_to_the_limit_must_round_trip_and_one_more_must_be_refused()
    {
        for (var length = 0; length <= StateReply.MaxMigrationCredentialLength; length++)
        {
            var credential = Enumerable.Range(0, length).Select(i => (byte)(0xC0 + i)).ToArray();
            var reply = WithCredential(credential);
            var bytes = reply.ToArray();

            Assert.Equal(ControlSamples.ReplyBytes.Length + length, bytes.Length);
            Assert.Equal(length, bytes[CredentialLengthOffset]);
            Assert.True(StateReply.TryDecode(bytes, out var decoded, out var error), $"length {length}: {error}");
            Assert.Equal(reply, decoded);
            Assert.Equal(credential, decoded.MigrationCredential.ToArray());
        }

        Assert.Throws<ArgumentException>(() => WithCredential(new byte[StateReply.MaxMigrationCredentialLength + 1]));
    }

    [Fact]
    public void Every_truncation_of_the_golden_reply_with_a_credential_must_give_a_typed_error()
    {
        var golden = ControlSamples.ReplyWithCredentialBytes;
        for (var length = 0; length < golden.Length; length++)
        {
            var error = DecodeError(golden[..length]);
            Assert.Equal(length < ControlFrameHeader.Length ? ControlWireError.Truncated : ControlWireError.BodyLengthMismatch, error);
        }
    }

    [Fact]
    public void Every_truncation_with_a_matching_body_length_must_give_a_typed_error()
    {
        var golden = ControlSamples.ReplyWithCredentialBytes;
        for (var length = ControlFrameHeader.Length; length < golden.Length; length++)
        {
            var frame = golden[..length];
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)(length - ControlFrameHeader.Length));
            Assert.Contains(DecodeError(frame), new[] { ControlWireError.Truncated, ControlWireError.LengthExceedsPayload });
        }
    }

    [Theory]
    [InlineData(0x41, ControlWireError.MigrationCredentialTooLong)]
    [InlineData(0x40, ControlWireError.LengthExceedsPayload)]
    [InlineData(0xFF, ControlWireError.MigrationCredentialTooLong)]
    [InlineData(0x12, ControlWireError.LengthExceedsPayload)]
    [InlineData(0x20, ControlWireError.LengthExceedsPayload)]
    [InlineData(0x10, ControlWireError.TrailingBytes)]
    [InlineData(0x00, ControlWireError.TrailingBytes)]
    public void Credential_length_must_agree_with_the_payload(byte length, ControlWireError expected)
    {
        var frame = (byte[])ControlSamples.ReplyWithCredentialBytes.Clone();
        frame[CredentialLengthOffset] = length;

        Assert.Equal(expected, DecodeError(frame));
    }
}

using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class StateReplyChunkTests
{
    [Fact]
    public void Split_must_cover_the_reply_with_full_chunks_and_a_remainder()
    {
        var encoded = ControlSamples.RandomBytes(1000, seed: 3);

        var chunks = StateReplyChunk.Split(7, encoded, 300);

        Assert.Equal([300, 300, 300, 100], chunks.Select(c => c.Payload.Length));
        Assert.All(chunks, c => Assert.Equal(4, c.ChunkCount));
        Assert.Equal(encoded, chunks.SelectMany(c => c.Payload.ToArray()));
    }

    [Fact]
    public void Split_of_an_exact_multiple_must_have_no_empty_chunk()
    {
        var chunks = StateReplyChunk.Split(7, new byte[900], 300);

        Assert.Equal(3, chunks.Count);
        Assert.All(chunks, c => Assert.Equal(300, c.Payload.Length));
    }

    [Fact]
    public void Chunk_must_encode_to_the_documented_layout()
    {
        var chunk = new StateReplyChunk(0x0102030405060708, totalLength: 10, chunkSize: 4, chunkIndex: 2, new byte[] { 0xEE, 0xFF });

        Assert.Equal(
            "01" + "000000" + "0102030405060708" + "0000000A" + "00000004" + "00000002" + "EEFF",
            Convert.ToHexString(chunk.ToArray()));
    }

    [Fact]
    public void Chunk_must_round_trip()
    {
        var chunk = StateReplyChunk.Split(ulong.MaxValue, ControlSamples.RandomBytes(70, seed: 4), 32)[2];

        Assert.True(StateReplyChunk.TryDecode(chunk.ToArray(), out var decoded, out var error), error.ToString());
        Assert.Equal(chunk, decoded);
    }

    [Theory]
    [InlineData("01000000" + "0000000000000001" + "0000000A" + "00000004", ControlWireError.Truncated)]
    [InlineData("02000000" + "0000000000000001" + "0000000A" + "00000004" + "00000000" + "AABBCCDD", ControlWireError.UnsupportedVersion)]
    [InlineData("01000100" + "0000000000000001" + "0000000A" + "00000004" + "00000000" + "AABBCCDD", ControlWireError.ReservedNotZero)]
    [InlineData("01000000" + "0000000000000001" + "0000000A" + "00000004" + "00000000" + "AABBCC", ControlWireError.BodyLengthMismatch)]
    [InlineData("01000000" + "0000000000000001" + "0000000A" + "00000004" + "00000002" + "AABBCC", ControlWireError.BodyLengthMismatch)]
    [InlineData("01000000" + "0000000000000001" + "0000000A" + "00000004" + "00000003" + "", ControlWireError.BodyLengthMismatch)]
    [InlineData("01000000" + "0000000000000001" + "00000000" + "00000004" + "00000000" + "", ControlWireError.BodyLengthMismatch)]
    [InlineData("01000000" + "0000000000000001" + "0000000A" + "00000000" + "00000000" + "", ControlWireError.BodyLengthMismatch)]
    [InlineData("01000000" + "0000000000000001" + "8000000A" + "00000004" + "00000000" + "AABBCCDD", ControlWireError.BodyLengthMismatch)]
    [InlineData("01000000" + "0000000000000001" + "0000000A" + "00000004" + "FFFFFFFF" + "AABBCCDD", ControlWireError.BodyLengthMismatch)]
    public void Malformed_chunk_must_be_rejected_with_its_error(string hex, ControlWireError expected)
    {
        Assert.False(StateReplyChunk.TryDecode(Convert.FromHexString(hex), out var chunk, out var error));
        Assert.Null(chunk);
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Constructor_must_refuse_a_payload_that_does_not_fit_its_position()
    {
        Assert.Throws<ArgumentException>(() => new StateReplyChunk(1, totalLength: 10, chunkSize: 4, chunkIndex: 2, new byte[4]));
        Assert.Throws<ArgumentException>(() => new StateReplyChunk(1, totalLength: 10, chunkSize: 4, chunkIndex: 3, ReadOnlyMemory<byte>.Empty));
    }

    [Fact]
    public void Transfer_must_send_a_small_reply_whole_and_a_large_one_in_frame_sized_chunks()
    {
        var settings = ControlSettings.Create(MtcpConfig.Reference);
        var small = ControlSamples.Replying(1, new byte[1000]);
        var large = ControlSamples.Replying(2, ControlSamples.RandomBytes(1 << 20, seed: 5));

        var smallMessages = StateReplyTransfer.ToMessages(small, settings);
        var largeMessages = StateReplyTransfer.ToMessages(large, settings);

        Assert.Same(small, Assert.Single(smallMessages));
        var chunks = largeMessages.Cast<StateReplyChunk>().ToList();
        Assert.Equal(9, chunks.Count);
        Assert.All(chunks, c => Assert.True(c.GetEncodedLength() <= settings.MaximumFrameSize - settings.RemoteEnvelopeReserve));
        Assert.Equal(large.ToArray(), chunks.SelectMany(c => c.Payload.ToArray()));
    }
}

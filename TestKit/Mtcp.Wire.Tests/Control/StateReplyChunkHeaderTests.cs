using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Wire.Tests.Control;

[Trait("Category", "Wire")]
public sealed class StateReplyChunkHeaderTests(ITestOutputHelper output)
{
    private const byte Marker = 0xEE;

    /// <summary>Chunk 2 of a 10-byte reply cut in 4-byte chunks (the last, 2 bytes), request 0x0102030405060708.</summary>
    private static readonly StateReplyChunkHeader Golden = new(0x0102030405060708, TotalLength: 10, ChunkSize: 4, ChunkIndex: 2);

    private static readonly byte[] GoldenBytes = Convert.FromHexString(
        "01" + "000000" + "0102030405060708" + "0000000A" + "00000004" + "00000002" + "ABCD");

    private static ControlWireError DecodeError(ReadOnlySpan<byte> chunk)
    {
        Assert.False(StateReplyChunkHeader.TryDecode(chunk, out var header, out var error));
        Assert.Equal(default, header);
        Assert.NotEqual(ControlWireError.None, error);
        return error;
    }

    private static byte[] Chunk(StateReplyChunkHeader header, int payloadLength)
    {
        var bytes = new byte[StateReplyChunkHeader.Length + payloadLength];
        header.WriteTo(bytes);
        return bytes;
    }

    [Fact]
    public void Encoder_must_write_the_golden_header_and_nothing_else()
    {
        var buffer = new byte[StateReplyChunkHeader.Length + 8];
        Array.Fill(buffer, Marker);

        Golden.WriteTo(buffer);

        Assert.Equal(Convert.ToHexString(GoldenBytes, 0, StateReplyChunkHeader.Length), Convert.ToHexString(buffer, 0, StateReplyChunkHeader.Length));
        Assert.All(buffer[StateReplyChunkHeader.Length..], b => Assert.Equal(Marker, b));
    }

    [Fact]
    public void Decoder_must_read_the_golden_chunk_with_its_payload_after_the_header()
    {
        Assert.True(StateReplyChunkHeader.TryDecode(GoldenBytes, out var header, out var error), error.ToString());

        Assert.Equal(Golden, header);
        Assert.Equal(3, header.ChunkCount);
        Assert.Equal(2, header.PayloadLength);
        Assert.Equal("ABCD", Convert.ToHexString(GoldenBytes.AsSpan(StateReplyChunkHeader.Length)));
    }

    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(128_000, 128_000, 0)]
    [InlineData(1_048_576 + 300, 131_072, 8)]
    [InlineData(int.MaxValue, 131_072, 16383)]
    [InlineData(int.MaxValue, int.MaxValue, 0)]
    public void Every_chunk_of_a_transfer_must_round_trip(int totalLength, int chunkSize, int chunkIndex)
    {
        var header = new StateReplyChunkHeader(ulong.MaxValue - (ulong)chunkIndex, totalLength, chunkSize, chunkIndex);
        var payloadLength = header.PayloadLength;
        Assert.True(payloadLength > 0);
        var expectedLast = chunkIndex == header.ChunkCount - 1 ? totalLength - ((long)chunkIndex * chunkSize) : chunkSize;
        Assert.Equal(expectedLast, payloadLength);

        // Only the header is materialised: a payload of this length is never read by the decoder, only measured.
        var bytes = new byte[StateReplyChunkHeader.Length + Math.Min(payloadLength, 1 << 20)];
        header.WriteTo(bytes);
        if (payloadLength <= 1 << 20)
        {
            Assert.True(StateReplyChunkHeader.TryDecode(bytes, out var decoded, out var error), error.ToString());
            Assert.Equal(header, decoded);
        }
        else
        {
            Assert.Equal(ControlWireError.BodyLengthMismatch, DecodeError(bytes));
        }
    }

    [Fact]
    public void Decoder_must_refuse_every_truncation_with_Truncated_or_a_length_mismatch()
    {
        for (var length = 0; length < GoldenBytes.Length; length++)
        {
            var error = DecodeError(GoldenBytes.AsSpan(0, length));
            Assert.Equal(length < StateReplyChunkHeader.Length ? ControlWireError.Truncated : ControlWireError.BodyLengthMismatch, error);
        }
    }

    [Fact]
    public void Decoder_must_refuse_an_unknown_version()
    {
        var bytes = GoldenBytes.ToArray();
        bytes[0] = 2;
        Assert.Equal(ControlWireError.UnsupportedVersion, DecodeError(bytes));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Decoder_must_refuse_reserved_bits(int offset)
    {
        var bytes = GoldenBytes.ToArray();
        bytes[offset] = 0x80;
        Assert.Equal(ControlWireError.ReservedNotZero, DecodeError(bytes));
    }

    [Theory]
    [InlineData(0, 4, 0, 0)]
    [InlineData(-10, 4, 0, 0)]
    [InlineData(10, 0, 0, 0)]
    [InlineData(10, -4, 0, 4)]
    [InlineData(10, 4, 3, 0)]
    [InlineData(10, 4, -1, 4)]
    [InlineData(10, 4, 0, 3)]
    [InlineData(10, 4, 0, 5)]
    [InlineData(10, 4, 2, 4)]
    [InlineData(int.MaxValue, int.MaxValue, 1, 0)]
    public void Decoder_must_refuse_a_header_inconsistent_with_itself_or_its_payload(int totalLength, int chunkSize, int chunkIndex, int payloadLength)
    {
        var header = new StateReplyChunkHeader(7, totalLength, chunkSize, chunkIndex);
        Assert.False(header.IsConsistent(payloadLength));
        Assert.Equal(ControlWireError.BodyLengthMismatch, DecodeError(Chunk(header, payloadLength)));
    }

    [Fact]
    public void Decoder_must_never_throw_and_accept_only_consistent_chunks_on_random_input()
    {
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var random = new Random(seed);
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            if (bytes.Length >= 4 && random.Next(2) == 0)
            {
                // Mostly valid prefixes, so that the consistency checks are reached.
                bytes[0] = StateReplyChunkHeader.CurrentVersion;
                bytes.AsSpan(1, 3).Clear();
            }

            if (StateReplyChunkHeader.TryDecode(bytes, out var header, out var error))
            {
                Assert.Equal(ControlWireError.None, error);
                Assert.True(header.IsConsistent(bytes.Length - StateReplyChunkHeader.Length), $"seed {seed}: accepted an inconsistent chunk");
            }
        }
    }

    [Fact]
    public void WriteTo_must_refuse_a_destination_shorter_than_the_header() =>
        Assert.Throws<ArgumentException>(() => Golden.WriteTo(new byte[StateReplyChunkHeader.Length - 1]));
}

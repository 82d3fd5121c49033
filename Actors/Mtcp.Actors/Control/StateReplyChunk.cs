using System.Diagnostics.CodeAnalysis;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>
/// One slice of an encoded <see cref="StateReply"/> (or of its sealed envelope) too large for one Akka.Remote frame:
/// Akka.Remote drops any message above <c>maximum-frame-size</c>, so a large reply travels as chunks of
/// <c>mtcp.control.reply-chunk-size</c> bytes and <see cref="StateReplyAssembler"/> rebuilds it. The bytes are
/// <see cref="StateReplyChunkHeader"/>'s layout.
/// </summary>
internal sealed record StateReplyChunk
{
    public const string SerializerManifest = "SRC";

    public StateReplyChunk(ulong requestId, int totalLength, int chunkSize, int chunkIndex, ReadOnlyMemory<byte> payload)
    {
        var header = new StateReplyChunkHeader(requestId, totalLength, chunkSize, chunkIndex);
        if (!header.IsConsistent(payload.Length))
        {
            throw new ArgumentException(
                $"chunk {chunkIndex} of size {chunkSize} of a {totalLength}-byte reply cannot carry {payload.Length} bytes");
        }

        Header = header;
        Payload = payload;
    }

    /// <summary>Which transfer and which part of it this chunk is.</summary>
    public StateReplyChunkHeader Header { get; }

    /// <summary>The request id of the state request this reply answers (the control frame header's RequestId).</summary>
    public ulong RequestId => Header.RequestId;

    /// <summary>Length of the whole encoded state reply frame.</summary>
    public int TotalLength => Header.TotalLength;

    /// <summary>Payload length of every chunk except possibly the last, which carries the remainder.</summary>
    public int ChunkSize => Header.ChunkSize;

    /// <summary>Zero-based position; the payload starts at <c>ChunkIndex * ChunkSize</c> in the encoded reply.</summary>
    public int ChunkIndex => Header.ChunkIndex;

    /// <summary>Number of chunks in the transfer.</summary>
    public int ChunkCount => Header.ChunkCount;

    /// <summary>This chunk's bytes of the encoded reply.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    public bool Equals(StateReplyChunk? other) =>
        other is not null && Header == other.Header && Payload.Span.SequenceEqual(other.Payload.Span);

    public override int GetHashCode() => Header.GetHashCode();

    /// <summary>
    /// Cuts an encoded state reply frame into chunks of <paramref name="chunkSize"/> payload bytes. The
    /// chunks share <paramref name="encodedReply"/>'s memory; nothing is copied.
    /// </summary>
    public static IReadOnlyList<StateReplyChunk> Split(ulong requestId, ReadOnlyMemory<byte> encodedReply, int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkSize);
        if (encodedReply.IsEmpty)
        {
            throw new ArgumentException("an encoded state reply is never empty", nameof(encodedReply));
        }

        var count = StateReplyChunkHeader.CountFor(encodedReply.Length, chunkSize);
        var chunks = new StateReplyChunk[count];
        for (var index = 0; index < count; index++)
        {
            var start = index * chunkSize;
            var length = Math.Min(chunkSize, encodedReply.Length - start);
            chunks[index] = new StateReplyChunk(requestId, encodedReply.Length, chunkSize, index, encodedReply.Slice(start, length));
        }

        return chunks;
    }

    public int GetEncodedLength() => StateReplyChunkHeader.Length + Payload.Length;

    public byte[] ToArray()
    {
        var bytes = new byte[GetEncodedLength()];
        Header.WriteTo(bytes);
        Payload.Span.CopyTo(bytes.AsSpan(StateReplyChunkHeader.Length));
        return bytes;
    }

    /// <summary>
    /// Decodes an untrusted chunk (see <see cref="StateReplyChunkHeader.TryDecode"/>). The payload aliases
    /// <paramref name="encoded"/>: the caller hands over a buffer it will not reuse (Akka.NET gives each
    /// deserialization its own array).
    /// </summary>
    public static bool TryDecode(ReadOnlyMemory<byte> encoded, [NotNullWhen(true)] out StateReplyChunk? chunk, out ControlWireError error)
    {
        chunk = null;
        if (!StateReplyChunkHeader.TryDecode(encoded.Span, out var header, out error))
        {
            return false;
        }

        chunk = new StateReplyChunk(header.RequestId, header.TotalLength, header.ChunkSize, header.ChunkIndex, encoded[StateReplyChunkHeader.Length..]);
        return true;
    }
}

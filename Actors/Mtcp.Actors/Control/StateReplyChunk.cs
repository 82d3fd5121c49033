using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Mtcp.Wire.Control;

namespace Mtcp.Actors;

/// <summary>
/// One slice of an encoded <see cref="StateReply"/> too large for one Akka.Remote frame. Thesis 4.2.3 sends
/// the reply as one chain of mbufs over a TCP control connection; Akka.Remote instead drops any message
/// above <c>maximum-frame-size</c>, so a large reply travels as chunks of
/// <c>mtcp.control.reply-chunk-size</c> bytes and <see cref="StateReplyAssembler"/> rebuilds it.
/// Every chunk describes the whole transfer, so the first to arrive (in any order) can start it.
/// </summary>
public sealed record StateReplyChunk
{
    public const string SerializerManifest = "SRC";

    public const byte CurrentVersion = 1;

    /// <summary>
    /// <code>
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------+-----------------------------------------------+
    /// |    Version    |                Reserved (zero)                |
    /// +---------------+-----------------------------------------------+
    /// |                                                               |
    /// +                       RequestId (64 bits)                     +
    /// |                                                               |
    /// +---------------------------------------------------------------+
    /// |           TotalLength (bytes of the encoded reply)            |
    /// +---------------------------------------------------------------+
    /// |          ChunkSize (payload bytes of every chunk but the last) |
    /// +---------------------------------------------------------------+
    /// |                          ChunkIndex                           |
    /// +---------------------------------------------------------------+
    /// |       Payload: encoded reply [ChunkIndex * ChunkSize, ...)    |
    /// +---------------------------------------------------------------+
    /// </code>
    /// All integers are big-endian, as in the control frames of Mtcp.Wire.Control.
    /// </summary>
    public const int HeaderLength = 24;

    private const int VersionOffset = 0;
    private const int ReservedOffset = 1;
    private const int ReservedLength = 3;
    private const int RequestIdOffset = 4;
    private const int TotalLengthOffset = 12;
    private const int ChunkSizeOffset = 16;
    private const int ChunkIndexOffset = 20;

    public StateReplyChunk(ulong requestId, int totalLength, int chunkSize, int chunkIndex, ReadOnlyMemory<byte> payload)
    {
        if (!IsConsistent(totalLength, chunkSize, chunkIndex, payload.Length))
        {
            throw new ArgumentException(
                $"chunk {chunkIndex} of size {chunkSize} of a {totalLength}-byte reply cannot carry {payload.Length} bytes");
        }

        RequestId = requestId;
        TotalLength = totalLength;
        ChunkSize = chunkSize;
        ChunkIndex = chunkIndex;
        Payload = payload;
    }

    /// <summary>The request id of the state request this reply answers (the control frame header's RequestId).</summary>
    public ulong RequestId { get; }

    /// <summary>Length of the whole encoded state reply frame.</summary>
    public int TotalLength { get; }

    /// <summary>Payload length of every chunk except possibly the last, which carries the remainder.</summary>
    public int ChunkSize { get; }

    /// <summary>Zero-based position; the payload starts at <c>ChunkIndex * ChunkSize</c> in the encoded reply.</summary>
    public int ChunkIndex { get; }

    /// <summary>Number of chunks in the transfer.</summary>
    public int ChunkCount => CountFor(TotalLength, ChunkSize);

    /// <summary>This chunk's bytes of the encoded reply.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    public bool Equals(StateReplyChunk? other) =>
        other is not null
        && RequestId == other.RequestId
        && TotalLength == other.TotalLength
        && ChunkSize == other.ChunkSize
        && ChunkIndex == other.ChunkIndex
        && Payload.Span.SequenceEqual(other.Payload.Span);

    public override int GetHashCode() => HashCode.Combine(RequestId, TotalLength, ChunkSize, ChunkIndex);

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

        var count = CountFor(encodedReply.Length, chunkSize);
        var chunks = new StateReplyChunk[count];
        for (var index = 0; index < count; index++)
        {
            var start = index * chunkSize;
            var length = Math.Min(chunkSize, encodedReply.Length - start);
            chunks[index] = new StateReplyChunk(requestId, encodedReply.Length, chunkSize, index, encodedReply.Slice(start, length));
        }

        return chunks;
    }

    public int GetEncodedLength() => HeaderLength + Payload.Length;

    public byte[] ToArray()
    {
        var bytes = new byte[GetEncodedLength()];
        bytes[VersionOffset] = CurrentVersion;
        bytes.AsSpan(ReservedOffset, ReservedLength).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(RequestIdOffset), RequestId);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(TotalLengthOffset), TotalLength);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(ChunkSizeOffset), ChunkSize);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(ChunkIndexOffset), ChunkIndex);
        Payload.Span.CopyTo(bytes.AsSpan(HeaderLength));
        return bytes;
    }

    /// <summary>
    /// Decodes an untrusted chunk. The payload aliases <paramref name="encoded"/>: the caller hands over a
    /// buffer it will not reuse (Akka.NET gives each deserialization its own array).
    /// </summary>
    public static bool TryDecode(ReadOnlyMemory<byte> encoded, [NotNullWhen(true)] out StateReplyChunk? chunk, out ControlWireError error)
    {
        chunk = null;
        var span = encoded.Span;
        if (span.Length < HeaderLength)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (span[VersionOffset] != CurrentVersion)
        {
            error = ControlWireError.UnsupportedVersion;
            return false;
        }

        if (span.Slice(ReservedOffset, ReservedLength).ContainsAnyExcept((byte)0))
        {
            error = ControlWireError.ReservedNotZero;
            return false;
        }

        var requestId = BinaryPrimitives.ReadUInt64BigEndian(span[RequestIdOffset..]);
        var totalLength = BinaryPrimitives.ReadInt32BigEndian(span[TotalLengthOffset..]);
        var chunkSize = BinaryPrimitives.ReadInt32BigEndian(span[ChunkSizeOffset..]);
        var chunkIndex = BinaryPrimitives.ReadInt32BigEndian(span[ChunkIndexOffset..]);
        var payload = encoded[HeaderLength..];
        if (!IsConsistent(totalLength, chunkSize, chunkIndex, payload.Length))
        {
            error = ControlWireError.BodyLengthMismatch;
            return false;
        }

        chunk = new StateReplyChunk(requestId, totalLength, chunkSize, chunkIndex, payload);
        error = ControlWireError.None;
        return true;
    }

    /// <summary>The payload length a chunk must have, given the transfer it claims to belong to.</summary>
    internal static int ExpectedPayloadLength(int totalLength, int chunkSize, int chunkIndex) =>
        (int)Math.Min(chunkSize, totalLength - ((long)chunkIndex * chunkSize));

    private static int CountFor(int totalLength, int chunkSize) => (int)(((long)totalLength + chunkSize - 1) / chunkSize);

    private static bool IsConsistent(int totalLength, int chunkSize, int chunkIndex, int payloadLength) =>
        totalLength > 0
        && chunkSize > 0
        && chunkIndex >= 0
        && chunkIndex < CountFor(totalLength, chunkSize)
        && payloadLength == ExpectedPayloadLength(totalLength, chunkSize, chunkIndex);
}

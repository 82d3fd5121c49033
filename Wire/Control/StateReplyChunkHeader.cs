using System.Buffers.Binary;

namespace Mtcp.Wire.Control;

/// <summary>
/// The header of one slice of an encoded state reply (or of its sealed envelope) too large for one message of the
/// control transport. Thesis 4.2.3 sends the reply as one chain of mbufs over a TCP control connection; Akka.Remote
/// instead drops any message above its frame limit, so a large reply travels as chunks that the receiver rebuilds.
/// Every chunk describes the whole transfer, so the first to arrive (in any order) can start it.
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
/// |         ChunkSize (payload bytes of every chunk but the last) |
/// +---------------------------------------------------------------+
/// |                          ChunkIndex                           |
/// +---------------------------------------------------------------+
/// |       Payload: encoded reply [ChunkIndex * ChunkSize, ...)    |
/// +---------------------------------------------------------------+
/// </code>
/// All integers are big-endian, as in the control frames. A header is consistent when the transfer is non-empty, the
/// index names one of its chunks and the payload has exactly that chunk's length.
/// </summary>
/// <param name="RequestId">The request id of the state request the reply answers.</param>
/// <param name="TotalLength">Length of the whole encoded reply.</param>
/// <param name="ChunkSize">Payload length of every chunk except possibly the last, which carries the remainder.</param>
/// <param name="ChunkIndex">Zero-based position; the payload starts at <c>ChunkIndex * ChunkSize</c> in the reply.</param>
public readonly record struct StateReplyChunkHeader(ulong RequestId, int TotalLength, int ChunkSize, int ChunkIndex)
{
    public const byte CurrentVersion = 1;

    /// <summary>Bytes of the header; the payload follows.</summary>
    public const int Length = 24;

    private const int VersionOffset = 0;
    private const int ReservedOffset = 1;
    private const int ReservedLength = 3;
    private const int RequestIdOffset = 4;
    private const int TotalLengthOffset = 12;
    private const int ChunkSizeOffset = 16;
    private const int ChunkIndexOffset = 20;

    /// <summary>Number of chunks in the transfer; 0 when its lengths are not positive.</summary>
    public int ChunkCount => TotalLength > 0 && ChunkSize > 0 ? CountFor(TotalLength, ChunkSize) : 0;

    /// <summary>The payload length this chunk must have; 0 when the header names no chunk of a valid transfer.</summary>
    public int PayloadLength => ChunkIndex >= 0 && ChunkIndex < ChunkCount
        ? (int)Math.Min(ChunkSize, TotalLength - ((long)ChunkIndex * ChunkSize))
        : 0;

    /// <summary>True when this header can carry a payload of <paramref name="payloadLength"/> bytes.</summary>
    public bool IsConsistent(int payloadLength) => PayloadLength > 0 && payloadLength == PayloadLength;

    /// <summary>Number of chunks of <paramref name="chunkSize"/> bytes that carry <paramref name="totalLength"/> bytes (both positive).</summary>
    public static int CountFor(int totalLength, int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(totalLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkSize);
        return (int)(((long)totalLength + chunkSize - 1) / chunkSize);
    }

    /// <summary>Writes the header into the first <see cref="Length"/> bytes of <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">the destination is shorter than the header.</exception>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Length)
        {
            throw new ArgumentException($"a state reply chunk header needs {Length} bytes, got {destination.Length}", nameof(destination));
        }

        destination[VersionOffset] = CurrentVersion;
        destination.Slice(ReservedOffset, ReservedLength).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(destination[RequestIdOffset..], RequestId);
        BinaryPrimitives.WriteInt32BigEndian(destination[TotalLengthOffset..], TotalLength);
        BinaryPrimitives.WriteInt32BigEndian(destination[ChunkSizeOffset..], ChunkSize);
        BinaryPrimitives.WriteInt32BigEndian(destination[ChunkIndexOffset..], ChunkIndex);
    }

    /// <summary>
    /// Decodes an untrusted chunk (header and payload): the payload is <c>chunk[Length..]</c>. Never throws; a
    /// short input is <see cref="ControlWireError.Truncated"/>, an unknown version <see cref="ControlWireError.UnsupportedVersion"/>,
    /// reserved bits set <see cref="ControlWireError.ReservedNotZero"/>, and a header inconsistent with itself or
    /// with the payload's length <see cref="ControlWireError.BodyLengthMismatch"/>.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> chunk, out StateReplyChunkHeader header, out ControlWireError error)
    {
        header = default;
        if (chunk.Length < Length)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (chunk[VersionOffset] != CurrentVersion)
        {
            error = ControlWireError.UnsupportedVersion;
            return false;
        }

        if (chunk.Slice(ReservedOffset, ReservedLength).ContainsAnyExcept((byte)0))
        {
            error = ControlWireError.ReservedNotZero;
            return false;
        }

        var decoded = new StateReplyChunkHeader(
            BinaryPrimitives.ReadUInt64BigEndian(chunk[RequestIdOffset..]),
            BinaryPrimitives.ReadInt32BigEndian(chunk[TotalLengthOffset..]),
            BinaryPrimitives.ReadInt32BigEndian(chunk[ChunkSizeOffset..]),
            BinaryPrimitives.ReadInt32BigEndian(chunk[ChunkIndexOffset..]));
        if (!decoded.IsConsistent(chunk.Length - Length))
        {
            error = ControlWireError.BodyLengthMismatch;
            return false;
        }

        header = decoded;
        error = ControlWireError.None;
        return true;
    }
}

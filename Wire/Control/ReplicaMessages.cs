using System.Diagnostics.CodeAnalysis;

namespace Mtcp.Wire.Control;

// The replication conversation (beyond the thesis, its eager state transfer): the node serving a connection keeps
// a buddy node up to date with what a state reply would carry, over the same control connection and in the same
// sealed frames as a migration. RequestId is the origin's update number; the buddy's ack echoes it.

/// <summary>
/// Origin to buddy: one piece of a connection's replicated state, the encoded <see cref="StateReply"/> frame the
/// origin would answer a state request with (thesis 4.2.2-4.2.3: snapshot, TCP state, transition log, credential,
/// and the read log since the snapshot). A state larger than one control frame travels in pieces, in order; the
/// buddy decodes it once <see cref="TotalLength"/> bytes of one <see cref="Generation"/> are in.
/// </summary>
public sealed record ReplicaState : ControlMessage
{
    public const string SerializerManifest = "RPS";

    public ReplicaState(ulong requestId, ConnectionId cid, uint generation, uint totalLength, uint offset, ReadOnlyMemory<byte> piece)
        : base(requestId)
    {
        if ((ulong)offset + (uint)piece.Length > totalLength)
        {
            throw new ArgumentException($"piece [{offset}, {offset + piece.Length}) beyond the state's {totalLength} bytes", nameof(piece));
        }

        Cid = ControlWriter.RequireEncodable(cid, nameof(cid));
        Generation = generation;
        TotalLength = totalLength;
        Offset = offset;
        Piece = piece;
    }

    /// <summary>The replicated connection, as its server names it.</summary>
    public ConnectionId Cid { get; }

    /// <summary>Which whole state this piece belongs to: the origin counts the states it sends per connection.</summary>
    public uint Generation { get; }

    /// <summary>Length of the whole encoded state reply.</summary>
    public uint TotalLength { get; }

    /// <summary>Where <see cref="Piece"/> starts in it.</summary>
    public uint Offset { get; }

    public ReadOnlyMemory<byte> Piece { get; }

    /// <summary>True for the piece that ends the state.</summary>
    public bool IsLast => Offset + (uint)Piece.Length == TotalLength;

    public override ControlMessageType MessageType => ControlMessageType.ReplicaState;

    public override string Manifest => SerializerManifest;

    public bool Equals(ReplicaState? other) =>
        other is not null && RequestId == other.RequestId && Cid == other.Cid && Generation == other.Generation
        && TotalLength == other.TotalLength && Offset == other.Offset && Piece.Span.SequenceEqual(other.Piece.Span);

    public override int GetHashCode() => HashCode.Combine(RequestId, Cid, Generation, Offset);

    private protected override int GetBodyLength() => ControlWriter.ConnectionIdLength(Cid) + 12 + Piece.Length;

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |                   Cid (13 or 37 bytes) ...                    |
    /// +---------------------------------------------------------------+
    /// |                          Generation                           |
    /// +---------------------------------------------------------------+
    /// |                          TotalLength                          |
    /// +---------------------------------------------------------------+
    /// |                            Offset                             |
    /// +---------------------------------------------------------------+
    /// |                  Piece (to the body's end) ...                |
    /// +---------------------------------------------------------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(Cid);
        writer.WriteUInt32(Generation);
        writer.WriteUInt32(TotalLength);
        writer.WriteUInt32(Offset);
        writer.WriteBytes(Piece.Span);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ReplicaState? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.ReplicaState, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var cid, out error))
        {
            return false;
        }

        if (!reader.TryReadUInt32(out var generation) || !reader.TryReadUInt32(out var totalLength) || !reader.TryReadUInt32(out var offset))
        {
            error = ControlWireError.Truncated;
            return false;
        }

        reader.TryReadBytes((uint)reader.Remaining, out var piece);
        if ((ulong)offset + (uint)piece.Length > totalLength)
        {
            error = ControlWireError.LengthExceedsPayload;
            return false;
        }

        message = new ReplicaState(header.RequestId, cid, generation, totalLength, offset, piece.ToArray());
        return true;
    }
}

/// <summary>
/// Origin to buddy: the client's bytes from <see cref="From"/> on, received in order since the pieces sent before
/// (the read log of thesis 3.3.3 as it grows), extending the replicated state of <see cref="Generation"/>.
/// </summary>
public sealed record ReplicaReadLog : ControlMessage
{
    public const string SerializerManifest = "RPL";

    public ReplicaReadLog(ulong requestId, ConnectionId cid, uint generation, SeqNumber from, ReadOnlyMemory<byte> bytes)
        : base(requestId)
    {
        Cid = ControlWriter.RequireEncodable(cid, nameof(cid));
        Generation = generation;
        From = from;
        Bytes = bytes;
    }

    public ConnectionId Cid { get; }

    /// <summary>The replicated state these bytes extend.</summary>
    public uint Generation { get; }

    /// <summary>The client's sequence number of the first byte.</summary>
    public SeqNumber From { get; }

    public ReadOnlyMemory<byte> Bytes { get; }

    /// <summary>The sequence number after the last byte.</summary>
    public SeqNumber End => From + Bytes.Length;

    public override ControlMessageType MessageType => ControlMessageType.ReplicaReadLog;

    public override string Manifest => SerializerManifest;

    public bool Equals(ReplicaReadLog? other) =>
        other is not null && RequestId == other.RequestId && Cid == other.Cid && Generation == other.Generation
        && From == other.From && Bytes.Span.SequenceEqual(other.Bytes.Span);

    public override int GetHashCode() => HashCode.Combine(RequestId, Cid, Generation, From);

    private protected override int GetBodyLength() => ControlWriter.ConnectionIdLength(Cid) + 8 + Bytes.Length;

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |                   Cid (13 or 37 bytes) ...                    |
    /// +---------------------------------------------------------------+
    /// |                          Generation                           |
    /// +---------------------------------------------------------------+
    /// |                             From                              |
    /// +---------------------------------------------------------------+
    /// |                  Bytes (to the body's end) ...                |
    /// +---------------------------------------------------------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(Cid);
        writer.WriteUInt32(Generation);
        writer.WriteUInt32(From.Value);
        writer.WriteBytes(Bytes.Span);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ReplicaReadLog? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.ReplicaReadLog, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var cid, out error))
        {
            return false;
        }

        if (!reader.TryReadUInt32(out var generation) || !reader.TryReadSeqNumber(out var from))
        {
            error = ControlWireError.Truncated;
            return false;
        }

        reader.TryReadBytes((uint)reader.Remaining, out var bytes);
        message = new ReplicaReadLog(header.RequestId, cid, generation, from, bytes.ToArray());
        return true;
    }
}

/// <summary>What the buddy did with a replica update.</summary>
public enum ReplicaAckStatus : byte
{
    /// <summary>It holds every update of the connection up to the one acknowledged.</summary>
    Held = 1,

    /// <summary>It could not apply the update (a piece or bytes missing, another generation): send the whole state again.</summary>
    NeedsState = 2,
}

/// <summary>
/// Buddy to origin: <see cref="ReplicaAckStatus.Held"/> acknowledges every update of <see cref="Cid"/> up to the
/// update number in <see cref="ControlMessage.RequestId"/>, so the origin may acknowledge the client's bytes they
/// cover; <see cref="ReplicaAckStatus.NeedsState"/> asks for the whole state again.
/// </summary>
public sealed record ReplicaAck : ControlMessage
{
    public const string SerializerManifest = "RPA";

    public ReplicaAck(ulong requestId, ConnectionId cid, ReplicaAckStatus status)
        : base(requestId)
    {
        if (status is not (ReplicaAckStatus.Held or ReplicaAckStatus.NeedsState))
        {
            throw new ArgumentOutOfRangeException(nameof(status), status, "undefined replica ack status");
        }

        Cid = ControlWriter.RequireEncodable(cid, nameof(cid));
        Status = status;
    }

    public ConnectionId Cid { get; }

    public ReplicaAckStatus Status { get; }

    public override ControlMessageType MessageType => ControlMessageType.ReplicaAck;

    public override string Manifest => SerializerManifest;

    private protected override int GetBodyLength() => ControlWriter.ConnectionIdLength(Cid) + 1;

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |                   Cid (13 or 37 bytes) ...                    |
    /// +---------------+-----------------------------------------------+
    /// |    Status     |
    /// +---------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(Cid);
        writer.WriteByte((byte)Status);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ReplicaAck? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.ReplicaAck, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var cid, out error))
        {
            return false;
        }

        if (!reader.TryReadByte(out var status))
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (reader.Remaining != 0)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        if ((ReplicaAckStatus)status is not (ReplicaAckStatus.Held or ReplicaAckStatus.NeedsState))
        {
            error = ControlWireError.BadReplicaAckStatus;
            return false;
        }

        message = new ReplicaAck(header.RequestId, cid, (ReplicaAckStatus)status);
        return true;
    }
}

/// <summary>
/// Origin to buddy: forget the replica of <see cref="Cid"/>; the connection ended, migrated away, or this node
/// chose another buddy for it.
/// </summary>
public sealed record ReplicaRelease : ControlMessage
{
    public const string SerializerManifest = "RPR";

    public ReplicaRelease(ulong requestId, ConnectionId cid)
        : base(requestId) =>
        Cid = ControlWriter.RequireEncodable(cid, nameof(cid));

    public ConnectionId Cid { get; }

    public override ControlMessageType MessageType => ControlMessageType.ReplicaRelease;

    public override string Manifest => SerializerManifest;

    private protected override int GetBodyLength() => ControlWriter.ConnectionIdLength(Cid);

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |                   Cid (13 or 37 bytes) ...                    |
    /// +---------------------------------------------------------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(Cid);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ReplicaRelease? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.ReplicaRelease, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var cid, out error))
        {
            return false;
        }

        if (reader.Remaining != 0)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        message = new ReplicaRelease(header.RequestId, cid);
        return true;
    }
}

/// <summary>What the three origin-to-buddy updates (<see cref="ReplicaState"/>, <see cref="ReplicaReadLog"/>, <see cref="ReplicaRelease"/>) share.</summary>
public static class ReplicaUpdate
{
    /// <summary>The connection <paramref name="message"/> is about; false when it is no replica update.</summary>
    public static bool TryGetCid(ControlMessage message, out ConnectionId cid)
    {
        switch (message)
        {
            case ReplicaState state:
                cid = state.Cid;
                return true;
            case ReplicaReadLog readLog:
                cid = readLog.Cid;
                return true;
            case ReplicaRelease release:
                cid = release.Cid;
                return true;
            default:
                cid = default;
                return false;
        }
    }
}

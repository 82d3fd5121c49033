using System.Diagnostics.CodeAnalysis;
using Mtcp.Actors.Configuration;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>What <see cref="StateReplyAssembler.Add"/> did with a chunk.</summary>
internal enum AssemblyStatus : byte
{
    /// <summary>Stored; the reply is not complete yet.</summary>
    Buffered,

    /// <summary>The last missing chunk: the reply was reassembled, decoded and the transfer closed.</summary>
    Completed,

    /// <summary>A chunk already held, with the same bytes; nothing changed.</summary>
    Duplicate,

    /// <summary>
    /// The chunk names no request this node is waiting for (never sent, already answered, timed out or
    /// abandoned); it is dropped and nothing is allocated.
    /// </summary>
    UnexpectedRequest,

    /// <summary>The chunk announces a reply above <c>mtcp.control.max-state-reply-size</c>; nothing is allocated.</summary>
    ReplyTooLarge,

    /// <summary>Starting this transfer would exceed <c>mtcp.control.max-reassembly-bytes</c>; nothing is allocated (a later chunk may start it once room is freed).</summary>
    ReassemblyBudgetExceeded,

    /// <summary>
    /// The chunk disagrees with the transfer it names (other total length or chunk size, or other bytes for
    /// a chunk already held); it is dropped and the transfer is unchanged.
    /// </summary>
    InconsistentChunk,

    /// <summary>All chunks arrived but they do not decode as a state reply; the transfer is discarded.</summary>
    MalformedReply,

    /// <summary>All chunks arrived and decode, but the reply's request id is not the chunks'; the transfer is discarded.</summary>
    RequestIdMismatch,
}

/// <summary>The outcome of adding one chunk: the status, the reply when complete, and the decode error when malformed.</summary>
internal readonly record struct AssemblyResult(AssemblyStatus Status, StateReply? Reply, ControlWireError WireError)
{
    /// <summary>True when the chunk was refused; the status says why.</summary>
    public bool IsRejection => Status is not (AssemblyStatus.Buffered or AssemblyStatus.Completed or AssemblyStatus.Duplicate);
}

/// <summary>Turns the reassembled bytes of a transfer into its state reply: decodes a frame, or opens a sealed envelope.</summary>
internal delegate bool StateReplyFrameReader(ReadOnlyMemory<byte> frame, [NotNullWhen(true)] out StateReply? reply, out ControlWireError error);

/// <summary>
/// Rebuilds state replies sent as <see cref="StateReplyChunk"/>s, for any number of transfers in flight on
/// one control connection (thesis 4.2.3 multiplexes all of them onto it). Pure: no clock and no actor.
/// The owner registers each state request it sends with <see cref="Expect"/> and ends it with
/// <see cref="Abandon"/> when it times out or is answered otherwise, which is how missing chunks end.
/// Chunks may come in any order and more than once; chunks for requests not expected are refused, so a
/// peer cannot make this node allocate for transfers it never asked for. Memory is bounded: no reply above
/// the per-reply limit, and no more than the reassembly budget reserved across transfers.
/// </summary>
internal sealed class StateReplyAssembler
{
    /// <summary>Expected requests; the value is null until the first chunk of the reply arrives.</summary>
    private readonly Dictionary<ulong, Transfer?> _transfers = [];
    private readonly StateReplyFrameReader _read;

    /// <param name="read">how the reassembled bytes become the reply; null: they are a state reply frame.</param>
    public StateReplyAssembler(int maxStateReplySize, long maxReassemblyBytes, StateReplyFrameReader? read = null)
    {
        _read = read ?? ReadFrame;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxStateReplySize);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxReassemblyBytes, maxStateReplySize);
        MaxStateReplySize = maxStateReplySize;
        MaxReassemblyBytes = maxReassemblyBytes;
    }

    public StateReplyAssembler(ControlSettings settings, StateReplyFrameReader? read = null)
        : this(settings?.MaxStateReplySize ?? throw new ArgumentNullException(nameof(settings)), settings.MaxReassemblyBytes, read)
    {
    }

    public int MaxStateReplySize { get; }

    public long MaxReassemblyBytes { get; }

    /// <summary>Requests expected and neither completed, discarded nor abandoned.</summary>
    public int PendingTransfers => _transfers.Count;

    /// <summary>Bytes reserved for pending transfers (each reserves its whole reply length on its first chunk).</summary>
    public long ReservedBytes { get; private set; }

    public bool IsPending(ulong requestId) => _transfers.ContainsKey(requestId);

    /// <summary>Accept chunks for <paramref name="requestId"/> from now on; false when it is already expected.</summary>
    public bool Expect(ulong requestId) => _transfers.TryAdd(requestId, null);

    public AssemblyResult Add(StateReplyChunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        if (!_transfers.TryGetValue(chunk.RequestId, out var transfer))
        {
            return new AssemblyResult(AssemblyStatus.UnexpectedRequest, null, ControlWireError.None);
        }

        if (transfer is null)
        {
            if (chunk.TotalLength > MaxStateReplySize)
            {
                return new AssemblyResult(AssemblyStatus.ReplyTooLarge, null, ControlWireError.None);
            }

            if (ReservedBytes + chunk.TotalLength > MaxReassemblyBytes)
            {
                return new AssemblyResult(AssemblyStatus.ReassemblyBudgetExceeded, null, ControlWireError.None);
            }

            transfer = new Transfer(chunk.TotalLength, chunk.ChunkSize, chunk.ChunkCount);
            _transfers[chunk.RequestId] = transfer;
            ReservedBytes += chunk.TotalLength;
        }

        if (chunk.TotalLength != transfer.Frame.Length || chunk.ChunkSize != transfer.ChunkSize)
        {
            return new AssemblyResult(AssemblyStatus.InconsistentChunk, null, ControlWireError.None);
        }

        var destination = transfer.Frame.AsSpan(chunk.ChunkIndex * transfer.ChunkSize, chunk.Payload.Length);
        if (transfer.Received[chunk.ChunkIndex])
        {
            var status = destination.SequenceEqual(chunk.Payload.Span) ? AssemblyStatus.Duplicate : AssemblyStatus.InconsistentChunk;
            return new AssemblyResult(status, null, ControlWireError.None);
        }

        chunk.Payload.Span.CopyTo(destination);
        transfer.Received[chunk.ChunkIndex] = true;
        transfer.Missing--;
        if (transfer.Missing > 0)
        {
            return new AssemblyResult(AssemblyStatus.Buffered, null, ControlWireError.None);
        }

        Remove(chunk.RequestId, transfer);
        if (!_read(transfer.Frame, out var reply, out var error))
        {
            return new AssemblyResult(AssemblyStatus.MalformedReply, null, error);
        }

        return reply.RequestId == chunk.RequestId
            ? new AssemblyResult(AssemblyStatus.Completed, reply, ControlWireError.None)
            : new AssemblyResult(AssemblyStatus.RequestIdMismatch, null, ControlWireError.None);
    }

    /// <summary>
    /// Stops expecting <paramref name="requestId"/> and releases what its transfer holds (the request timed
    /// out, was rejected, or was answered by a whole <see cref="StateReply"/>); false when it was not expected.
    /// </summary>
    public bool Abandon(ulong requestId)
    {
        if (!_transfers.TryGetValue(requestId, out var transfer))
        {
            return false;
        }

        Remove(requestId, transfer);
        return true;
    }

    private static bool ReadFrame(ReadOnlyMemory<byte> frame, [NotNullWhen(true)] out StateReply? reply, out ControlWireError error) =>
        StateReply.TryDecode(frame.Span, out reply, out error);

    private void Remove(ulong requestId, Transfer? transfer)
    {
        _transfers.Remove(requestId);
        ReservedBytes -= transfer?.Frame.Length ?? 0;
    }

    private sealed class Transfer(int totalLength, int chunkSize, int chunkCount)
    {
        public byte[] Frame { get; } = new byte[totalLength];

        public int ChunkSize { get; } = chunkSize;

        public bool[] Received { get; } = new bool[chunkCount];

        public int Missing { get; set; } = chunkCount;
    }
}

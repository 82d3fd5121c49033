using System.Collections.Concurrent;
using Mtcp.Transports;

namespace Mtcp.Actors.Packets;

/// <summary>
/// The segment batches endpoint actors encode what they have sendable into (<c>mtcp.runtime.send-batch</c> segments,
/// <c>send-batch-bytes</c>), rented for one transmission and returned: as many exist as endpoints transmitted at once,
/// about one per dispatcher thread, so their memory follows the threads and not the connections. One pool per runtime.
/// </summary>
internal sealed class SendBatchPool
{
    private readonly ConcurrentBag<SegmentBatch> _idle = [];
    private readonly int _maxSegments;
    private readonly int _maxBytes;

    /// <param name="maxSegments">the most segments one system call sends.</param>
    /// <param name="maxBytes">the most bytes a batch holds, unless one segment needs more.</param>
    public SendBatchPool(int maxSegments, int maxBytes)
    {
        _maxSegments = maxSegments;
        _maxBytes = maxBytes;
    }

    /// <summary>An empty batch with room for at least one segment of <paramref name="segmentRoom"/> bytes (<see cref="SegmentEncoder.SegmentRoom"/>).</summary>
    public SegmentBatch Rent(int segmentRoom)
    {
        while (_idle.TryTake(out var batch))
        {
            if (batch.MaxBytes >= segmentRoom)
            {
                return batch;
            }
        }

        return new SegmentBatch(_maxSegments, Math.Max(_maxBytes, segmentRoom));
    }

    /// <summary>Takes back a batch, emptied.</summary>
    public void Return(SegmentBatch batch)
    {
        batch.Clear();
        _idle.Add(batch);
    }
}

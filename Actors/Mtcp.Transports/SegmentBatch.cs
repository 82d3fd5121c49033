using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// Segments to send together, in order, each with its destination: what one endpoint has sendable at once (a window's
/// data, a burst's ACKs), handed to <see cref="IPacketTransport.SendBatch"/> so that the raw and UDP transports pay one
/// sendmmsg(2) for many segments instead of one sendmsg(2) each. Segments are encoded in place, into
/// <see cref="Room"/>, so nothing is copied between the encoder and the system call. The bytes are pinned (on the
/// pinned object heap) for the system call's pointers. Not thread-safe: one sender fills and sends it.
/// </summary>
public sealed class SegmentBatch
{
    private readonly byte[] _bytes;
    private readonly Entry[] _entries;
    private int _used;
    private int _roomLength;

    /// <param name="maxSegments">the most segments the batch holds.</param>
    /// <param name="maxBytes">the most bytes its segments take, with the room the encoder leaves unused in front of each.</param>
    public SegmentBatch(int maxSegments, int maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSegments, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        _entries = new Entry[maxSegments];
        _bytes = GC.AllocateUninitializedArray<byte>(maxBytes, pinned: true);
    }

    /// <summary>The segments added since the last <see cref="Clear"/>.</summary>
    public int Count { get; private set; }

    public int MaxSegments => _entries.Length;

    public int MaxBytes => _bytes.Length;

    public IpAddress DestinationAt(int index) => EntryAt(index).Destination;

    public ReadOnlySpan<byte> SegmentAt(int index)
    {
        var entry = EntryAt(index);
        return _bytes.AsSpan(entry.Offset, entry.Length);
    }

    /// <summary>Where segment <paramref name="index"/> starts in the pinned bytes (<see cref="PinnedBytes"/>).</summary>
    internal int OffsetAt(int index) => EntryAt(index).Offset;

    /// <summary>The batch's bytes, pinned for its lifetime: a pointer taken with <c>fixed</c> stays valid.</summary>
    internal byte[] PinnedBytes => _bytes;

    /// <summary>
    /// <paramref name="length"/> free bytes to encode the next segment into (<see cref="Add"/> then keeps it), or empty
    /// when the batch has no room for it: it is full by segments or by bytes, and is sent and cleared first.
    /// </summary>
    public Span<byte> Room(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (Count == _entries.Length || _bytes.Length - _used < length)
        {
            _roomLength = 0;
            return Span<byte>.Empty;
        }

        _roomLength = length;
        return _bytes.AsSpan(_used, length);
    }

    /// <summary>
    /// Keeps the segment encoded at <paramref name="start"/>..<paramref name="start"/> + <paramref name="length"/> of the
    /// span <see cref="Room"/> returned last, for <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">the segment does not lie inside that room.</exception>
    public void Add(IpAddress destination, int start, int length)
    {
        if (start < 0 || length < 1 || start + length > _roomLength)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"a segment at {start} of {length} bytes is not inside the {_roomLength}-byte room");
        }

        _entries[Count++] = new Entry(destination, _used + start, length);
        _used += start + length;
        _roomLength = 0;
    }

    /// <summary>Copies <paramref name="segment"/> in for <paramref name="destination"/>; false when the batch has no room for it.</summary>
    public bool TryAdd(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        var room = Room(segment.Length);
        if (room.IsEmpty && !segment.IsEmpty)
        {
            return false;
        }

        segment.CopyTo(room);
        Add(destination, 0, segment.Length);
        return true;
    }

    /// <summary>Empties the batch for the next segments.</summary>
    public void Clear()
    {
        Count = 0;
        _used = 0;
        _roomLength = 0;
    }

    /// <summary>
    /// <see cref="IPacketTransport.SendBatch"/> for a transport without a call of its own: one
    /// <see cref="IPacketTransport.Send"/> per segment, in order; every segment is tried, whatever the others did.
    /// </summary>
    /// <returns>the segments dropped locally.</returns>
    /// <exception cref="PacketTransportException">the socket could not send some of them at all; the others were tried.</exception>
    public static int SendEach(IPacketTransport transport, SegmentBatch batch)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(batch);
        var dropped = 0;
        var failed = 0;
        PacketTransportException? failure = null;
        for (var i = 0; i < batch.Count; i++)
        {
            try
            {
                if (!transport.Send(batch.DestinationAt(i), batch.SegmentAt(i)))
                {
                    dropped++;
                }
            }
            catch (PacketTransportException e)
            {
                failed++;
                failure ??= e;
            }
        }

        return failure is null ? dropped : throw Failed(transport, failed, dropped, batch.Count, failure.Message, failure);
    }

    /// <summary>The exception of a batch of which <paramref name="failed"/> segments met a socket that could not send them.</summary>
    internal static PacketBatchException Failed(object transport, int failed, int dropped, int count, string firstFailure, Exception? cause = null)
    {
        var message = $"{failed} of {count} segments of a batch on {transport} could not be sent, the first: {firstFailure}";
        return cause is null ? new PacketBatchException(message, failed + dropped) : new PacketBatchException(message, failed + dropped, cause);
    }

    private Entry EntryAt(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
        return _entries[index];
    }

    private readonly record struct Entry(IpAddress Destination, int Offset, int Length);
}

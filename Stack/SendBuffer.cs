using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// The send buffer: a ring holding every byte written and not yet acknowledged, addressed by sequence number.
/// <see cref="Start"/> is the sequence number of the oldest unacknowledged data byte (SND.UNA for data),
/// <see cref="End"/> one past the last byte written. Retransmissions read any range in between, and MTCP's
/// write-buffer synchronisation (thesis §4.2.2) reads the unacknowledged bytes between two sequence numbers the
/// same way.
/// <para>
/// <see cref="Capacity"/> is a maximum, not an allocation: the ring is rented from the shared array pool when the
/// first byte is written, grows (doubling) only as unacknowledged bytes need it, and goes back to the pool as soon
/// as every byte is acknowledged. An idle connection holds no send storage at all.
/// </para>
/// </summary>
internal sealed class SendBuffer
{
    private byte[] _storage = [];

    /// <summary>Ring index of the byte at <see cref="Start"/>.</summary>
    private int _head;

    /// <summary>The ring's size when it was last returned: the size to rent when bytes come again.</summary>
    private int _lastStorageLength;

    public SendBuffer(int capacity, SeqNumber start)
    {
        Capacity = capacity;
        Start = start;
    }

    /// <summary>The most bytes this buffer holds (the configured send-buffer size).</summary>
    public int Capacity { get; }

    /// <summary>Bytes of storage now rented: zero when empty, otherwise at least <see cref="Length"/>.</summary>
    public int StorageLength => _storage.Length;

    /// <summary>Bytes held: written and not yet acknowledged.</summary>
    public int Length { get; private set; }

    public int Free => Capacity - Length;

    public SeqNumber Start { get; private set; }

    public SeqNumber End => Start + Length;

    /// <summary>Appends as much of <paramref name="data"/> as fits; returns the count appended.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        var count = Math.Min(data.Length, Free);
        if (count == 0)
        {
            return 0;
        }

        _storage = PooledRing.Ensure(_storage, ref _head, Length + count, Capacity, _lastStorageLength);
        var tail = (_head + Length) % _storage.Length;
        var first = Math.Min(count, _storage.Length - tail);
        data[..first].CopyTo(_storage.AsSpan(tail));
        data[first..count].CopyTo(_storage);
        Length += count;
        return count;
    }

    /// <summary>
    /// Copies the bytes from <paramref name="from"/> up to <paramref name="to"/> (exclusive), bounded by
    /// <paramref name="destination"/>'s length; returns the count. Both bounds must lie in [Start, End].
    /// </summary>
    public int CopyRange(SeqNumber from, SeqNumber to, Span<byte> destination)
    {
        var offset = from - Start;
        var available = to - from;
        if (offset < 0 || available < 0 || offset + available > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(from), $"range [{from}, {to}) is outside the buffered [{Start}, {End})");
        }

        var count = Math.Min(available, destination.Length);
        if (count == 0)
        {
            return 0;
        }

        var index = (_head + offset) % _storage.Length;
        var first = Math.Min(count, _storage.Length - index);
        _storage.AsSpan(index, first).CopyTo(destination);
        _storage.AsSpan(0, count - first).CopyTo(destination[first..]);
        return count;
    }

    /// <summary>
    /// The bytes in [<paramref name="from"/>, <paramref name="to"/>) as at most two spans over the ring (no copy);
    /// valid until the next call that changes the buffer (the ring may then be back in the pool). Both bounds must
    /// lie in [Start, End].
    /// </summary>
    public void GetRange(SeqNumber from, SeqNumber to, out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        var offset = from - Start;
        var count = to - from;
        if (offset < 0 || count < 0 || offset + count > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(from), $"range [{from}, {to}) is outside the buffered [{Start}, {End})");
        }

        if (count == 0)
        {
            first = default;
            second = default;
            return;
        }

        var index = (_head + offset) % _storage.Length;
        var firstLength = Math.Min(count, _storage.Length - index);
        first = _storage.AsSpan(index, firstLength);
        second = _storage.AsSpan(0, count - firstLength);
    }

    /// <summary>Releases every byte before <paramref name="ack"/> (clamped to [Start, End]); returns the count released.</summary>
    public int AcknowledgeTo(SeqNumber ack)
    {
        var count = ack - Start;
        if (count <= 0)
        {
            return 0;
        }

        count = Math.Min(count, Length);
        Start += count;
        DropFront(count);
        return count;
    }

    /// <summary>
    /// Drops up to <paramref name="count"/> bytes from the front without moving <see cref="Start"/>: the bytes after
    /// them take their sequence numbers. MTCP's β (thesis 4.2.3) removes bytes the client already has before any
    /// of them was sent. Returns the count dropped.
    /// </summary>
    public int DiscardFront(int count)
    {
        count = Math.Clamp(count, 0, Length);
        DropFront(count);
        return count;
    }

    /// <summary>Forgets every unacknowledged byte (the connection is closed: nothing will be sent again).</summary>
    public void Clear() => AcknowledgeTo(End);

    private void DropFront(int count)
    {
        Length -= count;
        if (Length == 0)
        {
            _lastStorageLength = _storage.Length;
            _storage = PooledRing.Return(_storage);
            _head = 0;
            return;
        }

        _head = (_head + count) % _storage.Length;
    }
}

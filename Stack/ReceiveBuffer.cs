using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// The receive buffer: one ring that holds, in stream order,
/// <list type="number">
/// <item>the read log: bytes the application has read but that are retained (MTCP thesis §3.3.3, §4.2.2),
/// from <see cref="RetainedStart"/> to <see cref="ReadNext"/>;</item>
/// <item>readable bytes, from <see cref="ReadNext"/> to <see cref="Next"/> (RCV.NXT for data);</item>
/// <item>out-of-order bytes beyond <see cref="Next"/>, placed where they belong and tracked by a
/// <see cref="ReassemblyRanges"/> until the hole before them fills (RFC 9293 §3.10.7.4, seventh step).</item>
/// </list>
/// Three cursors: the retention cursor only moves by <see cref="ReleaseReadLog"/>, or together with the read
/// cursor when retention is off, so the read log can be handed back without copying it first.
/// <para>
/// The window is <see cref="Size"/> minus the unread bytes: the read log does not count against it, as the thesis
/// keeps <c>read_log_mb</c> apart from the socket buffer (§4.1). An application that must read a request larger
/// than the buffer before it reaches a snapshot point would otherwise stall.
/// </para>
/// <para>
/// <see cref="Size"/> is a maximum, not an allocation. The window advertised is always <see cref="Size"/> minus the
/// unread bytes, so its right edge never moves back (RFC 9293 §3.8.6); what grows on demand is the memory behind it.
/// The ring is rented from the shared array pool when the first byte arrives, grows (doubling) only as far as the
/// bytes held need (read log, unread and out-of-order bytes), and goes back to the pool whenever it holds nothing.
/// The peer's bytes in flight, bounded by its congestion window, therefore decide the memory, as Linux's receive
/// autotuning lets them; an idle connection holds no receive storage at all.
/// </para>
/// </summary>
internal sealed class ReceiveBuffer
{
    private readonly ReassemblyRanges _outOfOrder;
    private byte[] _storage = [];

    /// <summary>Ring index of the byte at <see cref="RetainedStart"/>.</summary>
    private int _head;

    /// <summary>The ring's size when it was last returned: the size to rent when bytes come again.</summary>
    private int _lastStorageLength;

    private int _retainedLength;
    private bool _retainReadLog;
    private int _readableLength;

    public ReceiveBuffer(int size, SeqNumber next, bool retainReadLog, int maxOutOfOrderRanges = 32)
    {
        Size = size;
        _outOfOrder = new ReassemblyRanges(maxOutOfOrderRanges);
        RetainedStart = next;
        RetainReadLog = retainReadLog;
    }

    /// <summary>The receive-buffer size: unread plus out-of-order bytes never exceed it, so it bounds the window.</summary>
    public int Size { get; }

    /// <summary>Bytes of storage now rented: zero when nothing is held, otherwise at least the bytes held.</summary>
    public int StorageLength => _storage.Length;

    /// <summary>Keep bytes after they are read (the read log). Turning it off frees the whole read log at once.</summary>
    public bool RetainReadLog
    {
        get => _retainReadLog;
        set
        {
            _retainReadLog = value;
            if (!value)
            {
                Release(_retainedLength);
            }
        }
    }

    /// <summary>Sequence number of the oldest retained byte (start of the read log).</summary>
    public SeqNumber RetainedStart { get; private set; }

    /// <summary>Sequence number of the next byte the application will read.</summary>
    public SeqNumber ReadNext => RetainedStart + _retainedLength;

    /// <summary>Sequence number one past the last in-order byte received (RCV.NXT, not counting a FIN).</summary>
    public SeqNumber Next => ReadNext + _readableLength;

    public int ReadLogLength => _retainedLength;

    public int Readable => _readableLength;

    /// <summary>Room from <see cref="Next"/> onward: the receive window (RCV.WND) this buffer can honour.</summary>
    public int Window => Size - _readableLength;

    /// <summary>True while some out-of-order bytes wait for a hole to fill.</summary>
    public bool HasOutOfOrderData => _outOfOrder.Count > 0;

    /// <summary>Number of disjoint out-of-order ranges held beyond <see cref="Next"/>.</summary>
    public int OutOfOrderRangeCount => _outOfOrder.Count;

    /// <summary>The out-of-order range at <paramref name="index"/> (ascending), as sequence numbers: a SACK block (RFC 2018 §3).</summary>
    public SackBlock OutOfOrderRange(int index)
    {
        var (start, end) = _outOfOrder[index];
        return new SackBlock(Next + start, Next + end);
    }

    /// <summary>
    /// Stores the bytes of a segment starting at <paramref name="seq"/>, trimmed to the window
    /// [Next, Next + Window). Returns how far <see cref="Next"/> advanced. <paramref name="stored"/> is how many
    /// bytes were placed (new or duplicate); out-of-order bytes are dropped when the range table is full.
    /// </summary>
    public int Write(SeqNumber seq, ReadOnlySpan<byte> data, out int stored)
    {
        stored = 0;
        var offset = seq - Next;
        if (offset < 0)
        {
            if (-offset >= data.Length)
            {
                return 0;
            }

            data = data[-offset..];
            offset = 0;
        }

        var window = Window;
        if (offset >= window)
        {
            return 0;
        }

        data = data[..Math.Min(data.Length, window - offset)];
        if (data.IsEmpty)
        {
            return 0;
        }

        if (offset > 0 && !_outOfOrder.Add(offset, offset + data.Length))
        {
            return 0;
        }

        var held = _retainedLength + _readableLength;
        _storage = PooledRing.Ensure(_storage, ref _head, held + offset + data.Length, _retainedLength + Size, _lastStorageLength);

        var index = (_head + _retainedLength + _readableLength + offset) % _storage.Length;
        var first = Math.Min(data.Length, _storage.Length - index);
        data[..first].CopyTo(_storage.AsSpan(index));
        data[first..].CopyTo(_storage);
        stored = data.Length;

        var advanced = offset == 0 ? data.Length : 0;
        advanced = _outOfOrder.Advance(advanced);
        _readableLength += advanced;
        return advanced;
    }

    /// <summary>Copies readable bytes to <paramref name="destination"/> and advances the read cursor.</summary>
    public int Read(Span<byte> destination)
    {
        var count = Math.Min(destination.Length, _readableLength);
        if (count == 0)
        {
            return 0;
        }

        var index = (_head + _retainedLength) % _storage.Length;
        var first = Math.Min(count, _storage.Length - index);
        _storage.AsSpan(index, first).CopyTo(destination);
        _storage.AsSpan(0, count - first).CopyTo(destination[first..]);
        _readableLength -= count;
        _retainedLength += count;
        if (!RetainReadLog)
        {
            Release(_retainedLength);
        }
        else
        {
            ReturnStorageIfEmpty();
        }

        return count;
    }

    /// <summary>Copies the read log (bytes read since the retention cursor) without moving any cursor.</summary>
    public int CopyReadLog(Span<byte> destination)
    {
        var count = Math.Min(destination.Length, _retainedLength);
        if (count == 0)
        {
            return 0;
        }

        var first = Math.Min(count, _storage.Length - _head);
        _storage.AsSpan(_head, first).CopyTo(destination);
        _storage.AsSpan(0, count - first).CopyTo(destination[first..]);
        return count;
    }

    /// <summary>
    /// Copies the in-order bytes [<paramref name="from"/>, <paramref name="to"/>), read log and readable bytes alike,
    /// without moving any cursor (MTCP read-buffer state, thesis fig. 4.10). Both bounds must lie in
    /// [<see cref="RetainedStart"/>, <see cref="Next"/>].
    /// </summary>
    public int CopyRange(SeqNumber from, SeqNumber to, Span<byte> destination)
    {
        GetRange(from, to, out var first, out var second);
        first.CopyTo(destination);
        second.CopyTo(destination[first.Length..]);
        return first.Length + second.Length;
    }

    /// <summary>
    /// The read log as at most two spans over the ring (no copy); valid until the next call that changes the buffer.
    /// </summary>
    public void GetReadLog(out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        var firstLength = Math.Min(_retainedLength, _storage.Length - _head);
        first = _storage.AsSpan(_head, firstLength);
        second = _storage.AsSpan(0, _retainedLength - firstLength);
    }

    /// <summary>
    /// The in-order bytes in [<paramref name="from"/>, <paramref name="to"/>), anywhere between
    /// <see cref="RetainedStart"/> and <see cref="Next"/> (read log and unread bytes alike), as at most two spans over
    /// the ring (no copy); valid until the next call that changes the buffer.
    /// </summary>
    public void GetRange(SeqNumber from, SeqNumber to, out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        var offset = from - RetainedStart;
        var count = to - from;
        if (offset < 0 || count < 0 || offset + count > _retainedLength + _readableLength)
        {
            throw new ArgumentOutOfRangeException(nameof(from), $"range [{from}, {to}) is outside the held [{RetainedStart}, {Next})");
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

    /// <summary>Frees the read log up to <paramref name="upTo"/>, which must lie in [RetainedStart, ReadNext].</summary>
    public void ReleaseReadLog(SeqNumber upTo)
    {
        var count = upTo - RetainedStart;
        if (count < 0 || count > _retainedLength)
        {
            throw new ArgumentOutOfRangeException(nameof(upTo), $"{upTo} is outside the read log [{RetainedStart}, {ReadNext}]");
        }

        Release(count);
    }

    /// <summary>
    /// The connection is closed: the read log (no snapshot follows) and out-of-order bytes are of no further use, and
    /// once the application has read what is left the storage goes back to the pool.
    /// </summary>
    public void DiscardAllButUnread()
    {
        _outOfOrder.Clear();
        RetainReadLog = false;
    }

    private void Release(int count)
    {
        _retainedLength -= count;
        RetainedStart += count;
        if (!ReturnStorageIfEmpty() && count > 0)
        {
            _head = (_head + count) % _storage.Length;
        }
    }

    private bool ReturnStorageIfEmpty()
    {
        if (_retainedLength != 0 || _readableLength != 0 || _outOfOrder.Count != 0)
        {
            return false;
        }

        _lastStorageLength = _storage.Length;
        _storage = PooledRing.Return(_storage);
        _head = 0;
        return true;
    }
}

/// <summary>
/// Out-of-order byte ranges as offsets from RCV.NXT, sorted and disjoint, in a fixed array (smoltcp's
/// <c>Assembler</c> idea): bytes themselves live in the receive ring, this only remembers which are present.
/// </summary>
internal sealed class ReassemblyRanges
{
    private readonly int[] _starts;
    private readonly int[] _ends;

    public ReassemblyRanges(int capacity)
    {
        _starts = new int[capacity];
        _ends = new int[capacity];
    }

    public int Count { get; private set; }

    public void Clear() => Count = 0;

    public (int Start, int End) this[int index] => (_starts[index], _ends[index]);

    /// <summary>Records [start, end) (offsets &gt; 0 from RCV.NXT), merging neighbours; false when the table is full.</summary>
    public bool Add(int start, int end)
    {
        var i = 0;
        while (i < Count && _ends[i] < start)
        {
            i++;
        }

        var j = i;
        while (j < Count && _starts[j] <= end)
        {
            start = Math.Min(start, _starts[j]);
            end = Math.Max(end, _ends[j]);
            j++;
        }

        var merged = j - i;
        if (merged == 0)
        {
            if (Count == _starts.Length)
            {
                return false;
            }

            Array.Copy(_starts, i, _starts, i + 1, Count - i);
            Array.Copy(_ends, i, _ends, i + 1, Count - i);
            Count++;
        }
        else if (merged > 1)
        {
            Array.Copy(_starts, j, _starts, i + 1, Count - j);
            Array.Copy(_ends, j, _ends, i + 1, Count - j);
            Count -= merged - 1;
        }

        _starts[i] = start;
        _ends[i] = end;
        return true;
    }

    /// <summary>
    /// RCV.NXT moved forward by <paramref name="inOrder"/> bytes: rebases every range and absorbs those now
    /// contiguous with it. Returns the total advance, in-order bytes plus absorbed ranges.
    /// </summary>
    public int Advance(int inOrder)
    {
        if (inOrder == 0 || Count == 0)
        {
            return inOrder;
        }

        var advance = inOrder;
        var absorbed = 0;
        while (absorbed < Count && _starts[absorbed] <= advance)
        {
            advance = Math.Max(advance, _ends[absorbed]);
            absorbed++;
        }

        var remaining = Count - absorbed;
        for (var k = 0; k < remaining; k++)
        {
            _starts[k] = _starts[k + absorbed] - advance;
            _ends[k] = _ends[k + absorbed] - advance;
        }

        Count = remaining;
        return advance;
    }
}

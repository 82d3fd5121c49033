using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

[Trait("Category", "Stack")]
public sealed class ReceiveBufferTests
{
    private static readonly SeqNumber NearWrap = new(0xFFFF_FFF8);

    private static byte[] Bytes(int count, int start = 0) => Enumerable.Range(start, count).Select(i => (byte)i).ToArray();

    private static byte[] ReadAll(ReceiveBuffer buffer)
    {
        var data = new byte[buffer.Readable];
        Assert.Equal(data.Length, buffer.Read(data));
        return data;
    }

    [Fact]
    public void In_order_bytes_must_advance_next_and_become_readable()
    {
        var buffer = new ReceiveBuffer(32, NearWrap, retainReadLog: false);
        Assert.Equal(10, buffer.Write(NearWrap, Bytes(10), out var stored));
        Assert.Equal(10, stored);
        Assert.Equal(NearWrap + 10, buffer.Next);
        Assert.Equal(Bytes(10), ReadAll(buffer));
    }

    [Fact]
    public void Out_of_order_bytes_must_wait_for_the_hole()
    {
        var buffer = new ReceiveBuffer(32, NearWrap, retainReadLog: false);
        Assert.Equal(0, buffer.Write(NearWrap + 5, Bytes(5, start: 5), out _));
        Assert.True(buffer.HasOutOfOrderData);
        Assert.Equal(0, buffer.Readable);
        Assert.Equal(10, buffer.Write(NearWrap, Bytes(5), out _));
        Assert.False(buffer.HasOutOfOrderData);
        Assert.Equal(Bytes(10), ReadAll(buffer));
    }

    [Fact]
    public void Duplicate_and_overlapping_segments_must_not_change_the_stream()
    {
        var buffer = new ReceiveBuffer(32, NearWrap, retainReadLog: false);
        buffer.Write(NearWrap, Bytes(6), out _);
        Assert.Equal(4, buffer.Write(NearWrap + 2, Bytes(8, start: 2), out _));
        Assert.Equal(0, buffer.Write(NearWrap, Bytes(6), out _));
        Assert.Equal(Bytes(10), ReadAll(buffer));
    }

    [Fact]
    public void Bytes_beyond_the_window_must_be_trimmed()
    {
        var buffer = new ReceiveBuffer(8, NearWrap, retainReadLog: false);
        Assert.Equal(8, buffer.Write(NearWrap, Bytes(12), out var stored));
        Assert.Equal(8, stored);
        Assert.Equal(0, buffer.Window);
        Assert.Equal(0, buffer.Write(NearWrap + 8, Bytes(1), out _));
    }

    [Fact]
    public void Reading_without_retention_must_free_the_space()
    {
        var buffer = new ReceiveBuffer(8, NearWrap, retainReadLog: false);
        buffer.Write(NearWrap, Bytes(8), out _);
        ReadAll(buffer);
        Assert.Equal(8, buffer.Window);
        Assert.Equal(0, buffer.ReadLogLength);
        Assert.Equal(NearWrap + 8, buffer.RetainedStart);
    }

    [Fact]
    public void Reading_with_retention_must_keep_the_read_log_until_released()
    {
        var buffer = new ReceiveBuffer(8, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(6), out _);
        var first = new byte[4];
        buffer.Read(first);
        Assert.Equal(4, buffer.ReadLogLength);
        Assert.Equal(6, buffer.Window); // the read log does not count against the window
        Assert.Equal(NearWrap, buffer.RetainedStart);
        Assert.Equal(NearWrap + 4, buffer.ReadNext);

        var log = new byte[8];
        Assert.Equal(4, buffer.CopyReadLog(log));
        Assert.Equal(Bytes(4), log[..4]);

        buffer.ReleaseReadLog(NearWrap + 3);
        Assert.Equal(1, buffer.ReadLogLength);
        Assert.Equal(6, buffer.Window);
        buffer.GetReadLog(out var a, out var b);
        Assert.Equal(new byte[] { 3 }, a.ToArray().Concat(b.ToArray()));
    }

    [Fact]
    public void Read_log_larger_than_the_buffer_must_grow_the_ring_and_keep_every_byte()
    {
        var buffer = new ReceiveBuffer(8, NearWrap, retainReadLog: true);
        var stream = Bytes(40);
        var read = 0;
        buffer.Write(NearWrap + 5, stream.AsSpan(5, 3), out _); // out of order, placed before any growth
        for (var offset = 0; offset < 40;)
        {
            var length = Math.Min(3, 40 - offset);
            buffer.Write(NearWrap + offset, stream.AsSpan(offset, length), out _);
            offset += length;
            read += buffer.Read(new byte[3]);
        }

        read += buffer.Read(new byte[64]);
        Assert.Equal(40, read);
        Assert.Equal(40, buffer.ReadLogLength);
        Assert.True(buffer.StorageLength >= 48);
        var log = new byte[40];
        buffer.CopyReadLog(log);
        Assert.Equal(stream, log);
        Assert.Equal(8, buffer.Window);
    }

    [Fact]
    public void Read_log_must_survive_the_ring_edge()
    {
        var buffer = new ReceiveBuffer(16, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(12), out _);
        buffer.Read(new byte[12]);
        buffer.ReleaseReadLog(NearWrap + 10); // two bytes of log stay, at ring slots 10 and 11
        Assert.Equal(16, buffer.StorageLength); // the pool's 16-byte array: the next write wraps
        buffer.Write(NearWrap + 12, Bytes(7, start: 12), out _); // occupies ring slots 12..15, 0..2
        buffer.Read(new byte[7]);
        var log = new byte[9];
        Assert.Equal(9, buffer.CopyReadLog(log));
        Assert.Equal(Bytes(9, start: 10), log);
        buffer.GetReadLog(out var a, out var b);
        Assert.Equal(6, a.Length);
        Assert.Equal(Bytes(9, start: 10), a.ToArray().Concat(b.ToArray()));
    }

    [Fact]
    public void Range_must_span_the_read_log_and_the_unread_bytes()
    {
        var buffer = new ReceiveBuffer(16, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(14), out _);
        buffer.Read(new byte[12]);
        buffer.ReleaseReadLog(NearWrap + 12);
        Assert.Equal(16, buffer.StorageLength);
        buffer.Write(NearWrap + 14, Bytes(5, start: 14), out _); // ring slots 14,15,0,1,2
        buffer.Read(new byte[3]);
        buffer.GetRange(NearWrap + 13, NearWrap + 19, out var a, out var b);
        Assert.Equal(3, a.Length);
        Assert.Equal(Bytes(6, start: 13), a.ToArray().Concat(b.ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.GetRange(NearWrap + 11, NearWrap + 13, out _, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.GetRange(NearWrap + 13, NearWrap + 20, out _, out _));
    }

    [Fact]
    public void Releasing_beyond_the_read_cursor_must_throw()
    {
        var buffer = new ReceiveBuffer(8, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(6), out _);
        buffer.Read(new byte[2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.ReleaseReadLog(NearWrap + 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.ReleaseReadLog(NearWrap - 1));
    }

    [Fact]
    public void Randomly_ordered_duplicated_segments_must_reassemble_the_stream()
    {
        for (var seed = 1; seed <= 200; seed++)
        {
            var random = new Random(seed);
            var stream = new byte[4000];
            random.NextBytes(stream);
            var buffer = new ReceiveBuffer(1024, NearWrap, retainReadLog: false, maxOutOfOrderRanges: 8);
            var received = new List<byte>();
            var segments = new List<(int Offset, int Length)>();
            for (var offset = 0; offset < stream.Length;)
            {
                var length = Math.Min(random.Next(1, 200), stream.Length - offset);
                segments.Add((offset, length));
                offset += length;
            }

            // Deliver in random order with duplicates until everything was read; segments that fall outside the
            // window or the range table are simply offered again, as a retransmitting sender would.
            var rounds = 0;
            while (received.Count < stream.Length)
            {
                Assert.True(++rounds < 10_000, $"seed {seed}: no progress");
                var (offset, length) = segments[random.Next(segments.Count)];
                buffer.Write(NearWrap + offset, stream.AsSpan(offset, length), out _);
                received.AddRange(ReadAll(buffer));
            }

            Assert.True(stream.AsSpan().SequenceEqual(received.ToArray()), $"seed {seed}: stream differs");
        }
    }

    [Fact]
    public void Storage_must_grow_with_the_bytes_held_and_go_back_to_the_pool_when_empty()
    {
        const int Size = 256 * 1024;
        var buffer = new ReceiveBuffer(Size, NearWrap, retainReadLog: false);
        Assert.Equal(0, buffer.StorageLength);
        Assert.Equal(Size, buffer.Window); // the window is the configured maximum from the start

        buffer.Write(NearWrap, Bytes(100), out _);
        Assert.InRange(buffer.StorageLength, 100, 2 * PooledRing.MinimumStorage);

        var stream = Bytes(Size - 100, start: 100);
        buffer.Write(NearWrap + 100, stream, out _);
        Assert.InRange(buffer.StorageLength, Size, 2 * Size);
        Assert.Equal(0, buffer.Window);

        var read = new byte[Size];
        Assert.Equal(Size, buffer.Read(read));
        Assert.Equal(Bytes(100).Concat(stream), read);
        Assert.Equal(0, buffer.StorageLength);
        Assert.Equal(Size, buffer.Window);
    }

    [Fact]
    public void Out_of_order_bytes_must_grow_the_storage_to_their_offset_and_keep_it_until_the_hole_fills()
    {
        var buffer = new ReceiveBuffer(64 * 1024, NearWrap, retainReadLog: false);
        buffer.Write(NearWrap + 40_000, Bytes(1000, start: 40), out _);
        Assert.InRange(buffer.StorageLength, 41_000, 64 * 1024);
        Assert.True(buffer.HasOutOfOrderData);

        buffer.Write(NearWrap, Bytes(40_000), out _);
        Assert.Equal(41_000, buffer.Readable);
        Assert.Equal(41_000, buffer.Read(new byte[64 * 1024]));
        Assert.Equal(0, buffer.StorageLength);
    }

    [Fact]
    public void A_retained_read_log_must_hold_storage_until_it_is_released()
    {
        var buffer = new ReceiveBuffer(1024, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(500), out _);
        buffer.Read(new byte[500]);
        Assert.NotEqual(0, buffer.StorageLength);
        buffer.ReleaseReadLog(NearWrap + 500);
        Assert.Equal(0, buffer.StorageLength);
    }

    [Fact]
    public void Discarding_at_close_must_keep_only_the_unread_bytes()
    {
        var buffer = new ReceiveBuffer(1024, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(300), out _);
        buffer.Read(new byte[200]);
        buffer.Write(NearWrap + 400, Bytes(10), out _);
        buffer.DiscardAllButUnread();
        Assert.False(buffer.HasOutOfOrderData);
        Assert.Equal(0, buffer.ReadLogLength);
        Assert.Equal(NearWrap + 300, buffer.Next);
        var rest = new byte[100];
        Assert.Equal(100, buffer.Read(rest));
        Assert.Equal(Bytes(100, start: 200), rest);
        Assert.Equal(0, buffer.StorageLength);
    }
}

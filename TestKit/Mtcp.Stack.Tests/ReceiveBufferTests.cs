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
        var buffer = new ReceiveBuffer(8, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(6), out _);
        buffer.Read(new byte[6]);
        buffer.ReleaseReadLog(NearWrap + 6);
        buffer.Write(NearWrap + 6, Bytes(7, start: 6), out _); // occupies ring slots 6,7,0..4
        buffer.Read(new byte[7]);
        var log = new byte[7];
        Assert.Equal(7, buffer.CopyReadLog(log));
        Assert.Equal(Bytes(7, start: 6), log);
        buffer.GetReadLog(out var a, out var b);
        Assert.Equal(2, a.Length);
        Assert.Equal(Bytes(7, start: 6), a.ToArray().Concat(b.ToArray()));
    }

    [Fact]
    public void Range_must_span_the_read_log_and_the_unread_bytes()
    {
        var buffer = new ReceiveBuffer(8, NearWrap, retainReadLog: true);
        buffer.Write(NearWrap, Bytes(6), out _);
        buffer.Read(new byte[4]);
        buffer.ReleaseReadLog(NearWrap + 4);
        buffer.Write(NearWrap + 6, Bytes(5, start: 6), out _); // ring slots 6,7,0,1,2
        buffer.Read(new byte[3]);
        buffer.GetRange(NearWrap + 5, NearWrap + 11, out var a, out var b);
        Assert.Equal(Bytes(6, start: 5), a.ToArray().Concat(b.ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.GetRange(NearWrap + 3, NearWrap + 5, out _, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.GetRange(NearWrap + 5, NearWrap + 12, out _, out _));
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
}

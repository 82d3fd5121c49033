using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

[Trait("Category", "Stack")]
public sealed class SendBufferTests
{
    private static readonly SeqNumber NearWrap = new(0xFFFF_FFFA);

    private static byte[] Bytes(int count, int start = 0) => Enumerable.Range(start, count).Select(i => (byte)i).ToArray();

    [Fact]
    public void Write_must_accept_only_what_fits()
    {
        var buffer = new SendBuffer(10, NearWrap);
        Assert.Equal(10, buffer.Write(Bytes(15)));
        Assert.Equal(0, buffer.Write(Bytes(1)));
        Assert.Equal(NearWrap + 10, buffer.End);
    }

    [Fact]
    public void CopyRange_must_read_across_the_ring_edge_and_the_sequence_wrap()
    {
        var buffer = new SendBuffer(16, NearWrap);
        buffer.Write(Bytes(14));
        Assert.Equal(12, buffer.AcknowledgeTo(NearWrap + 12));
        Assert.Equal(16, buffer.StorageLength);
        buffer.Write(Bytes(7, start: 14)); // ring now wraps: bytes 12..20 in storage order 12..15 | 16..20
        var copy = new byte[9];
        Assert.Equal(9, buffer.CopyRange(NearWrap + 12, NearWrap + 21, copy));
        Assert.Equal(Bytes(9, start: 12), copy);
        Assert.True(buffer.End.Value < NearWrap.Value, "the end crossed 2^32");
    }

    [Fact]
    public void CopyRange_must_stop_at_the_destination_length()
    {
        var buffer = new SendBuffer(10, NearWrap);
        buffer.Write(Bytes(10));
        var copy = new byte[3];
        Assert.Equal(3, buffer.CopyRange(NearWrap + 2, NearWrap + 10, copy));
        Assert.Equal(Bytes(3, start: 2), copy);
    }

    [Fact]
    public void AcknowledgeTo_must_ignore_old_acks_and_clamp_to_the_end()
    {
        var buffer = new SendBuffer(10, NearWrap);
        buffer.Write(Bytes(4));
        Assert.Equal(0, buffer.AcknowledgeTo(NearWrap - 3));
        Assert.Equal(4, buffer.AcknowledgeTo(NearWrap + 5)); // +5 covers a FIN after the 4 bytes
        Assert.Equal(0, buffer.Length);
        Assert.Equal(NearWrap + 4, buffer.Start);
    }

    [Fact]
    public void CopyRange_outside_the_unacknowledged_bytes_must_throw()
    {
        var buffer = new SendBuffer(10, NearWrap);
        buffer.Write(Bytes(4));
        buffer.AcknowledgeTo(NearWrap + 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyRange(NearWrap + 1, NearWrap + 3, new byte[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyRange(NearWrap + 2, NearWrap + 5, new byte[4]));
    }

    [Fact]
    public void Storage_must_grow_with_the_unacknowledged_bytes_and_go_back_to_the_pool_when_all_are_acknowledged()
    {
        const int Capacity = 256 * 1024;
        var buffer = new SendBuffer(Capacity, NearWrap);
        Assert.Equal(0, buffer.StorageLength);
        Assert.Equal(Capacity, buffer.Free);

        buffer.Write(Bytes(100));
        Assert.InRange(buffer.StorageLength, 100, 2 * PooledRing.MinimumStorage);
        var grown = Bytes(Capacity);
        Assert.Equal(Capacity - 100, buffer.Write(grown));
        Assert.InRange(buffer.StorageLength, Capacity, 2 * Capacity);

        var copy = new byte[Capacity];
        Assert.Equal(Capacity, buffer.CopyRange(NearWrap, NearWrap + Capacity, copy));
        Assert.Equal(Bytes(100).Concat(grown[..(Capacity - 100)]), copy);

        buffer.AcknowledgeTo(NearWrap + Capacity - 1);
        Assert.NotEqual(0, buffer.StorageLength);
        buffer.AcknowledgeTo(NearWrap + Capacity);
        Assert.Equal(0, buffer.StorageLength);
        Assert.Equal(NearWrap + Capacity, buffer.End);
    }

    [Fact]
    public void Clear_must_forget_every_byte_and_keep_the_end()
    {
        var buffer = new SendBuffer(1024, NearWrap);
        buffer.Write(Bytes(300));
        buffer.AcknowledgeTo(NearWrap + 100);
        buffer.Clear();
        Assert.Equal(0, buffer.Length);
        Assert.Equal(0, buffer.StorageLength);
        Assert.Equal(NearWrap + 300, buffer.Start);
        Assert.Equal(NearWrap + 300, buffer.End);
    }

    [Fact]
    public void An_emptied_ring_must_be_rented_again_at_its_last_size_so_a_bulk_writer_does_not_regrow_it()
    {
        var buffer = new SendBuffer(256 * 1024, NearWrap);
        buffer.Write(Bytes(100 * 1024));
        var grown = buffer.StorageLength;
        buffer.AcknowledgeTo(buffer.End);
        Assert.Equal(0, buffer.StorageLength);

        buffer.Write(Bytes(100));
        Assert.Equal(grown, buffer.StorageLength);
    }
}

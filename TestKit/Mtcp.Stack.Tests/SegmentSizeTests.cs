using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Segments are cut from the send buffer, not from each write (RFC 9293 §3.7.4): a stream of writes goes out in
/// full-sized segments. The fixture's MSS is 1000 bytes; the tests count the sizes of what the engine emits.
/// </summary>
[Trait("Category", "Stack")]
public sealed class SegmentSizeTests
{
    private const int Mss = 1000;

    private static byte[] Bytes(int count, int start) => Enumerable.Range(start, count).Select(i => (byte)(i * 7)).ToArray();

    /// <summary>
    /// Twenty writes of 1.5 segments each, the peer acknowledging everything after every second write; returns the
    /// payload sizes sent, after checking that they carry the written bytes in order.
    /// </summary>
    private static List<int> StreamOfWrites(bool nagle)
    {
        var peer = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { Nagle = nagle });
        var sent = new List<byte>();
        var sizes = new List<int>();
        void Collect()
        {
            foreach (var segment in peer.Drain().Where(s => s.Payload.Length > 0))
            {
                sizes.Add(segment.Payload.Length);
                sent.AddRange(segment.Payload);
            }
        }

        for (var write = 0; write < 20; write++)
        {
            Assert.Equal(1500, peer.Connection.Write(Bytes(1500, write * 1500)));
            Collect();
            if (write % 2 == 1)
            {
                peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, peer.Connection.SendMax));
                Collect();
            }
        }

        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, peer.Connection.SendMax));
        Collect();
        Assert.Equal(Bytes(30_000, 0), sent);
        return sizes;
    }

    [Fact]
    public void Nagle_must_send_a_stream_of_writes_in_full_segments_with_at_most_one_short_segment_per_acknowledgment()
    {
        var sizes = StreamOfWrites(nagle: true);

        // Eleven acknowledgments release at most eleven short segments; the twenty writes' tails fill the rest.
        Assert.InRange(sizes.Count(size => size < Mss), 1, 11);
        Assert.InRange(sizes.Count(size => size == Mss), 25, 30);
    }

    [Fact]
    public void Without_nagle_each_write_must_end_at_once_in_a_short_segment()
    {
        // TCP_NODELAY keeps its meaning: what is queued goes now, its last bytes in a short segment.
        var sizes = StreamOfWrites(nagle: false);
        Assert.Equal(20, sizes.Count(size => size == 500));
        Assert.Equal(20, sizes.Count(size => size == Mss));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_write_larger_than_the_send_buffer_must_go_out_in_full_segments_but_its_last(bool nagle)
    {
        // The buffer holds 2.5 segments: each time an ACK frees room the rest of the write comes in, so a short
        // segment at the end of the queue is not the end of the write and waits to be filled.
        var peer = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { Nagle = nagle, SendBufferSize = 2500 });
        var data = Bytes(10_500, 0);
        var written = peer.Connection.Write(data);
        var sent = new List<byte>();
        var sizes = new List<int>();
        for (var round = 0; round < 100 && sent.Count < data.Length; round++)
        {
            foreach (var segment in peer.Drain().Where(s => s.Payload.Length > 0))
            {
                sizes.Add(segment.Payload.Length);
                sent.AddRange(segment.Payload);
            }

            // The peer acknowledges the oldest segment only, so each ACK frees one segment's room.
            var next = SeqNumber.Min(peer.Connection.SendUnacknowledged + Mss, peer.Connection.SendNext);
            peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, next));
            peer.Events();
            if (written < data.Length)
            {
                written += peer.Connection.Write(data.AsSpan(written));
            }
        }

        Assert.Equal(data, sent);
        Assert.All(sizes[..^1], size => Assert.Equal(Mss, size));
        Assert.Equal(500, sizes[^1]);
    }
}

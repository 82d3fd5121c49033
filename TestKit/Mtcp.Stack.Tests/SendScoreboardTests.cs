using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>The sender's scoreboard (RFC 6675 §3) and RACK's bookkeeping (RFC 8985 §6.2), without a connection.</summary>
[Trait("Category", "Stack")]
public sealed class SendScoreboardTests
{
    private static readonly SeqNumber Start = new(0xFFFF_FE00);
    private static readonly Instant T0 = Instant.FromMilliseconds(1000);
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    /// <summary>Ten 100-byte segments sent at T0, crossing the 2^32 wrap.</summary>
    private static SendScoreboard TenSegments()
    {
        var board = new SendScoreboard();
        for (var i = 0; i < 10; i++)
        {
            board.OnSent(Start + (i * 100), Start + ((i + 1) * 100), T0);
        }

        return board;
    }

    private static SackBlockList Blocks(params (int From, int To)[] ranges)
    {
        var list = default(SackBlockList);
        foreach (var (from, to) in ranges)
        {
            list = list.Add(new SackBlock(Start + from, Start + to));
        }

        return list;
    }

    [Fact]
    public void Sack_blocks_must_mark_whole_segments_and_reduce_pipe()
    {
        var board = TenSegments();
        Assert.Equal(1000, board.Pipe);
        var sacked = board.ApplySack(Blocks((300, 500), (700, 750)), Start, Start + 1000, T0 + (10 * Ms), out var dsack);
        Assert.False(dsack);
        Assert.Equal(200, sacked); // [700, 750) covers no whole segment
        Assert.Equal(2, board.SackedSegments);
        Assert.Equal(800, board.Pipe);

        // The same blocks again change nothing.
        Assert.Equal(0, board.ApplySack(Blocks((300, 500)), Start, Start + 1000, T0 + (11 * Ms), out _));
    }

    [Fact]
    public void Cumulative_ack_must_drop_segments_and_count_only_bytes_not_sacked_before()
    {
        var board = TenSegments();
        board.ApplySack(Blocks((100, 200)), Start, Start + 1000, T0 + (10 * Ms), out _);
        var delivered = board.OnCumulativeAck(Start + 250, T0 + (12 * Ms));
        Assert.Equal(100 + 50, delivered); // segment 0 and half of segment 2; segment 1 was SACKed already
        Assert.Equal(8, board.Count);
        Assert.Equal(0, board.SackedSegments);
        Assert.Equal(Start + 250, board[0].Start);
        Assert.Equal(750, board.Pipe);
    }

    [Fact]
    public void Segments_sent_before_a_delivered_one_must_be_lost_once_their_reorder_window_passed()
    {
        var board = new SendScoreboard();
        board.OnSent(Start, Start + 100, T0);
        board.OnSent(Start + 100, Start + 200, T0 + (1 * Ms));
        board.OnSent(Start + 200, Start + 300, T0 + (2 * Ms));

        // The third segment is SACKed 20 ms after it was sent: RACK.rtt = 20 ms.
        var now = T0 + (22 * Ms);
        board.ApplySack(Blocks((200, 300)), Start, Start + 300, now, out _);
        Assert.Equal(20 * Ms, board.RackRtt);

        // With a 5 ms reorder window the first is due at T0 + 25 ms, the second at T0 + 26 ms.
        var wait = board.DetectLoss(now, 5 * Ms, out var lost);
        Assert.Equal(0, lost);
        Assert.Equal(4 * Ms, wait);
        Assert.Null(board.DetectLoss(T0 + (26 * Ms), 5 * Ms, out lost));
        Assert.Equal(2, lost);
        Assert.Equal(0, board.Pipe);
        Assert.Equal(0, board.FirstLost());

        // A retransmission puts the segment back in flight with its new send time.
        board.OnSent(Start, Start + 100, T0 + (30 * Ms));
        Assert.Equal(100, board.Pipe);
        Assert.True(board[0].Retransmitted);
        Assert.Equal(1, board.FirstLost());
    }

    [Fact]
    public void Reorder_window_must_be_zero_at_dup_thresh_and_grow_with_d_sacks()
    {
        var board = TenSegments();
        board.ApplySack(Blocks((100, 200)), Start, Start + 1000, T0 + (40 * Ms), out _);
        Assert.Equal(10 * Ms, board.ReorderWindow(inRecovery: false, smoothedRtt: 40 * Ms)); // min_RTT / 4
        Assert.Equal(TimeSpan.Zero, board.ReorderWindow(inRecovery: true, smoothedRtt: 40 * Ms));
        board.ApplySack(Blocks((100, 400)), Start, Start + 1000, T0 + (41 * Ms), out _);
        Assert.Equal(TimeSpan.Zero, board.ReorderWindow(inRecovery: false, smoothedRtt: 40 * Ms));

        // A D-SACK (RFC 2883: the first block below SND.UNA) says a retransmission was spurious: the window grows.
        board.ApplySack(Blocks((-100, 0), (100, 400)), Start, Start + 1000, T0 + (42 * Ms), out var dsack);
        Assert.True(dsack);
        Assert.Equal(2, board.ReorderWindowMultiplier);
    }

    [Fact]
    public void Segment_delivered_below_the_highest_delivered_must_count_as_reordering()
    {
        var board = TenSegments();
        board.ApplySack(Blocks((500, 600)), Start, Start + 1000, T0 + (10 * Ms), out _);
        Assert.False(board.ReorderingSeen);
        board.ApplySack(Blocks((200, 300), (500, 600)), Start, Start + 1000, T0 + (11 * Ms), out _);
        Assert.True(board.ReorderingSeen);
    }

    [Fact]
    public void Timeout_must_mark_everything_not_sacked_lost_and_forget_sacks_the_receiver_reneged_on()
    {
        var board = TenSegments();
        board.ApplySack(Blocks((300, 500)), Start, Start + 1000, T0 + (10 * Ms), out _);
        board.OnRetransmissionTimeout();
        Assert.Equal(0, board.Pipe);
        Assert.Equal(2, board.SackedSegments);
        Assert.False(board[3].Lost);

        // A receiver that SACKed the segment at SND.UNA and never acknowledged it has reneged (RFC 2018 §8).
        var reneged = TenSegments();
        reneged.ApplySack(Blocks((0, 100)), Start, Start + 1000, T0 + (10 * Ms), out _);
        reneged.OnRetransmissionTimeout();
        Assert.Equal(0, reneged.SackedSegments);
        Assert.True(reneged[0].Lost);
    }

    [Fact]
    public void Blocks_outside_the_window_must_be_ignored()
    {
        var board = TenSegments();
        Assert.Equal(0, board.ApplySack(Blocks((900, 1100)), Start, Start + 1000, T0, out _));
        Assert.Equal(0, board.ApplySack(Blocks((500, 400)), Start, Start + 1000, T0, out _));
        Assert.Equal(0, board.SackedSegments);
    }
}

using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

[Trait("Category", "Stack")]
public sealed class CongestionControlTests
{
    private const int Mss = 1000;
    private static readonly SeqNumber Iss = new(0xFFFF_FFF0);

    private static CongestionControl Create() => new(Mss, 10, Iss, new NewRenoAvoidance());

    [Fact]
    public void Initial_window_must_be_ten_segments()
    {
        var cc = Create();
        Assert.Equal(10 * Mss, cc.Window);
        Assert.False(cc.InFastRecovery);
    }

    [Fact]
    public void Slow_start_must_grow_by_at_most_one_smss_per_ack()
    {
        var cc = Create();
        cc.OnNewAck(Iss + 2000, 2000, 0);
        Assert.Equal(11 * Mss, cc.Window);
        cc.OnNewAck(Iss + 2500, 500, 0);
        Assert.Equal((11 * Mss) + 500, cc.Window);
    }

    [Fact]
    public void Congestion_avoidance_must_grow_about_one_smss_per_window()
    {
        var cc = Create();
        EnterRecoveryAndExit(cc);
        var start = cc.Window;
        Assert.True(start >= cc.SlowStartThreshold);
        var acksPerWindow = start / Mss;
        for (var i = 0; i < acksPerWindow; i++)
        {
            cc.OnNewAck(Iss + 100_000 + (i * Mss), Mss, start);
        }

        Assert.InRange(cc.Window - start, Mss * 8 / 10, Mss);
    }

    [Fact]
    public void Third_duplicate_ack_must_enter_fast_recovery_with_half_the_flight()
    {
        var cc = Create();
        var ack = Iss + 1;
        Assert.Equal(CongestionSignal.None, cc.OnDuplicateAck(ack, 10 * Mss, Iss + 1 + (10 * Mss)));
        Assert.Equal(CongestionSignal.None, cc.OnDuplicateAck(ack, 10 * Mss, Iss + 1 + (10 * Mss)));
        Assert.Equal(CongestionSignal.RetransmitFirstUnacknowledged, cc.OnDuplicateAck(ack, 10 * Mss, Iss + 1 + (10 * Mss)));
        Assert.True(cc.InFastRecovery);
        Assert.Equal(5 * Mss, cc.SlowStartThreshold);
        Assert.Equal(8 * Mss, cc.Window); // ssthresh + 3 * SMSS (RFC 5681 §3.2 step 3)
        Assert.Equal(Iss + 1 + (10 * Mss), cc.Recover);
    }

    [Fact]
    public void Further_duplicate_acks_must_inflate_the_window()
    {
        var cc = Create();
        EnterRecovery(cc);
        cc.OnDuplicateAck(Iss + 1, 10 * Mss, Iss + 1 + (10 * Mss));
        Assert.Equal(9 * Mss, cc.Window);
    }

    [Fact]
    public void Partial_ack_must_ask_for_the_next_hole_and_deflate()
    {
        var cc = Create();
        EnterRecovery(cc);
        var signal = cc.OnNewAck(Iss + 1 + (2 * Mss), 2 * Mss, 8 * Mss);
        Assert.Equal(CongestionSignal.RetransmitFirstUnacknowledged, signal);
        Assert.True(cc.InFastRecovery);
        Assert.Equal((8 * Mss) - (2 * Mss) + Mss, cc.Window); // RFC 6582 §3.2 step 4
    }

    [Fact]
    public void Full_ack_must_end_recovery_with_window_at_most_ssthresh()
    {
        var cc = Create();
        EnterRecovery(cc);
        var signal = cc.OnNewAck(Iss + 1 + (10 * Mss), 10 * Mss, 0);
        Assert.Equal(CongestionSignal.None, signal);
        Assert.False(cc.InFastRecovery);
        Assert.Equal(2 * Mss, cc.Window); // min(ssthresh, max(FlightSize, SMSS) + SMSS) with nothing in flight
    }

    [Fact]
    public void Timeout_must_collapse_to_one_segment_and_halve_the_threshold()
    {
        var cc = Create();
        cc.OnRetransmissionTimeout(8 * Mss, Iss + 1 + (8 * Mss));
        Assert.Equal(Mss, cc.Window);
        Assert.Equal(4 * Mss, cc.SlowStartThreshold);
        Assert.False(cc.InFastRecovery);
    }

    [Fact]
    public void Threshold_must_never_fall_below_two_segments()
    {
        var cc = Create();
        cc.OnRetransmissionTimeout(Mss, Iss + 1 + Mss);
        Assert.Equal(2 * Mss, cc.SlowStartThreshold);
    }

    [Fact]
    public void Duplicate_acks_below_recover_after_a_timeout_must_not_start_fast_retransmit()
    {
        var cc = Create();
        var highest = Iss + 1 + (10 * Mss);
        cc.OnRetransmissionTimeout(10 * Mss, highest);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(CongestionSignal.None, cc.OnDuplicateAck(Iss + 1 + Mss, 9 * Mss, highest));
        }

        Assert.False(cc.InFastRecovery); // RFC 6582 §4: avoids a second reduction for the same loss
    }

    [Fact]
    public void First_two_duplicate_acks_must_each_allow_one_more_segment()
    {
        var cc = Create();
        Assert.Equal(10 * Mss, cc.SendAllowance);
        cc.OnDuplicateAck(Iss + 1, 10 * Mss, Iss + 1 + (10 * Mss));
        Assert.Equal(11 * Mss, cc.SendAllowance);
        cc.OnDuplicateAck(Iss + 1, 11 * Mss, Iss + 1 + (11 * Mss));
        Assert.Equal(12 * Mss, cc.SendAllowance);
        Assert.Equal(10 * Mss, cc.Window); // limited transmit leaves cwnd alone (RFC 3042 §2)
    }

    [Fact]
    public void Duplicate_acks_below_recover_after_small_ack_advances_must_start_fast_retransmit()
    {
        var cc = Create();
        var highest = Iss + 1 + (20 * Mss);
        cc.OnRetransmissionTimeout(20 * Mss, highest);
        cc.OnNewAck(Iss + 1 + Mss, Mss, 19 * Mss);
        cc.OnNewAck(Iss + 1 + (2 * Mss), Mss, 18 * Mss);
        for (var i = 0; i < 2; i++)
        {
            cc.OnDuplicateAck(Iss + 1 + (2 * Mss), 18 * Mss, highest);
        }

        // RFC 6582 §4.1: the last advance was one SMSS, so these duplicates report a fresh loss.
        Assert.Equal(CongestionSignal.RetransmitFirstUnacknowledged, cc.OnDuplicateAck(Iss + 1 + (2 * Mss), 18 * Mss, highest));
    }

    [Fact]
    public void Duplicate_acks_below_recover_after_a_large_ack_jump_must_not_start_fast_retransmit()
    {
        var cc = Create();
        var highest = Iss + 1 + (20 * Mss);
        cc.OnRetransmissionTimeout(20 * Mss, highest);
        cc.OnNewAck(Iss + 1 + Mss, Mss, 19 * Mss);
        cc.OnNewAck(Iss + 1 + (12 * Mss), 11 * Mss, 8 * Mss);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(CongestionSignal.None, cc.OnDuplicateAck(Iss + 1 + (12 * Mss), 8 * Mss, highest));
        }
    }

    private static void EnterRecovery(CongestionControl cc)
    {
        for (var i = 0; i < 3; i++)
        {
            cc.OnDuplicateAck(Iss + 1, 10 * Mss, Iss + 1 + (10 * Mss));
        }
    }

    private static void EnterRecoveryAndExit(CongestionControl cc)
    {
        EnterRecovery(cc);
        cc.OnNewAck(Iss + 1 + (10 * Mss), 10 * Mss, 10 * Mss);
    }
}

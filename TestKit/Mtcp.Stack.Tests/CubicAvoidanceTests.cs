using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>CUBIC (RFC 9438) held against its formulas: the reduction (§4.6, §4.7), K and W_cubic (§4.2), growth (§4.4, §4.5).</summary>
[Trait("Category", "Stack")]
public sealed class CubicAvoidanceTests
{
    private const int Mss = 1000;
    private static readonly Instant T0 = Instant.FromMilliseconds(10_000);
    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(100);

    [Fact]
    public void Loss_must_keep_beta_of_the_window_and_fast_convergence_must_lower_w_max()
    {
        var cubic = new CubicAvoidance();
        Assert.Equal(70_000, cubic.ReduceAfterLoss(100_000, 90_000, Mss));
        Assert.Equal(100, cubic.WMax);

        // §4.7: a loss below the previous W_max sets W_max = cwnd (1 + β) / 2.
        Assert.Equal(56_000, cubic.ReduceAfterLoss(80_000, 80_000, Mss));
        Assert.Equal(80 * (1 + CubicAvoidance.Beta) / 2, cubic.WMax, 9);
        Assert.Equal(2 * Mss, cubic.ReduceAfterLoss(2 * Mss, Mss, Mss)); // never below two segments
    }

    [Fact]
    public void Window_must_follow_w_cubic_back_to_w_max_at_k_and_beyond_it()
    {
        var cubic = new CubicAvoidance();
        var window = cubic.ReduceAfterLoss(100_000, 100_000, Mss);

        // One ACK per segment, a window's worth per RTT.
        var now = T0;
        window = cubic.Grow(window, Mss, Mss, now, Rtt);
        var k = Math.Cbrt(100 * (1 - CubicAvoidance.Beta) / CubicAvoidance.C); // §4.2 eq. 2: K = cbrt(W_max (1 - β) / C)
        Assert.Equal(k, cubic.K, 6);

        var rounds = new List<(double T, double Window)>();
        while ((now - T0).TotalSeconds < 2 * k)
        {
            var acks = window / Mss;
            for (var i = 0; i < acks; i++)
            {
                now += Rtt / acks;
                window = cubic.Grow(window, Mss, Mss, now, Rtt);
            }

            rounds.Add(((now - T0).TotalSeconds, (double)window / Mss));
        }

        // Each round ends near W_cubic(t) (the window aims one RTT ahead, so it leads by at most one RTT's growth, and
        // the per-ACK steps of §4.4 round that by a segment or two).
        foreach (var (t, w) in rounds)
        {
            var lower = cubic.WCubic(t) - 1;
            var upper = (cubic.WCubic(t + Rtt.TotalSeconds) * 1.02) + 1;
            Assert.True(w >= lower && w <= upper, $"t={t:F2}s: window {w:F1} segments outside [{lower:F1}, {upper:F1}]");
        }

        // At K the window is back at W_max, with the growth slowing before it (concave) and speeding up after (convex).
        var atK = rounds.MinBy(r => Math.Abs(r.T - k));
        Assert.InRange(atK.Window, 99, 102);
        var growth = rounds.Zip(rounds.Skip(1), (a, b) => (a.T, Delta: b.Window - a.Window)).ToList();
        var early = growth.First(g => g.T > 0.5).Delta;
        var nearK = growth.MinBy(g => Math.Abs(g.T - k)).Delta;
        var late = growth.Last().Delta;
        Assert.True(early > nearK && late > nearK, $"growth per RTT: {early:F2} early, {nearK:F2} at K, {late:F2} late");
    }

    [Fact]
    public void Reno_friendly_estimate_must_win_when_w_cubic_is_slower()
    {
        // A small W_max and a long RTT: Reno's estimate outgrows the cubic curve (§4.3).
        var cubic = new CubicAvoidance();
        var window = cubic.ReduceAfterLoss(10 * Mss, 10 * Mss, Mss);
        var now = T0;
        var longRtt = TimeSpan.FromMilliseconds(10);
        for (var round = 0; round < 30; round++)
        {
            var acks = window / Mss;
            for (var i = 0; i < acks; i++)
            {
                now += longRtt / acks;
                window = cubic.Grow(window, Mss, Mss, now, longRtt);
            }
        }

        Assert.True(cubic.WEst > cubic.WCubic((now - T0).TotalSeconds), "W_est must lead W_cubic here");
        Assert.Equal((int)Math.Ceiling(cubic.WEst * Mss), window);
    }

    [Fact]
    public void Timeout_must_start_the_next_epoch_at_the_present_window_with_k_zero()
    {
        var cubic = new CubicAvoidance();
        cubic.ReduceAfterLoss(100_000, 100_000, Mss);
        cubic.OnRetransmissionTimeout();
        cubic.Grow(20 * Mss, Mss, Mss, T0, Rtt);
        Assert.Equal(0, cubic.K);
        Assert.Equal(20, cubic.WMax);
    }

    [Fact]
    public void Connection_must_run_cubic_by_default_and_newreno_when_configured()
    {
        Assert.Equal(CongestionControlAlgorithm.Cubic, TcpConfig.Default.CongestionControl);
        Assert.Equal(7700, SlowStartThresholdAfterThreeDuplicates(CongestionControlAlgorithm.Cubic)); // β × cwnd (11 segments after the first ACK)
        Assert.Equal(2500, SlowStartThresholdAfterThreeDuplicates(CongestionControlAlgorithm.NewReno)); // half the 5000 in flight
    }

    private static int SlowStartThresholdAfterThreeDuplicates(CongestionControlAlgorithm algorithm)
    {
        var peer = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { CongestionControl = algorithm });
        peer.Connection.Write(new byte[6000]);
        peer.Drain();
        var una = ScriptedPeer.LocalIss + 1001;
        for (var i = 0; i < 4; i++)
        {
            peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, una));
            peer.Drain();
        }

        Assert.True(peer.Connection.InFastRecovery);
        return peer.Connection.SlowStartThreshold;
    }
}

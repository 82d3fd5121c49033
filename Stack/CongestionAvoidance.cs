namespace Mtcp.Stack;

/// <summary>Which congestion avoidance a connection runs (<see cref="TcpConfig.CongestionControl"/>).</summary>
public enum CongestionControlAlgorithm
{
    /// <summary>CUBIC (RFC 9438), Linux's default: a window that grows with the time since the last loss.</summary>
    Cubic,

    /// <summary>NewReno (RFC 5681 §3.1, RFC 6582): one segment per RTT, halved at a loss.</summary>
    NewReno,
}

/// <summary>
/// The two decisions that tell congestion-control algorithms apart, for <see cref="CongestionControl"/>: how cwnd
/// grows in congestion avoidance, and where ssthresh falls at a congestion event. Slow start, recovery and the loss
/// window after a timeout are shared (RFC 5681, RFC 9438 §4.6-4.8 keep them).
/// </summary>
internal interface ICongestionAvoidance
{
    /// <summary>ssthresh after a congestion event with cwnd <paramref name="window"/> and <paramref name="flightSize"/> bytes outstanding.</summary>
    int ReduceAfterLoss(int window, int flightSize, int mss);

    /// <summary>cwnd after an ACK of <paramref name="newlyAcked"/> bytes in congestion avoidance (cwnd &gt;= ssthresh).</summary>
    int Grow(int window, int newlyAcked, int mss, Instant now, TimeSpan? smoothedRtt);

    /// <summary>The retransmission timer expired (after <see cref="ReduceAfterLoss"/>); cwnd is one segment now.</summary>
    void OnRetransmissionTimeout();

    /// <summary>Creates the avoidance <paramref name="algorithm"/> names.</summary>
    static ICongestionAvoidance Create(CongestionControlAlgorithm algorithm) =>
        algorithm == CongestionControlAlgorithm.NewReno ? new NewRenoAvoidance() : new CubicAvoidance();
}

/// <summary>NewReno's avoidance: about one SMSS per RTT (RFC 5681 §3.1 eq. (3)), ssthresh = FlightSize / 2 (eq. (4)).</summary>
internal sealed class NewRenoAvoidance : ICongestionAvoidance
{
    public int ReduceAfterLoss(int window, int flightSize, int mss) => Math.Max(flightSize / 2, 2 * mss);

    public int Grow(int window, int newlyAcked, int mss, Instant now, TimeSpan? smoothedRtt) =>
        window + Math.Max(1, (int)((long)mss * mss / window));

    public void OnRetransmissionTimeout()
    {
    }
}

/// <summary>
/// CUBIC (RFC 9438): after a congestion event the window follows W_cubic(t) = C (t - K)^3 + W_max (§4.2), concave up
/// to the window where the loss happened and convex beyond it, never slower than the Reno-friendly estimate W_est
/// (§4.3). Windows are counted in segments and times in seconds, as the RFC writes them.
/// </summary>
internal sealed class CubicAvoidance : ICongestionAvoidance
{
    /// <summary>C (RFC 9438 §5): 0.4 segments per second cubed.</summary>
    public const double C = 0.4;

    /// <summary>β_cubic (RFC 9438 §4.6): the window keeps 70 % at a loss.</summary>
    public const double Beta = 0.7;

    /// <summary>α_cubic (RFC 9438 §4.3): 3 (1 - β) / (1 + β), Reno's average rate at CUBIC's β.</summary>
    public static readonly double AlphaCubic = 3 * (1 - Beta) / (1 + Beta);

    private Instant? _epochStart;
    private bool _afterTimeout;

    /// <summary>W_max: the window, in segments, just before the last reduction (fast convergence may lower it, §4.7).</summary>
    public double WMax { get; private set; }

    /// <summary>K: seconds from the start of the epoch until W_cubic is back at W_max (§4.2).</summary>
    public double K { get; private set; }

    /// <summary>W_est: the Reno-friendly estimate, in segments (§4.3).</summary>
    public double WEst { get; private set; }

    /// <summary>W_cubic(t) in segments, <paramref name="t"/> seconds after the epoch started (§4.2 eq. 1).</summary>
    public double WCubic(double t) => (C * Math.Pow(t - K, 3)) + WMax;

    public int ReduceAfterLoss(int window, int flightSize, int mss)
    {
        // §4.7 fast convergence: a loss below the previous W_max means another flow took bandwidth; give some back.
        var segments = (double)window / mss;
        WMax = segments < WMax ? segments * (1 + Beta) / 2 : segments;
        _epochStart = null;
        return Math.Max((int)Math.Round(window * Beta), 2 * mss);
    }

    public int Grow(int window, int newlyAcked, int mss, Instant now, TimeSpan? smoothedRtt)
    {
        var cwnd = (double)window / mss;
        if (_epochStart is null)
        {
            // §4.2: a new congestion-avoidance epoch. After a timeout (§4.8), or without any loss yet, it starts at the
            // present window with K = 0; otherwise K is the time W_cubic needs to climb back to W_max.
            _epochStart = now;
            if (_afterTimeout || WMax <= cwnd)
            {
                WMax = cwnd;
                K = 0;
            }
            else
            {
                K = Math.Cbrt((WMax - cwnd) / C);
            }

            WEst = cwnd;
            _afterTimeout = false;
        }

        var t = (now - _epochStart.Value).TotalSeconds;
        var rtt = (smoothedRtt ?? TimeSpan.Zero).TotalSeconds;
        var segmentsAcked = (double)newlyAcked / mss;

        // §4.3: W_est grows like Reno at CUBIC's β, at Reno's own rate once it passed W_max.
        WEst += (WEst >= WMax ? 1 : AlphaCubic) * segmentsAcked / cwnd;
        if (WCubic(t) < WEst)
        {
            return (int)Math.Ceiling(WEst * mss);
        }

        // §4.4, §4.5: grow toward W_cubic one RTT ahead, by at most half the window per RTT.
        var target = Math.Clamp(WCubic(t + rtt), cwnd, 1.5 * cwnd);
        var next = cwnd + ((target - cwnd) / cwnd * segmentsAcked);
        return Math.Max(window, (int)(next * mss));
    }

    public void OnRetransmissionTimeout()
    {
        _afterTimeout = true;
        _epochStart = null;
    }
}

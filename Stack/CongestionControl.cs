using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>What the sender must do after an ACK was fed to <see cref="CongestionControl"/>.</summary>
internal enum CongestionSignal
{
    None,

    /// <summary>Retransmit the first unacknowledged segment now (third duplicate ACK or a partial ACK).</summary>
    RetransmitFirstUnacknowledged,
}

/// <summary>
/// Congestion control: slow start (RFC 5681 §3.1), fast retransmit and fast recovery with the NewReno modification
/// (RFC 5681 §3.2, RFC 6582 §3.2) or SACK-based recovery (the hooks PRR drives), and the loss window after a timeout
/// (RFC 5681 §3.1). Byte counting follows RFC 5681: slow start grows by at most one SMSS per ACK. Limited transmit
/// (RFC 3042) lets the first two duplicate ACKs each release one new segment, so a small window still yields three
/// duplicates. How the window grows in congestion avoidance and how far it falls at a loss is the
/// <see cref="ICongestionAvoidance"/>'s decision: NewReno (RFC 5681) or CUBIC (RFC 9438).
/// </summary>
internal sealed class CongestionControl
{
    /// <summary>Keeps arithmetic far from overflow; a window this large is never the limit in practice.</summary>
    private const int MaxWindow = int.MaxValue / 4;

    /// <summary>Duplicate ACKs that signal a loss (RFC 5681 §3.2 dupthresh): reordering rarely reaches three.</summary>
    public const int DuplicateAckThreshold = 3;

    /// <summary>Highest cumulative ACK so far and the one before it, for the RFC 6582 §4.1 ACK heuristic.</summary>
    private SeqNumber _highestAck;
    private SeqNumber _previousHighestAck;

    private readonly ICongestionAvoidance _avoidance;

    public CongestionControl(int senderMss, int initialWindowSegments, SeqNumber initialSequence, ICongestionAvoidance? avoidance = null)
    {
        _avoidance = avoidance ?? new NewRenoAvoidance();
        SenderMss = senderMss;
        InitialWindowSegments = initialWindowSegments;
        Window = senderMss * initialWindowSegments;
        SlowStartThreshold = MaxWindow;
        Recover = initialSequence;
        _highestAck = initialSequence;
        _previousHighestAck = initialSequence;
    }

    public int SenderMss { get; private set; }

    public int InitialWindowSegments { get; }

    /// <summary>cwnd in bytes.</summary>
    public int Window { get; private set; }

    /// <summary>ssthresh in bytes; starts arbitrarily high (RFC 5681 §3.1).</summary>
    public int SlowStartThreshold { get; private set; }

    /// <summary>
    /// RFC 6582 "recover", held as one past the highest sequence number sent when recovery (or a timeout) last
    /// began, so "the ACK covers recover" reads <c>ack &gt;= Recover</c>.
    /// </summary>
    public SeqNumber Recover { get; private set; }

    public bool InFastRecovery { get; private set; }

    public int DuplicateAcks { get; private set; }

    /// <summary>
    /// Bytes the sender may have outstanding: cwnd plus, outside recovery, one SMSS for each of the first two
    /// duplicate ACKs (limited transmit, RFC 3042 §2; cwnd itself is unchanged).
    /// </summary>
    public int SendAllowance => Window + (InFastRecovery ? 0 : Math.Min(DuplicateAcks, DuplicateAckThreshold - 1) * SenderMss);

    /// <summary>Sets SMSS once the handshake settled it and re-derives the initial window (RFC 6928 §2).</summary>
    public void SetSenderMss(int senderMss)
    {
        SenderMss = senderMss;
        Window = senderMss * InitialWindowSegments;
    }

    /// <summary>
    /// The path's segment size changed mid-connection (path MTU discovery): SMSS follows, while cwnd and ssthresh stay
    /// the bytes they were (at least one new SMSS), as the path's capacity in bytes did not change with its MTU.
    /// </summary>
    public void ChangeSenderMss(int senderMss)
    {
        SenderMss = senderMss;
        Window = Math.Max(Window, senderMss);
    }

    /// <summary>
    /// An ACK that moved SND.UNA forward by <paramref name="newlyAcked"/> bytes to <paramref name="ack"/>;
    /// <paramref name="flightSizeAfter"/> is what is still outstanding.
    /// </summary>
    public CongestionSignal OnNewAck(SeqNumber ack, int newlyAcked, int flightSizeAfter, Instant now = default, TimeSpan? smoothedRtt = null)
    {
        DuplicateAcks = 0;
        _previousHighestAck = _highestAck;
        _highestAck = ack;
        if (InFastRecovery)
        {
            if (ack >= Recover)
            {
                // RFC 6582 §3.2 step 3, full ACK: deflate, option (1).
                Window = Math.Min(SlowStartThreshold, Math.Max(flightSizeAfter, SenderMss) + SenderMss);
                InFastRecovery = false;
                return CongestionSignal.None;
            }

            // RFC 6582 §3.2 step 4, partial ACK: retransmit the next hole, deflate by what was acked, add back one SMSS.
            Window = Math.Max(SenderMss, Window - newlyAcked + (newlyAcked >= SenderMss ? SenderMss : 0));
            return CongestionSignal.RetransmitFirstUnacknowledged;
        }

        if (Window < SlowStartThreshold)
        {
            Window = Math.Min(MaxWindow, Window + Math.Min(newlyAcked, SenderMss));
        }
        else
        {
            Window = Math.Clamp(_avoidance.Grow(Window, newlyAcked, SenderMss, now, smoothedRtt), SenderMss, MaxWindow);
        }

        return CongestionSignal.None;
    }

    /// <summary>
    /// A duplicate ACK (RFC 5681 §2 definition) for <paramref name="ack"/> while <paramref name="flightSize"/> bytes are
    /// outstanding and <paramref name="highestSent"/> is SND.MAX.
    /// </summary>
    public CongestionSignal OnDuplicateAck(SeqNumber ack, int flightSize, SeqNumber highestSent)
    {
        DuplicateAcks++;
        if (InFastRecovery)
        {
            // RFC 6582 §3.2 step 2 (RFC 5681 §3.2 step 4): inflate for each segment that left the network.
            Window = Math.Min(MaxWindow, Window + SenderMss);
            return CongestionSignal.None;
        }

        // RFC 6582 §3.2 step 1: enter recovery when the ACK covers more than "recover", so one loss episode does
        // not halve the window twice. Below "recover" (after a timeout) the ACK heuristic of §4.1 decides: a small
        // last advance of the cumulative ACK means these duplicates report a new loss, not spurious retransmissions.
        var coversRecover = ack >= Recover;
        var heuristicSaysLoss = Window > SenderMss && _highestAck - _previousHighestAck <= 4 * SenderMss;
        if (DuplicateAcks == DuplicateAckThreshold && (coversRecover || heuristicSaysLoss))
        {
            SlowStartThreshold = _avoidance.ReduceAfterLoss(Window, flightSize, SenderMss);
            Window = SlowStartThreshold + (DuplicateAckThreshold * SenderMss);
            Recover = highestSent;
            InFastRecovery = true;
            return CongestionSignal.RetransmitFirstUnacknowledged;
        }

        return CongestionSignal.None;
    }

    /// <summary>
    /// SACK-based recovery (RFC 6675 §5, RFC 8985) found a loss: ssthresh falls as the congestion avoidance says;
    /// from here until <see cref="ExitRecovery"/> the caller sets cwnd (PRR, RFC 6937) and duplicate ACKs are not counted.
    /// </summary>
    public void OnLossDetected(int flightSize, SeqNumber highestSent)
    {
        SlowStartThreshold = _avoidance.ReduceAfterLoss(Window, flightSize, SenderMss);
        Recover = highestSent;
        InFastRecovery = true;
        DuplicateAcks = 0;
    }

    /// <summary>cwnd during SACK-based recovery, as PRR computes it (RFC 6937 §3); never below one SMSS.</summary>
    public void SetRecoveryWindow(int window) => Window = Math.Clamp(window, SenderMss, MaxWindow);

    /// <summary>SACK-based recovery ended: cwnd = ssthresh (RFC 6937 §3, "at the end of recovery").</summary>
    public void ExitRecovery()
    {
        Window = SlowStartThreshold;
        InFastRecovery = false;
    }

    /// <summary>
    /// A tail-loss probe's retransmission turned out to have repaired a loss (RFC 8985 §7.4.2): the congestion
    /// response a recovery would have made, at once.
    /// </summary>
    public void OnLossRepairedByProbe(int flightSize)
    {
        SlowStartThreshold = _avoidance.ReduceAfterLoss(Window, flightSize, SenderMss);
        Window = SlowStartThreshold;
    }

    /// <summary>The retransmission timer expired (RFC 5681 §3.1: loss window one SMSS; RFC 6582 §4; RFC 9438 §4.8).</summary>
    public void OnRetransmissionTimeout(int flightSize, SeqNumber highestSent)
    {
        SlowStartThreshold = _avoidance.ReduceAfterLoss(Window, flightSize, SenderMss);
        _avoidance.OnRetransmissionTimeout();
        Window = SenderMss;
        InFastRecovery = false;
        DuplicateAcks = 0;
        Recover = highestSent;
    }
}

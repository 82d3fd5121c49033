using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// Selective acknowledgments and the loss recovery they allow, used when both SYNs carried SACK-permitted:
/// SACK blocks on our ACKs (RFC 2018, D-SACK RFC 2883), and on the sending side the scoreboard
/// (<see cref="SendScoreboard"/>, RFC 6675), time-based loss detection and the tail-loss probe (RACK-TLP, RFC 8985)
/// and Proportional Rate Reduction of cwnd during recovery (PRR, RFC 6937). Without SACK the connection keeps
/// NewReno recovery (RFC 6582) and go-back-N after a timeout.
/// </summary>
public sealed partial class TcpConnection
{
    /// <summary>
    /// SACK blocks we put on one segment, a D-SACK block included. Four fit in the 40 bytes of option space
    /// (RFC 2018 §3); three leave room for TCP_MIGRATE on the first segments after the handshake, as Linux leaves
    /// room for timestamps.
    /// </summary>
    private const int MaxSackBlocksSent = 3;

    /// <summary>Bound on the scoreboard's up-front size: a peer announcing a tiny MSS must not make us reserve megabytes.</summary>
    private const int MaxExpectedScoreboardSegments = 1024;

    /// <summary>RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK time a probe of a one-segment flight allows for.</summary>
    private static readonly TimeSpan WorstCaseDelayedAck = TimeSpan.FromMilliseconds(200);

    /// <summary>PTO before any RTT sample (RFC 8985 §7.2).</summary>
    private static readonly TimeSpan ProbeTimeoutWithoutRtt = TimeSpan.FromSeconds(1);

    private readonly SendScoreboard _scoreboard = new();

    /// <summary>Both SYNs carried SACK-permitted (RFC 2018 §2), decided in <see cref="AcceptPeerSyn"/>.</summary>
    private bool _sackAgreed;

    // Receiver (RFC 2018 §4): the first block reports the segment that triggered the ACK; a duplicate is reported once.
    private SeqNumber? _lastOutOfOrderArrival;
    private SackBlock? _pendingDsack;

    // Sender: the recovery episode, its end (RFC 6675 RecoveryPoint) and PRR's counters (RFC 6937 §3).
    private LossRecovery _recovery;
    private SeqNumber _recoveryPoint;
    private int _prrDelivered;
    private int _prrOut;
    private int _recoverFlightSize;

    // RACK's reorder timer or TLP's probe timeout (RFC 8985 §6.2 step 5, §7.2): one deadline, the reorder timer first.
    private Instant? _lossTimerAt;
    private LossTimer _lossTimer;
    private bool _tailLossProbePending;
    private bool _lastSentAlone;
    private SeqNumber? _tlpEndSeq;
    private bool _tlpIsRetransmission;

    private enum LossRecovery
    {
        None,

        /// <summary>RACK found a loss: retransmit what it marked, cwnd by PRR.</summary>
        Fast,

        /// <summary>The retransmission timer expired: everything not SACKed is resent, cwnd by slow start.</summary>
        Timeout,
    }

    private enum LossTimer
    {
        Reorder,
        TailLossProbe,
    }

    /// <summary>True when both SYNs carried SACK-permitted (RFC 2018 §2).</summary>
    public bool SackAgreed => _sackAgreed;

    /// <summary>True during a SACK-based loss recovery (RACK-detected loss or after a timeout), until RecoveryPoint is acknowledged.</summary>
    public bool InLossRecovery => _recovery != LossRecovery.None;

    /// <summary>Segments in flight, SACKed or lost that the scoreboard tracks beyond SND.UNA.</summary>
    public int ScoreboardSegments => _scoreboard.Count;

    /// <summary>Segments of the scoreboard the peer SACKed.</summary>
    public int SackedSegments => _scoreboard.SackedSegments;

    /// <summary>The SACK blocks for the segment being built, or none (RFC 2018 §4, RFC 2883 §4).</summary>
    private SackBlockList SackBlocksToSend()
    {
        var blocks = default(SackBlockList);
        if (!_sackAgreed || _receive is null)
        {
            return blocks;
        }

        if (_pendingDsack is { } dsack)
        {
            blocks = blocks.Add(dsack);
            _pendingDsack = null;
        }

        var count = _receive.OutOfOrderRangeCount;
        var first = -1;
        if (_lastOutOfOrderArrival is { } arrival)
        {
            for (var i = 0; i < count; i++)
            {
                var range = _receive.OutOfOrderRange(i);
                if (arrival.InRange(range.Left, range.Right))
                {
                    first = i;
                    blocks = blocks.Add(WithPendingFin(range));
                    break;
                }
            }
        }

        // Then the highest ranges: the ones next to the newest data, which the sender has heard of least.
        for (var i = count - 1; i >= 0 && blocks.Count < MaxSackBlocksSent; i--)
        {
            if (i != first)
            {
                blocks = blocks.Add(WithPendingFin(_receive.OutOfOrderRange(i)));
            }
        }

        return blocks;
    }

    /// <summary>
    /// A range that ends where the peer's FIN, received out of order, sits is reported with the FIN's sequence number:
    /// a block's right edge follows the last sequence number received (RFC 2018 §3), and the FIN takes one, as Linux
    /// reports it. Without it the sender could not match the block to its last segment (data and FIN), would never
    /// count it delivered, and RACK could not tell a lost retransmission sent before it (RFC 8985 §6.2).
    /// </summary>
    private SackBlock WithPendingFin(SackBlock range) =>
        _pendingPeerFin is { } fin && range.Right == fin ? range with { Right = fin + 1 } : range;

    /// <summary>
    /// The receiving side of RFC 2018 §4 and RFC 2883: <paramref name="seq"/> and <paramref name="length"/> arrived with
    /// RCV.NXT at <paramref name="rcvNxt"/>. Bytes beyond RCV.NXT lead the next SACK option; bytes below it were
    /// received twice and are reported once in a D-SACK block.
    /// </summary>
    private void NoteArrivalForSack(SeqNumber seq, int length, SeqNumber rcvNxt)
    {
        if (!_sackAgreed || length <= 0)
        {
            return;
        }

        if (seq > rcvNxt)
        {
            _lastOutOfOrderArrival = seq;
        }
        else if (seq < rcvNxt)
        {
            _pendingDsack = new SackBlock(seq, SeqNumber.Min(seq + length, rcvNxt));
        }
    }

    /// <summary>
    /// An acceptable ACK on a SACK connection (SND.UNA already moved by <see cref="OnAcknowledgment"/>): update the
    /// scoreboard and RACK, finish a tail-loss probe, end or start a recovery, and set cwnd (PRR in recovery, slow start
    /// or congestion avoidance otherwise).
    /// </summary>
    private void OnAckWithScoreboard(Instant now, in SackBlockList sack, int freedData, int flightBefore)
    {
        var ack = _sndUna;
        var delivered = _scoreboard.OnCumulativeAck(ack, now);
        delivered += _scoreboard.ApplySack(sack, ack, _sndMax, now, out var dsack);
        FinishTailLossProbe(ack, dsack, freedData, flightBefore);

        var recoveryEnded = _recovery != LossRecovery.None && ack >= _recoveryPoint;
        if (recoveryEnded)
        {
            ExitLossRecovery();
        }

        var reorderTimeout = _scoreboard.DetectLoss(now, ReorderWindow(), out var newlyLost);
        if (newlyLost > 0 && _recovery == LossRecovery.None && !OnlyThePathMtuProbeLost())
        {
            EnterFastRecovery();
        }

        if (_recovery == LossRecovery.Fast)
        {
            UpdatePrrWindow(delivered);
        }
        else if (freedData > 0 && !recoveryEnded)
        {
            // The ACK that ends a recovery leaves cwnd at ssthresh (RFC 6937 §3); later ones grow it.
            _congestion.OnNewAck(ack, freedData, _sndMax - ack, now, _rtt.SmoothedRtt);
        }

        if (_sndUna == _sndMax)
        {
            _lossTimerAt = null;
            return;
        }

        ArmLossTimer(now, reorderTimeout);
    }

    /// <summary>RFC 8985 §7.4.2: an ACK covering the probe ends the episode; a probe that repaired a loss costs cwnd.</summary>
    private void FinishTailLossProbe(SeqNumber ack, bool dsack, int freedData, int flightBefore)
    {
        if (_tlpEndSeq is not { } end || ack < end)
        {
            return;
        }

        if (!_tlpIsRetransmission || dsack)
        {
            _tlpEndSeq = null;
        }
        else if (ack > end)
        {
            _tlpEndSeq = null;
            _congestion.OnLossRepairedByProbe(flightBefore);
        }
        else if (freedData == 0)
        {
            // A duplicate ACK without a D-SACK: the probe's original was lost (the suspected loss is assumed).
            _tlpEndSeq = null;
        }
    }

    private TimeSpan ReorderWindow() => _scoreboard.ReorderWindow(_recovery != LossRecovery.None, _rtt.SmoothedRtt);

    /// <summary>RFC 6675 §5 step (4.1)/RFC 8985 §6.2: a loss starts one recovery episode, ending at SND.MAX.</summary>
    private void EnterFastRecovery()
    {
        var flight = _sndMax - _sndUna;
        _recovery = LossRecovery.Fast;
        _recoveryPoint = _sndMax;
        _congestion.OnLossDetected(flight, _sndMax);
        _prrDelivered = 0;
        _prrOut = 0;
        _recoverFlightSize = Math.Max(flight, 1);
        _tlpEndSeq = null;
        Stats.FastRetransmits++;
    }

    private void ExitLossRecovery()
    {
        if (_recovery == LossRecovery.Fast)
        {
            _congestion.ExitRecovery();
        }

        _recovery = LossRecovery.None;
        _scoreboard.OnRecoveryEnded();
    }

    /// <summary>
    /// PRR (RFC 6937 §3) on an ACK that delivered <paramref name="delivered"/> bytes: while pipe exceeds ssthresh, send
    /// in proportion to what was delivered; below it, slow-start back up to ssthresh (PRR-SSRB). cwnd = pipe + sndcnt.
    /// </summary>
    private void UpdatePrrWindow(int delivered)
    {
        _prrDelivered += delivered;
        var pipe = _scoreboard.Pipe;
        var ssthresh = _congestion.SlowStartThreshold;
        long sendCount;
        if (pipe > ssthresh)
        {
            sendCount = (((long)_prrDelivered * ssthresh) + _recoverFlightSize - 1) / _recoverFlightSize - _prrOut;
        }
        else
        {
            var limit = (long)Math.Max(_prrDelivered - _prrOut, delivered) + _sendMss;
            sendCount = Math.Min(ssthresh - pipe, limit);
        }

        // The first retransmission of an episode always goes (RFC 6937 as updated by RFC 9937).
        sendCount = Math.Max(sendCount, _prrOut == 0 ? _sendMss : 0);
        _congestion.SetRecoveryWindow((int)Math.Min(int.MaxValue, pipe + sendCount));
    }

    /// <summary>
    /// Bytes the congestion window lets us send now: cwnd - pipe (RFC 6675 §5, RFC 6937). During PRR any positive
    /// sndcnt releases a whole segment of <paramref name="segmentSize"/>, as Linux counts PRR in packets: a
    /// fraction would otherwise be held back by sender SWS avoidance until the next ACK.
    /// </summary>
    private int ScoreboardSendBudget(int segmentSize)
    {
        var budget = _congestion.Window - _scoreboard.Pipe;
        return _recovery == LossRecovery.Fast && budget > 0 ? Math.Max(budget, segmentSize) : budget;
    }

    /// <summary>Records a transmission in the scoreboard and PRR's prr_out, and (re)arms the probe after new data.</summary>
    private void OnScoreboardSent(Instant now, SeqNumber from, SeqNumber end, bool newData)
    {
        _scoreboard.OnSent(from, end, now);
        if (_recovery == LossRecovery.Fast)
        {
            _prrOut += end - from;
        }

        if (newData)
        {
            _lastSentAlone = _scoreboard.Count == 1;
        }

        // New data restarts the probe timeout (RFC 8985 §7.2), but never in place of RACK's reorder timer: that timer is
        // what marks a hole lost once its reorder window has passed (§6.2 step 5), and a probe in its place would
        // leave the hole to the probe's later timeout, or to the retransmission timer when the probe is lost.
        if (newData && !_tailLossProbePending && !ReorderTimerArmed)
        {
            ArmLossTimer(now, reorderTimeout: null);
        }
    }

    /// <summary>Retransmits the first segment marked lost, if cwnd - pipe allows (RFC 6675 NextSeg rule 1).</summary>
    private bool TryEmitLost(Instant now, Span<byte> payloadBuffer, out TcpSegmentRepr header, out int payloadLength)
    {
        header = default;
        payloadLength = 0;
        var index = _scoreboard.FirstLost();
        if (index < 0 || ScoreboardSendBudget(_sendMss) <= 0)
        {
            return false;
        }

        header = EmitSegmentAgain(now, _scoreboard[index], payloadBuffer, out payloadLength);
        return true;
    }

    /// <summary>Sends <paramref name="segment"/>'s sequence space again (its FIN too when it carried one), at most one MSS.</summary>
    private TcpSegmentRepr EmitSegmentAgain(Instant now, in SentSegment segment, Span<byte> payloadBuffer, out int payloadLength)
    {
        var dataLength = Math.Max(0, SeqNumber.Min(segment.End, _send.End) - segment.Start);
        return EmitData(now, segment.Start, Math.Min(dataLength, _sendMss), payloadBuffer, out payloadLength, advance: false);
    }

    /// <summary>
    /// The tail-loss probe (RFC 8985 §7.3): one new segment if the receive window allows, otherwise the last segment
    /// sent again, whatever cwnd says; then the retransmission timer is re-armed.
    /// </summary>
    private bool TryEmitTailLossProbe(Instant now, Span<byte> payloadBuffer, out TcpSegmentRepr header, out int payloadLength)
    {
        header = default;
        payloadLength = 0;
        _tailLossProbePending = false;
        if (_sndUna == _sndMax || _scoreboard.Count == 0)
        {
            return false;
        }

        var inFlight = _sndNxt - _sndUna;
        var unsent = _send.End - _sndNxt;
        var finUnsent = _finQueued && _sndNxt <= _send.End;
        if ((unsent > 0 && inFlight < _sndWnd) || (unsent == 0 && finUnsent))
        {
            var length = Math.Min(Math.Min(unsent, _sendMss), Math.Max(0, _sndWnd - inFlight));
            header = EmitData(now, _sndNxt, length, payloadBuffer, out payloadLength, advance: true);
            _tlpIsRetransmission = false;
        }
        else
        {
            header = EmitSegmentAgain(now, _scoreboard[_scoreboard.Count - 1], payloadBuffer, out payloadLength);
            _tlpIsRetransmission = true;
        }

        _tlpEndSeq = _sndMax;
        Stats.TailLossProbes++;
        _retransmitAt = now + _rtt.Rto;
        return true;
    }

    /// <summary>
    /// One deadline for RACK and TLP: the reorder timer when RACK is waiting out a reorder window, otherwise the probe
    /// timeout (RFC 8985 §7.2), armed only outside recovery, with no probe outstanding and when it would fire before
    /// the retransmission timer.
    /// </summary>
    private void ArmLossTimer(Instant now, TimeSpan? reorderTimeout)
    {
        if (reorderTimeout is { } wait)
        {
            _lossTimerAt = now + wait;
            _lossTimer = LossTimer.Reorder;
            return;
        }

        _lossTimerAt = null;
        if (_recovery != LossRecovery.None || _tlpEndSeq is not null || _sndUna == _sndMax)
        {
            return;
        }

        // WCDelAckT covers a receiver that delays the ACK of a lone segment: one sent into an empty flight. The last
        // segment of a burst arrives behind others and is acknowledged without that delay (RFC 1122 §4.2.3.2).
        var pto = _rtt.SmoothedRtt is { } srtt ? srtt + srtt : ProbeTimeoutWithoutRtt;
        if (_lastSentAlone && _scoreboard.Count == 1)
        {
            pto += WorstCaseDelayedAck;
        }

        pto += _config.ClockGranularity;
        var at = now + pto;

        // RFC 8985 §7.2: a probe timeout later than the retransmission timer is scheduled at the timer's time, and the
        // probe goes in place of the timeout (HandleTimeout lets it). A one-segment flight (PTO += WCDelAckT) otherwise
        // never had a probe: its loss always cost a timeout, cwnd at one segment and everything resent.
        if (_retransmitAt is { } rto && rto < at)
        {
            at = rto;
        }

        _lossTimerAt = at;
        _lossTimer = LossTimer.TailLossProbe;
    }

    /// <summary>RACK's reorder timer is running: a segment waits out its reorder window (RFC 8985 §6.2 step 5).</summary>
    private bool ReorderTimerArmed => _lossTimerAt is not null && _lossTimer == LossTimer.Reorder;

    /// <summary>The probe timeout is due at <paramref name="now"/>: it fires before, and in place of, a retransmission timeout due then.</summary>
    private bool TailLossProbeDue(Instant now) => _lossTimerAt is { } at && at <= now && _lossTimer == LossTimer.TailLossProbe;

    /// <summary>The reorder timer or the probe timeout expired.</summary>
    private void OnLossTimer(Instant now)
    {
        _lossTimerAt = null;
        if (_lossTimer == LossTimer.TailLossProbe)
        {
            // Due with the retransmission timer, the probe goes in its place; sending it re-arms the timer (§7.3).
            _tailLossProbePending = true;
            if (_retransmitAt is { } rto && rto <= now)
            {
                _retransmitAt = now + _rtt.Rto;
            }

            return;
        }

        // RACK's reorder timer (RFC 8985 §6.2 step 5): the segments waiting out their reorder window are due now.
        var reorderTimeout = _scoreboard.DetectLoss(now, ReorderWindow(), out var newlyLost);
        if (newlyLost > 0 && _recovery == LossRecovery.None && !OnlyThePathMtuProbeLost())
        {
            EnterFastRecovery();
        }

        if (_recovery == LossRecovery.Fast)
        {
            UpdatePrrWindow(0);
        }

        ArmLossTimer(now, reorderTimeout);
    }

    /// <summary>
    /// The retransmission timer expired on a SACK connection (RFC 8985 §6.3, RFC 6675 §5.1): everything not SACKed is
    /// lost and resent from the scoreboard under a one-segment cwnd, without rewinding SND.NXT.
    /// </summary>
    private void OnRetransmissionTimeoutWithScoreboard()
    {
        _scoreboard.OnRetransmissionTimeout();
        _recovery = LossRecovery.Timeout;
        _recoveryPoint = _sndMax;
        StopLossTimer();
    }

    /// <summary>Nothing will be sent again (closed, or the data moved to another control block).</summary>
    private void ResetLossRecovery()
    {
        _scoreboard.Clear();
        _recovery = LossRecovery.None;
        StopLossTimer();
    }

    /// <summary>No reorder timer, no probe due or outstanding: the retransmission timer alone watches the flight.</summary>
    private void StopLossTimer()
    {
        _lossTimerAt = null;
        _tailLossProbePending = false;
        _tlpEndSeq = null;
    }
}

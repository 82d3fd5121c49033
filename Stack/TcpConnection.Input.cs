using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>Segment arrival, RFC 9293 §3.10.7, step by step.</summary>
public sealed partial class TcpConnection
{
    /// <summary>
    /// Processes one arriving segment whose ports the driver already matched to this connection
    /// (a listener accepts any remote port). <paramref name="payload"/> is copied; it need not outlive the call.
    /// </summary>
    public void HandleSegment(Instant now, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        Stats.SegmentsReceived++;
        LastSegmentInWindow = false;
        switch (_state)
        {
            case TcpState.Closed:
                // §3.10.7.1: everything but a RST gets a RST.
                QueueResetAnswering(segment, payload.Length);
                return;
            case TcpState.Listen:
                OnSegmentInListen(now, segment);
                return;
            case TcpState.SynSent:
                OnSegmentInSynSent(now, segment);
                if (_state != TcpState.SynSent)
                {
                    HeardFromPeer(now);
                }

                return;
            default:
                if (OnSegmentSynchronized(now, segment, payload))
                {
                    HeardFromPeer(now);
                }

                BuildImmediateAckInBurst();
                return;
        }
    }

    /// <summary>A segment from the peer shows it alive: keep-alive starts over (RFC 1122 §4.2.3.6), and so does the count of timeouts a failover reads.</summary>
    private void HeardFromPeer(Instant now)
    {
        _lastHeardAt = now;
        _unansweredKeepAlives = 0;
        _timeoutsSinceHeard = 0;
    }

    /// <summary>
    /// The last segment passed the synchronized states' sequence and ACK checks (RFC 9293 §3.10.7.4, RFC 5961):
    /// options on it (TCP_MIGRATE after the handshake) are believed only then, not on a blind injection.
    /// </summary>
    internal bool LastSegmentInWindow { get; private set; }

    private void QueueResetAnswering(in TcpSegmentRepr segment, int payloadLength)
    {
        if (TryMakeReset(segment, payloadLength, out var reset))
        {
            _resetPending = true;
            _reset = reset;
        }
    }

    /// <summary>RFC 9293 §3.10.7.2.</summary>
    private void OnSegmentInListen(Instant now, in TcpSegmentRepr segment)
    {
        if (segment.Has(TcpFlags.Rst))
        {
            return;
        }

        if (segment.Has(TcpFlags.Ack))
        {
            // Any ACK is bad in LISTEN: <SEQ=SEG.ACK><CTL=RST>, the same answer CLOSED gives.
            QueueResetAnswering(segment, 0);
            return;
        }

        if (!segment.Has(TcpFlags.Syn))
        {
            return;
        }

        // Data on a SYN is not queued: the peer retransmits it once the handshake is done.
        RemotePort = segment.SourcePort;
        AcceptPeerSyn(segment);
        _state = TcpState.SynReceived;
        _connectDeadline = now + _config.ConnectTimeout;
    }

    /// <summary>
    /// A passive open whose SYN was answered statelessly with a SYN cookie (RFC 4987 §3.6, <see cref="SynCookies"/>):
    /// the connection, created with the cookie as its ISS, takes <paramref name="syn"/> as rebuilt from the client's
    /// ACK (<see cref="SynCookies.SynOf"/>) and enters SYN-RECEIVED with its SYN+ACK already sent, so that the ACK
    /// that follows completes the handshake as it would have after a held SYN.
    /// </summary>
    public void AcceptCookieSyn(Instant now, in TcpSegmentRepr syn)
    {
        if (_state != TcpState.Listen || (syn.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) != TcpFlags.Syn)
        {
            throw new InvalidOperationException($"a cookie's SYN opens a listening connection only; this one is {_state}");
        }

        OnSegmentInListen(now, syn);
        _sndNxt = InitialSendSequence + 1;
        _sndMax = _sndNxt;
        _lastAdvertisedWindow = Math.Min(_receive?.Window ?? _config.ReceiveBufferSize, MaxWindowField);
    }

    /// <summary>RFC 9293 §3.10.7.3.</summary>
    private void OnSegmentInSynSent(Instant now, in TcpSegmentRepr segment)
    {
        var hasAck = segment.Has(TcpFlags.Ack);
        var ack = segment.AcknowledgmentNumber;

        // First: the ACK must cover our SYN and nothing we never sent (ISS < SEG.ACK <= SND.MAX).
        if (hasAck && (ack <= InitialSendSequence || ack > _sndMax))
        {
            if (!segment.Has(TcpFlags.Rst))
            {
                QueueReset(ack, default, TcpFlags.Rst);
            }

            return;
        }

        // Second: a RST counts only with an acceptable ACK (RFC 5961 §3.2 for SYN-SENT).
        if (segment.Has(TcpFlags.Rst))
        {
            if (hasAck)
            {
                EnterClosed(TcpEvent.Reset);
            }

            return;
        }

        // Fourth: the SYN.
        if (!segment.Has(TcpFlags.Syn))
        {
            return;
        }

        AcceptPeerSyn(segment);
        if (hasAck)
        {
            OnAcknowledgment(now, ack);
            _sndWnd = segment.Window;
            _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
            _sndWl1 = segment.SequenceNumber;
            _sndWl2 = ack;
            EnterEstablished();
            _ackNow = true;
        }
        else
        {
            // Simultaneous open (§3.5, figure 8): answer with SYN,ACK, re-using our ISS.
            _state = TcpState.SynReceived;
            _sndNxt = InitialSendSequence;
            _retransmitAt = null;
            _timing = false;
        }
    }

    /// <summary>Records what a SYN tells us: IRS, MSS and window scale (RFC 9293 §3.7.1, RFC 7323 §2.2).</summary>
    private void AcceptPeerSyn(in TcpSegmentRepr segment)
    {
        _irs = segment.SequenceNumber;
        _receive = new ReceiveBuffer(_config.ReceiveBufferSize, _irs + 1, _retainReadLogAtOpen);
        var peerMss = segment.Options.MaxSegmentSize ?? DefaultPeerMss;
        _sendMss = Math.Max(1, Math.Min(_config.MaxSegmentSize, (int)peerMss));
        _congestion.SetSenderMss(_sendMss);
        StartPathMtuSearchAt(_sendMss);

        // RFC 2018 §2: SACK is in force only when both SYNs carry SACK-permitted. Like MSS and window scale, decided
        // here and nowhere else.
        _sackAgreed = _config.SelectiveAcknowledgment && segment.Options.SackPermitted;
        _scoreboard.ExpectedSegments = Math.Min((_config.SendBufferSize / _sendMss) + 2, MaxExpectedScoreboardSegments);

        // RFC 7323 §2.2: scaling is in force only when both SYNs carry the option; shifts above 14 are read as 14.
        if (segment.Options.WindowScale is { } peerShift && _config.WindowScaleShift is { } ourShift)
        {
            _sndWindowShift = Math.Min((int)peerShift, 14);
            _rcvWindowShift = ourShift;
            _windowScalingAgreed = true;
        }
        else
        {
            _sndWindowShift = 0;
            _rcvWindowShift = 0;
            _windowScalingAgreed = false;
        }

        // A SYN's window is never scaled (RFC 7323 §2.2).
        _sndWnd = segment.Window;
        _maxSndWnd = _sndWnd;
        _sndWl1 = segment.SequenceNumber;
        _sndWl2 = segment.AcknowledgmentNumber;
    }

    private void EnterEstablished()
    {
        _connectDeadline = null;
        if (_handshakeTimedOut)
        {
            // RFC 6298 §5.7: a SYN or SYN,ACK timed out, so start data transfer with an RTO of at least 3 s.
            _rtt.OnHandshakeTimedOut();
        }

        _state = _finQueued ? TcpState.FinWait1 : TcpState.Established;
        _events.Enqueue(TcpEvent.Connected);
    }

    /// <summary>
    /// The checks of RFC 9293 §3.10.7.4 (first to fifth step) for SYN-RECEIVED and every synchronized state, as one
    /// decision table. Pure: it reads the connection and the segment and changes nothing. Rules apply in order; the
    /// first that matches decides.
    /// <code>
    ///  #  state        segment                                   verdict             rule
    ///  1  SYN-RCVD     SYN, no ACK, SEG.SEQ = IRS                ResendSynAck        peer lost our SYN,ACK
    ///  2  TIME-WAIT    FIN                                       RestartTimeWait     §3.10.7.4 eighth step
    ///  3  any          unacceptable SEQ (table below), RST       Drop                §3.10.7.4 first check
    ///  4  any          unacceptable SEQ, not RST                 DropWithAck         §3.10.7.4 first check
    ///  5  any          RST, SEG.SEQ = RCV.NXT                    Reset               RFC 5961 §3.2
    ///  6  any          RST, elsewhere in the window              ChallengeAck        RFC 5961 §3.2
    ///  7  any          SYN                                       ChallengeAck        RFC 5961 §4.2
    ///  8  any          no ACK                                    Drop                §3.10.7.4 fifth check
    ///  9  SYN-RCVD     not SND.UNA &lt; SEG.ACK &lt;= SND.MAX       ResetBadAck         §3.10.7.4 fifth check
    /// 10  any          SEG.ACK &gt; SND.MAX, or older than SND.UNA - MAX.SND.WND
    ///                                                            DropWithAck         §3.10.7.4, RFC 5961 §5.2
    /// 11  any          acceptable SEQ                            Accept
    /// 12  any          RCV.WND = 0 and SEG.SEQ = RCV.NXT         AcceptControlOnly   §3.10.7.4: "special allowance
    ///                                                                                for valid ACKs, URGs and RSTs"
    /// </code>
    /// Sequence acceptability (first check), with RCV.WND what the buffer can take now (never less than announced):
    /// <code>
    ///  SEG.LEN  RCV.WND  acceptable when
    ///  0        0        SEG.SEQ = RCV.NXT
    ///  0        &gt;0       RCV.NXT &lt;= SEG.SEQ &lt; RCV.NXT+RCV.WND
    ///  &gt;0       0        never
    ///  &gt;0       &gt;0       RCV.NXT &lt;= SEG.SEQ &lt; RCV.NXT+RCV.WND  or  RCV.NXT &lt;= SEG.SEQ+SEG.LEN-1 &lt; RCV.NXT+RCV.WND
    /// </code>
    /// </summary>
    internal SegmentVerdict Judge(in TcpSegmentRepr segment, int payloadLength)
    {
        var seq = segment.SequenceNumber;
        var ack = segment.AcknowledgmentNumber;
        var rcvNxt = ReceiveNext;
        var segmentLength = SegmentLength(segment, payloadLength);
        var window = _finReceived ? 0 : _receive!.Window;
        var acceptable = (segmentLength, window) switch
        {
            (0, 0) => seq == rcvNxt,
            (0, _) => seq.InRange(rcvNxt, rcvNxt + window),
            (_, 0) => false,
            _ => seq.InRange(rcvNxt, rcvNxt + window) || (seq + (segmentLength - 1)).InRange(rcvNxt, rcvNxt + window),
        };
        var atRcvNxtWithClosedWindow = window == 0 && seq == rcvNxt;
        var rst = segment.Has(TcpFlags.Rst);
        var syn = segment.Has(TcpFlags.Syn);

        if (_state == TcpState.SynReceived && syn && !segment.Has(TcpFlags.Ack) && seq == _irs)
        {
            return SegmentVerdict.ResendSynAck; // 1
        }

        if (_state == TcpState.TimeWait && segment.Has(TcpFlags.Fin) && !rst)
        {
            return SegmentVerdict.RestartTimeWait; // 2
        }

        if (!acceptable && !atRcvNxtWithClosedWindow)
        {
            return rst ? SegmentVerdict.Drop : SegmentVerdict.DropWithAck; // 3, 4
        }

        if (rst)
        {
            return seq == rcvNxt ? SegmentVerdict.Reset : SegmentVerdict.ChallengeAck; // 5, 6
        }

        if (syn)
        {
            return SegmentVerdict.ChallengeAck; // 7
        }

        if (!segment.Has(TcpFlags.Ack))
        {
            return SegmentVerdict.Drop; // 8
        }

        if (_state == TcpState.SynReceived && !(ack > _sndUna && ack <= _sndMax))
        {
            return SegmentVerdict.ResetBadAck; // 9
        }

        if (!AckAcceptable(ack))
        {
            return SegmentVerdict.DropWithAck; // 10
        }

        return acceptable ? SegmentVerdict.Accept : SegmentVerdict.AcceptControlOnly; // 11, 12
    }

    /// <summary>SND.UNA - MAX.SND.WND &lt;= SEG.ACK &lt;= SND.MAX (RFC 9293 §3.10.7.4 fifth check with RFC 5961 §5.2).</summary>
    private bool AckAcceptable(SeqNumber ack) => ack <= _sndMax && ack >= _sndUna - Math.Max(_maxSndWnd, 1);

    /// <summary>
    /// RFC 9293 §3.10.7.4 for SYN-RECEIVED and every synchronized state: judge, then act on the verdict. Returns
    /// whether the segment shows the peer alive: one whose ACK was processed (<see cref="SegmentVerdict.Accept"/>, and
    /// <see cref="SegmentVerdict.AcceptControlOnly"/>, the valid ACK a zero window still takes), or one dropped only for
    /// its sequence number whose ACK passes RFC 5961 §5.2, as the peer's zero-window probes (RFC 9293 §3.8.6.1) and its
    /// retransmissions into our closed window are: a closed receive window of ours is no silence of the peer's.
    /// </summary>
    private bool OnSegmentSynchronized(Instant now, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        var verdict = Judge(segment, payload.Length);
        LastSegmentInWindow = verdict == SegmentVerdict.Accept;
        if (verdict is SegmentVerdict.DropWithAck or SegmentVerdict.ChallengeAck && AwaitingMigrationHandshake && _state == TcpState.SynReceived)
        {
            // A reinstated endpoint answers with its SYN,ACK what RFC 9293 answers with a bare ACK: the client takes
            // the new server's first segment without SYN as the proof that β reached it (thesis 4.2.3, last step),
            // and stops sending β. A bare ACK here would make it stop before β arrived, and the write-buffer state
            // would go out unaligned with the client's rcv_nxt.
            verdict = SegmentVerdict.ResendSynAck;
        }

        switch (verdict)
        {
            case SegmentVerdict.ResendSynAck:
                _sndNxt = InitialSendSequence;
                return false;
            case SegmentVerdict.RestartTimeWait:
                _ackNow = true;
                EnterTimeWait(now);
                return false;
            case SegmentVerdict.Drop:
                return false;
            case SegmentVerdict.DropWithAck:
                Stats.SegmentsRejected++;
                _ackNow = true;
                if (segment.SequenceNumber + payload.Length <= ReceiveDataNext)
                {
                    NoteArrivalForSack(segment.SequenceNumber, payload.Length, ReceiveDataNext);
                }

                return (segment.Flags & (TcpFlags.Ack | TcpFlags.Syn | TcpFlags.Rst)) == TcpFlags.Ack && AckAcceptable(segment.AcknowledgmentNumber);
            case SegmentVerdict.Reset:
                // In SYN-RECEIVED after a passive open RFC 9293 returns to LISTEN; here every SYN got its own
                // connection from a listener that keeps listening, so this connection simply closes.
                EnterClosed(_state is TcpState.Closing or TcpState.LastAck or TcpState.TimeWait ? TcpEvent.Closed : TcpEvent.Reset);
                return false;
            case SegmentVerdict.ChallengeAck:
                Stats.ChallengeAcks++;
                _ackNow = true;
                return false;
            case SegmentVerdict.ResetBadAck:
                QueueReset(segment.AcknowledgmentNumber, default, TcpFlags.Rst);
                return false;
            case SegmentVerdict.AcceptControlOnly:
                if (SegmentLength(segment, payload.Length) > 0)
                {
                    Stats.SegmentsRejected++;
                    _ackNow = true;
                }

                break;
            default:
                break;
        }

        var seq = segment.SequenceNumber;
        var ack = segment.AcknowledgmentNumber;
        if (_state == TcpState.SynReceived)
        {
            // Rule 9 passed: the ACK covers our SYN (§3.10.7.4 fifth step, SYN-RECEIVED).
            _sndWnd = segment.Window << _sndWindowShift;
            _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
            _sndWl1 = seq;
            _sndWl2 = ack;
            EnterEstablished();
        }

        if (ack >= _sndUna)
        {
            ProcessAck(now, segment, payload.Length);
            if (_state == TcpState.Closed)
            {
                return true;
            }
        }

        if (verdict == SegmentVerdict.AcceptControlOnly)
        {
            return true;
        }

        var receive = _receive!;

        // Seventh step, segment text: only while the peer may still send (before its FIN).
        if (!payload.IsEmpty && _state is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
        {
            ProcessText(now, seq, payload);
        }

        // Eighth step, FIN.
        if (segment.Has(TcpFlags.Fin) && !_finReceived)
        {
            var finSeq = seq + payload.Length;
            if (finSeq == receive.Next)
            {
                AcceptPeerFin(now);
            }
            else if (finSeq > receive.Next)
            {
                _pendingPeerFin = finSeq;
            }
        }
        else if (_pendingPeerFin is { } pending && pending == receive.Next && !_finReceived)
        {
            AcceptPeerFin(now);
        }

        return true;
    }

    /// <summary>SND.UNA &lt;= SEG.ACK &lt;= SND.MAX: new data acknowledged, duplicate ACKs and window updates.</summary>
    private void ProcessAck(Instant now, in TcpSegmentRepr segment, int payloadLength)
    {
        var ack = segment.AcknowledgmentNumber;
        var seq = segment.SequenceNumber;
        var scaledWindow = segment.Window << _sndWindowShift;
        var flightBefore = _sndMax - _sndUna;
        var freedData = 0;

        if (ack > _sndUna)
        {
            freedData = OnAcknowledgment(now, ack);
        }
        else if (!_sackAgreed && payloadLength == 0 && !segment.Has(TcpFlags.Fin) && scaledWindow == _sndWnd && _sndMax > _sndUna)
        {
            // RFC 5681 §2: a duplicate ACK carries no data, no SYN/FIN, repeats SND.UNA and the window,
            // and arrives while data is outstanding. With SACK they are not counted: RACK decides loss (RFC 8985 §6).
            // One a lost path MTU probe explains is no congestion (RFC 4821 §7.5): NewReno does not count it.
            Stats.DuplicateAcks++;
            if (!DuplicateAckOfLostProbe(ack) && _congestion.OnDuplicateAck(ack, _sndMax - _sndUna, _sndMax) == CongestionSignal.RetransmitFirstUnacknowledged)
            {
                Stats.FastRetransmits++;
                _fastRetransmitPending = true;
                _timing = false;
            }
        }

        if (_sackAgreed && _state is not (TcpState.SynReceived or TcpState.Closed))
        {
            OnAckWithScoreboard(now, segment.Options.Sack, freedData, flightBefore);
        }

        // Window update (§3.10.7.4): only from a segment newer than the last one that set it.
        if (_sndWl1 < seq || (_sndWl1 == seq && _sndWl2 <= ack))
        {
            _sndWnd = scaledWindow;
            _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
            _sndWl1 = seq;
            _sndWl2 = ack;
            if (_sndWnd > 0)
            {
                _persistAt = null;
                _persistBackoff = 0;
            }
        }

        // Our FIN is acknowledged once SEG.ACK passes it.
        if (_finQueued && _sndUna == _send.End + 1)
        {
            switch (_state)
            {
                case TcpState.FinWait1:
                    _state = TcpState.FinWait2;
                    break;
                case TcpState.Closing:
                    EnterTimeWait(now);
                    break;
                case TcpState.LastAck:
                    EnterClosed(TcpEvent.Closed);
                    break;
                default:
                    break;
            }
        }
    }

    /// <summary>
    /// SND.UNA advances to <paramref name="ack"/>: free the buffer, sample the RTT, run NewReno congestion control
    /// (with SACK, <see cref="OnAckWithScoreboard"/> does). Returns the data bytes freed.
    /// </summary>
    private int OnAcknowledgment(Instant now, SeqNumber ack)
    {
        var flightBefore = _sndMax - _sndUna;
        var newlyAcked = ack - _sndUna;
        _sndUna = ack;
        if (_sndNxt < ack)
        {
            // After a go-back-N rewind the receiver may acknowledge past SND.NXT (it had buffered the rest).
            _sndNxt = ack;
        }

        var freedData = _send.AcknowledgeTo(ack);
        Stats.BytesAcked += freedData;
        if (freedData > 0 && _writableWanted)
        {
            _writableWanted = false;
            _events.Enqueue(TcpEvent.Writable);
        }

        if (_timing && ack > _timedSeq)
        {
            _timing = false;
            _rtt.OnSample(now - _timedAt);
        }

        _consecutiveTimeouts = 0;
        _fullSizedTimeouts = 0;
        OnPathMtuProbeAcknowledged(now);
        OnProbeRepairAcknowledged();

        // Congestion control counts data only: the ACK of a SYN or FIN neither grows cwnd nor ends recovery.
        if (!_sackAgreed && freedData > 0 && _congestion.OnNewAck(ack, freedData, flightBefore - newlyAcked, now, _rtt.SmoothedRtt) == CongestionSignal.RetransmitFirstUnacknowledged)
        {
            Stats.FastRetransmits++;
            _fastRetransmitPending = true;
            _timing = false;
        }

        // RFC 6298 §5.2/§5.3: stop the timer when everything is acknowledged, otherwise restart it.
        _retransmitAt = _sndUna == _sndMax ? null : now + _rtt.Rto;
        return freedData;
    }

    /// <summary>Seventh step: place the bytes (trimmed to the window), then decide how soon to acknowledge.</summary>
    private void ProcessText(Instant now, SeqNumber seq, ReadOnlySpan<byte> payload)
    {
        var receive = _receive!;
        var inOrder = seq == receive.Next;
        NoteArrivalForSack(seq, payload.Length, receive.Next);
        var filledHole = receive.HasOutOfOrderData;
        var advanced = receive.Write(seq, payload, out var stored);
        Stats.BytesReceived += stored;

        if (advanced > 0 && !_readableQueued)
        {
            _readableQueued = true;
            _events.Enqueue(TcpEvent.Readable);
        }

        if (!inOrder || (filledHole && advanced > 0) || stored < payload.Length)
        {
            // RFC 5681 §4.2: an out-of-order segment, or one that fills a hole, is acknowledged at once; so is a
            // duplicate or trimmed segment, to resynchronise the sender.
            _ackNow = true;
            return;
        }

        // RFC 9293 §3.8.6.3 / RFC 1122 §4.2.3.2: acknowledge at least every second full-sized segment,
        // otherwise within the delayed-ACK timeout.
        _unackedBytes += payload.Length;
        if (_unackedBytes >= 2 * _sendMss || _config.DelayedAckTimeout == TimeSpan.Zero)
        {
            OweAckForInOrderData(now);
        }
        else
        {
            _delayedAckAt ??= now + _config.DelayedAckTimeout;
            _shortSegmentAckDelayed |= payload.Length < _sendMss;
        }
    }

    private void AcceptPeerFin(Instant now)
    {
        _finReceived = true;
        _pendingPeerFin = null;
        _ackNow = true;
        _events.Enqueue(TcpEvent.PeerClosed);
        switch (_state)
        {
            case TcpState.SynReceived:
            case TcpState.Established:
                _state = TcpState.CloseWait;
                break;
            case TcpState.FinWait1:
                // Our FIN not yet acknowledged: simultaneous close (§3.6, figure 13).
                _state = TcpState.Closing;
                break;
            case TcpState.FinWait2:
                EnterTimeWait(now);
                break;
            default:
                break;
        }
    }
}

using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>Segment production and the retransmission timer.</summary>
public sealed partial class TcpConnection
{
    /// <summary>
    /// Produces the next segment to send, if any: header in <paramref name="header"/>, payload copied into
    /// <paramref name="payloadBuffer"/> (at most its length and at most the send MSS). Call until it returns false.
    /// Priority: a pending RST, the immediate ACKs of a burst, the SYN, a fast retransmission, new data or FIN, then a
    /// bare ACK or window probe.
    /// </summary>
    public bool PollTransmit(Instant now, Span<byte> payloadBuffer, out TcpSegmentRepr header, out int payloadLength)
    {
        payloadLength = 0;
        if (_resetPending)
        {
            _resetPending = false;
            header = _reset;
            Stats.SegmentsSent++;
            return true;
        }

        if (TryTakeBurstAck(out header))
        {
            return true;
        }

        switch (_state)
        {
            case TcpState.Closed:
            case TcpState.Listen:
                return false;
            case TcpState.SynSent:
            case TcpState.SynReceived:
                if (_sndNxt == InitialSendSequence)
                {
                    header = EmitSyn(now);
                    return true;
                }

                return _state == TcpState.SynReceived && TryEmitAck(out header);
            default:
                break;
        }

        if (_fastRetransmitPending)
        {
            _fastRetransmitPending = false;
            if (_sndUna < _sndMax)
            {
                header = EmitData(now, _sndUna, _sendMss, payloadBuffer, out payloadLength, advance: false);
                return true;
            }
        }

        if (_sackAgreed && TryEmitLost(now, payloadBuffer, out header, out payloadLength))
        {
            return true;
        }

        if (TryResendLostProbe(now, payloadBuffer, out header, out payloadLength))
        {
            return true;
        }

        if (_tailLossProbePending && TryEmitTailLossProbe(now, payloadBuffer, out header, out payloadLength))
        {
            return true;
        }

        if (TryEmitNewData(now, payloadBuffer, out header, out payloadLength))
        {
            return true;
        }

        // A pending ACK goes first and on its own: the probe below is unacceptable at the peer by design, so an
        // acknowledgment riding on it would be ignored, and two backoffs in step could withhold it for ever.
        if (TryEmitAck(out header))
        {
            return true;
        }

        if (_probePending || _keepAlivePending)
        {
            // RFC 9293 §3.8.6.1 and §3.8.4: a probe the receiver must answer with its current window. An already
            // acknowledged sequence number (SND.UNA - 1) without data is unacceptable there, so it elicits an
            // ACK without consuming sequence space.
            if (_probePending)
            {
                Stats.ZeroWindowProbes++;
            }
            else
            {
                Stats.KeepAliveProbes++;
            }

            _probePending = false;
            _keepAlivePending = false;
            header = MakeHeader(_sndUna - 1, TcpFlags.Ack);
            AfterEmit(header);
            return true;
        }

        ArmPersistTimerIfWindowClosed(now);
        return false;
    }

    private bool TryEmitAck(out TcpSegmentRepr header)
    {
        header = default;
        if (!_ackNow)
        {
            return false;
        }

        // SND.MAX, not the possibly rewound SND.NXT: after a go-back-N rewind SND.NXT can lie below the peer's
        // RCV.NXT, and a pure ACK carrying it would be unacceptable there (and its ACK field ignored). Except into
        // a closed window: there only SEG.SEQ = RCV.NXT is acceptable (RFC 9293 §3.10.7.4), the window's right edge
        // SND.UNA + SND.WND = SND.UNA, as Linux's tcp_acceptable_seq sends. SND.MAX lies past it whenever bytes
        // beyond were lost, and SND.NXT past a FIN the zero window did not take: the ACK answering the peer's
        // keep-alive would be unacceptable, and the peer would take us for silent. SND.UNA is at worst below RCV.NXT
        // (an ACK still on its way), which draws the ACK that fixes it.
        header = MakeHeader(_sndWnd == 0 ? _sndUna : _sndMax, TcpFlags.Ack);
        if (_replicatedUpTo is not null && header.AcknowledgmentNumber == _lastAckSent && header.AcknowledgmentNumber != ReceiveNext
            && header.Window << _rcvWindowShift == _lastAdvertisedWindow)
        {
            // Held on replication, this ACK would repeat the last one, window and all, and read as a duplicate ACK
            // (RFC 5681 §2); the replicated point's advance sends it.
            _ackNow = false;
            _delayedAckAt = null;
            header = default;
            return false;
        }

        AfterEmit(header);
        return true;
    }

    private TcpSegmentRepr EmitSyn(Instant now)
    {
        var synAck = _state == TcpState.SynReceived;
        byte? windowScale = synAck
            ? (_windowScalingAgreed ? (byte)_rcvWindowShift : null)
            : _config.WindowScaleShift;
        var header = new TcpSegmentRepr
        {
            SourcePort = LocalPort,
            DestinationPort = RemotePort,
            SequenceNumber = InitialSendSequence,
            AcknowledgmentNumber = synAck ? ReceiveNext : default,
            Flags = synAck ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn,

            // RFC 7323 §2.2: the window on a SYN is never scaled.
            Window = (ushort)Math.Min(_receive?.Window ?? _config.ReceiveBufferSize, MaxWindowField),
            Options = new TcpOptions
            {
                MaxSegmentSize = (ushort)_config.MaxSegmentSize,
                WindowScale = windowScale,

                // RFC 2018 §2: offered on a SYN when enabled; a SYN,ACK carries it only when the SYN did.
                SackPermitted = synAck ? _sackAgreed : _config.SelectiveAcknowledgment,
            },
        };

        CountSequenceSpaceSent(now, InitialSendSequence, 1);
        _sndNxt = InitialSendSequence + 1;
        _sndMax = SeqNumber.Max(_sndMax, _sndNxt);
        _retransmitAt ??= now + _rtt.Rto;
        _lastAdvertisedWindow = header.Window;
        ClearAckState();
        Stats.SegmentsSent++;
        return header;
    }

    /// <summary>New data (or the FIN) from SND.NXT, within min(SND.WND, cwnd) and sender-side SWS avoidance.</summary>
    private bool TryEmitNewData(Instant now, Span<byte> payloadBuffer, out TcpSegmentRepr header, out int payloadLength)
    {
        header = default;
        payloadLength = 0;
        if (_state is not (TcpState.Established or TcpState.FinWait1 or TcpState.CloseWait or TcpState.Closing or TcpState.LastAck))
        {
            return false;
        }

        var dataEnd = _send.End;
        var finPending = _finQueued && _sndNxt <= dataEnd;
        var available = dataEnd - _sndNxt;
        if (available <= 0 && !finPending)
        {
            return false;
        }

        if (TryEmitPathMtuProbe(now, payloadBuffer, available, out header, out payloadLength, out var holdingForProbe))
        {
            return true;
        }

        if (holdingForProbe)
        {
            return false;
        }

        var mss = Math.Min(_sendMss, payloadBuffer.Length);
        var inFlight = _sndNxt - _sndUna;
        var usable = UsableSendWindow(mss);
        var length = Math.Max(0, Math.Min(Math.Min(available, mss), usable));
        var withFin = finPending && _sndNxt + length == dataEnd;

        if (length == 0 && !withFin)
        {
            return false;
        }

        if (length > 0 && length < mss && !withFin && !ShortSegmentAllowed(length, available, inFlight))
        {
            return false;
        }

        header = EmitData(now, _sndNxt, length, payloadBuffer, out payloadLength, advance: true);
        return true;
    }

    /// <summary>
    /// Bytes beyond those in flight that the peer's window and cwnd let go now: with SACK cwnd holds the scoreboard's
    /// pipe (RFC 6675), and <paramref name="segmentSize"/> is what fast recovery lets go above it; without SACK NewReno's
    /// allowance (limited transmit and recovery's inflation included) holds SND.NXT - SND.UNA.
    /// </summary>
    private int UsableSendWindow(int segmentSize)
    {
        var inFlight = _sndNxt - _sndUna;
        return _sackAgreed
            ? Math.Min(_sndWnd - inFlight, ScoreboardSendBudget(segmentSize))
            : Math.Min(_sndWnd, _congestion.SendAllowance) - inFlight;
    }

    /// <summary>
    /// Whether a short (sub-MSS) segment of new data goes out now, or waits for more bytes to fill it. Segments are cut
    /// from the send buffer, not from each write, so waiting is what turns a stream of writes into full segments.
    /// </summary>
    private bool ShortSegmentAllowed(int length, int available, int inFlight)
    {
        // Nothing in flight: nothing would come back to release a held segment; sending is also the override timer's
        // job done at once (RFC 9293 §3.8.6.2.1). Half the largest window: the peer's window is small, not our queue.
        if (inFlight == 0 || length >= _maxSndWnd / 2)
        {
            return true;
        }

        // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): the window cut the segment short, and bytes wait behind it.
        if (length < available)
        {
            return false;
        }

        // The application's write is still coming in: its next bytes fill this segment once an ACK frees room.
        if (_writeIncomplete)
        {
            return false;
        }

        // Nagle (RFC 896, RFC 9293 §3.7.4) with Minshall's refinement, as Linux: hold the short segment only while an
        // earlier short one is unacknowledged. A stream of writes then sends at most one short segment per round trip
        // (the next writes fill the held one), while a reply that ends in a short segment is not held for the
        // peer's delayed ACK of the full ones before it. Without Nagle (TCP_NODELAY) the end of the queue goes now.
        return !_config.Nagle || !(_shortSegmentEnd > _sndUna && _shortSegmentEnd <= _sndNxt);
    }

    /// <summary>Emits up to <paramref name="maxLength"/> bytes from <paramref name="from"/>, with a FIN when they end the stream.</summary>
    private TcpSegmentRepr EmitData(Instant now, SeqNumber from, int maxLength, Span<byte> payloadBuffer, out int payloadLength, bool advance)
    {
        var dataEnd = _send.End;
        var available = Math.Max(0, dataEnd - from);
        var length = Math.Min(Math.Min(available, maxLength), payloadBuffer.Length);
        if (length > 0)
        {
            _send.CopyRange(from, from + length, payloadBuffer);
        }

        var fin = _finQueued && from + length == dataEnd;
        var flags = TcpFlags.Ack;
        if (fin)
        {
            flags |= TcpFlags.Fin;
        }

        if (length > 0 && from + length == dataEnd)
        {
            flags |= TcpFlags.Psh;
        }

        var header = MakeHeader(from, flags);
        var consumed = length + (fin ? 1 : 0);
        CountSequenceSpaceSent(now, from, consumed);
        var end = from + consumed;
        if (advance)
        {
            _sndNxt = end;
        }

        var newData = end > _sndMax;
        if (newData && length > 0 && length < _sendMss)
        {
            _shortSegmentEnd = from + length;
        }

        _sndMax = SeqNumber.Max(_sndMax, end);
        _retransmitAt ??= now + _rtt.Rto;
        if (_sackAgreed)
        {
            OnScoreboardSent(now, from, end, newData);
        }

        Stats.BytesSent += length;
        payloadLength = length;
        AfterEmit(header);
        return header;
    }

    /// <summary>Retransmission accounting and RTT timing (RFC 6298 §3, Karn: time only first transmissions).</summary>
    private void CountSequenceSpaceSent(Instant now, SeqNumber from, int length)
    {
        if (from < _sndMax)
        {
            Stats.Retransmissions++;
            _timing = false;
            NotePathMtuProbeResent(from, length);
        }
        else if (!_timing && length > 0)
        {
            _timing = true;
            _timedSeq = from;
            _timedAt = now;
        }
    }

    private TcpSegmentRepr MakeHeader(SeqNumber seq, TcpFlags flags)
    {
        var ack = AckToSend;
        var sack = SackBlocksToSend();
        return new()
        {
            SourcePort = LocalPort,
            DestinationPort = RemotePort,
            SequenceNumber = seq,
            AcknowledgmentNumber = ack,
            Flags = flags,

            // Bytes received but held back from the ACK until replicated still count: the right edge stays put.
            Window = (ushort)(AdvertisableWindow(ReceiveNext - ack) >> _rcvWindowShift),
            Options = sack.Count == 0 ? default : new TcpOptions { Sack = sack },
        };
    }

    /// <summary>Every segment after the SYN carries ACK and our window, so it answers any pending ACK.</summary>
    private void AfterEmit(in TcpSegmentRepr header)
    {
        _lastAdvertisedWindow = header.Window << _rcvWindowShift;
        ClearAckState();
        Stats.SegmentsSent++;
    }

    private void ClearAckState()
    {
        _lastAckSent = AckToSend;
        _ackNow = false;
        _delayedAckAt = null;
        _unackedBytes = 0;
        _shortSegmentAckDelayed = false;

        // An immediate ACK built during a burst covers the in-order data before it: the burst owes no ACK for that.
        _burstAckOwed = false;
    }

    /// <summary>RFC 9293 §3.8.6.1: with data waiting, nothing in flight and a zero window, the persist timer runs.</summary>
    private void ArmPersistTimerIfWindowClosed(Instant now)
    {
        var hasData = _send.End > _sndNxt;
        if (_sndWnd == 0 && hasData && _sndNxt == _sndUna && _retransmitAt is null && _persistAt is null
            && _state is TcpState.Established or TcpState.FinWait1 or TcpState.CloseWait or TcpState.Closing or TcpState.LastAck)
        {
            _persistAt = now + _rtt.Rto;
        }
    }

    /// <summary>
    /// RFC 6298 §5.4-5.6: back off and collapse cwnd (RFC 5681 §3.1); then go-back-N from SND.UNA, or with SACK resend
    /// what the scoreboard does not hold as SACKed (RFC 8985 §6.3).
    /// </summary>
    private void OnRetransmissionTimeout(Instant now)
    {
        _retransmitAt = null;
        if (_sndUna == _sndMax)
        {
            return;
        }

        _consecutiveTimeouts++;
        _timeoutsSinceHeard++;
        Stats.RetransmissionTimeouts++;
        var limit = _state is TcpState.SynSent or TcpState.SynReceived ? _config.MaxSynRetransmissions : _config.MaxRetransmissions;
        if (_consecutiveTimeouts > limit)
        {
            // RFC 9293 §3.8.3, threshold R2: give up.
            EnterClosed(TcpEvent.TimedOut);
            return;
        }

        _rtt.OnTimeout();
        _timing = false;
        _fastRetransmitPending = false;
        _retransmitAt = now + _rtt.Rto;
        if (_state is TcpState.SynSent or TcpState.SynReceived)
        {
            _handshakeTimedOut = true;
            _sndNxt = _sndUna;
            return;
        }

        DetectBlackHole(now);
        _congestion.OnRetransmissionTimeout(_sndMax - _sndUna, _sndMax);
        if (_sackAgreed)
        {
            OnRetransmissionTimeoutWithScoreboard();
        }
        else
        {
            // Go-back-N resends a lost probe's bytes with everything else.
            _sndNxt = _sndUna;
            _probeRepairing = false;
        }
    }
}

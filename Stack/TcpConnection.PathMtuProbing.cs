using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// Packetization-layer path MTU discovery (RFC 4821, RFC 8899), beside the ICMP reports of
/// <see cref="HandlePacketTooBig"/>: black-hole detection lowers the send MSS when full-sized segments vanish without a
/// report, and probes made of real queued data raise it again. Sizes are payload bytes, as the MSS is. A probe is lost
/// (RFC 4821 §7.5) when the data after it is acknowledged and it is not: with SACK, RACK marks it lost while later
/// segments are selectively acknowledged; without SACK, <see cref="CongestionControl.DuplicateAckThreshold"/> duplicate
/// ACKs name its first byte; on either, when the retransmission timer sends it again; and when an ICMP report quotes it
/// (<see cref="NarrowPathMtuSearch"/>).
/// </summary>
public sealed partial class TcpConnection
{
    /// <summary>The largest MSS the connection may reach: the configured bound (the route's MTU) and the peer's MSS.</summary>
    private int _mssCeiling;

    /// <summary>The largest probe payload known (or, after a black hole, assumed) to pass the path without options.</summary>
    private int _searchLow;

    /// <summary>The largest probe payload still worth trying: one below the smallest that failed, or the ceiling.</summary>
    private int _searchHigh;

    /// <summary>When the next probe may go (RFC 8899 PROBE_TIMER / PMTU_RAISE_TIMER); null while no search is due.</summary>
    private Instant? _probeDueAt;

    /// <summary>An ICMP report lowered the MSS (it carries no time): the raise timer starts at the next send.</summary>
    private bool _raiseTimerUnarmed;

    // The probe in flight (RFC 4821 §7.4, one at a time): its sequence range, its payload and its option bytes.
    private bool _probeInFlight;
    private SeqNumber _probeStart;
    private SeqNumber _probeEnd;
    private int _probeSize;
    private int _probeOptionsLength;

    /// <summary>Consecutive retransmission timeouts of a segment longer than the base (RFC 4821 §7.2).</summary>
    private int _fullSizedTimeouts;

    /// <summary>Without SACK: duplicate ACKs naming the probe's first byte, each one a segment after the probe that arrived.</summary>
    private int _probeDuplicateAcks;

    // Without SACK, a lost probe's bytes still to send again at the MSS (the scoreboard does this with SACK): from
    // _probeRepairNext to _probeRepairEnd, and until SND.UNA passes _probeRepairEnd the duplicate ACKs are the probe's.
    private bool _probeRepairing;
    private SeqNumber _probeRepairNext;
    private SeqNumber _probeRepairEnd;

    /// <summary>The handshake settled the send MSS: it is the search's ceiling, and nothing is due below it.</summary>
    private void StartPathMtuSearchAt(int mss)
    {
        _mssCeiling = mss;
        _searchLow = mss;
        _searchHigh = mss;
        _probeDueAt = null;
        _raiseTimerUnarmed = false;
        _probeInFlight = false;
        _probeRepairing = false;
        _fullSizedTimeouts = 0;
    }

    /// <summary>
    /// The send MSS moves to <paramref name="mss"/> (an ICMP report, a black hole, a probe): SMSS follows in the
    /// congestion controller with cwnd kept in bytes, and the RTT sample in progress is dropped (Karn: the segments timed
    /// are no longer those the path carries).
    /// </summary>
    private void ChangeSendMss(int mss)
    {
        _sendMss = mss;
        _congestion.ChangeSenderMss(mss);
        _timing = false;
    }

    /// <summary>
    /// An ICMP report lowered the MSS to <paramref name="mss"/> (<see cref="HandlePacketTooBig"/>): a packet of that MSS
    /// plus the option room the engine keeps is what the report says passes, and the search up from there starts after
    /// the raise interval (RFC 8899 §4.6.2, RFC 1191 §6.3): the route may widen, or the report may have been stale.
    /// A search under way ends there, whatever the report quoted: its lower bound was the old MSS, which the path no
    /// longer carries, so nothing it learned holds. A probe in flight was longer than the new MSS and counts as lost;
    /// the caller sends its bytes again with everything else longer than the new MSS.
    /// </summary>
    private void OnPathMtuLoweredByReport(int mss)
    {
        if (_probeInFlight)
        {
            Stats.PathMtuProbesLost++;
        }

        _searchLow = Math.Min(_mssCeiling, mss + TcpSegment.MaxOptionsLength);
        _searchHigh = _mssCeiling;
        _probeInFlight = false;
        _probeRepairing = false;
        _probeDueAt = null;
        _raiseTimerUnarmed = _config.PathMtuProbing;
    }

    /// <summary>
    /// An ICMP report quoting the probe in flight, with an MTU that carries the send MSS but not the probe (RFC 8899
    /// §4.6.2, RFC 4821 §7.6): the probe is lost, and the search's upper bound comes down to the largest probe payload
    /// the reported MTU carries with the probe's option bytes, so the next probe (due at once) is sized by the report
    /// rather than by halving. <paramref name="segmentSize"/> is the MSS the reported MTU allows
    /// (<see cref="SegmentSizeForPathMtu"/>, which keeps the engine's full option room). False when the report is not
    /// about the probe or says the probe fitted: then it is no report about this search at all (stale or forged), and
    /// nothing changes. What a forger who hits the probe's sequence range gains: a search that ends lower, for one
    /// raise interval; the MSS itself never goes down this way.
    /// </summary>
    private bool NarrowPathMtuSearch(SeqNumber quotedSequence, int segmentSize)
    {
        if (!_probeInFlight || quotedSequence < _probeStart || quotedSequence >= _probeEnd)
        {
            return false;
        }

        var largestProbe = segmentSize + TcpSegment.MaxOptionsLength - _probeOptionsLength;
        if (largestProbe >= _probeSize)
        {
            return false;
        }

        OnPathMtuProbeLost();
        _searchHigh = Math.Min(_searchHigh, largestProbe);
        ResendLostProbe();
        return true;
    }

    /// <summary>
    /// A retransmission timeout (before the congestion window collapses): RFC 4821 §7.2 and RFC 8899 §4.3, as Linux with
    /// tcp_mtu_probing = 1. When the segment at SND.UNA is longer than the base MSS and has timed out
    /// <see cref="TcpConfig.BlackHoleTimeouts"/> times in a row, the path is taken for a black hole: the MSS falls to the
    /// base and the search up to the ceiling starts at once (RFC 8899 §5.2, BASE then SEARCHING). What keeps this from mistaking other
    /// losses for one: only timeouts count, never a loss found by SACK or duplicate ACKs (congestion drops some segments,
    /// a black hole every full-sized one); the count starts over at any ACK of new data and whenever a segment no
    /// longer than the base times out (size cannot explain that loss, a dead or cut-off peer can); a lost probe is the
    /// probe's failure, not a black hole. A false alarm (an outage of three timeouts) costs the search's few probes back up.
    /// </summary>
    private void DetectBlackHole(Instant now)
    {
        if (!_config.PathMtuProbing || _sendMss <= _config.BaseSegmentSize || (_probeInFlight && _probeStart == _sndUna))
        {
            return;
        }

        var timedOut = _sackAgreed && _scoreboard.Count > 0 ? _scoreboard[0].Length : Math.Min(_sendMss, _sndMax - _sndUna);
        if (timedOut <= _config.BaseSegmentSize)
        {
            _fullSizedTimeouts = 0;
            return;
        }

        if (++_fullSizedTimeouts < _config.BlackHoleTimeouts)
        {
            return;
        }

        _fullSizedTimeouts = 0;
        Stats.PathMtuBlackHoles++;
        _searchHigh = _mssCeiling;
        _searchLow = _config.BaseSegmentSize;
        _probeInFlight = false;
        _probeDueAt = now;
        ChangeSendMss(_config.BaseSegmentSize);
    }

    /// <summary>
    /// No loss is being recovered, so a loss of the probe would be the probe's own (RFC 4821 §7.4): with SACK, no
    /// recovery episode; without it, no NewReno fast recovery, no lost probe's bytes still unacknowledged, and no
    /// go-back-N after a timeout still resending (a probe must be new data: bytes sent before may already be at the
    /// peer, and an ACK of them would prove nothing).
    /// </summary>
    private bool LossFreeForProbing => _sndNxt == _sndMax && (_sackAgreed
        ? _recovery == LossRecovery.None
        : !_congestion.InFastRecovery && !_probeRepairing);

    /// <summary>
    /// The size of the probe to send now, or 0 (RFC 4821 §7.3-7.4, RFC 8899 §5.1.3): a search is due, no probe is in
    /// flight and no loss is being recovered (<see cref="LossFreeForProbing"/>). Binary search between the largest
    /// size known to pass and the smallest known to fail, never above the ceiling nor <paramref name="bufferLength"/>;
    /// a range narrower than the step ends the search, and the next one starts after the raise interval.
    /// </summary>
    private int PathMtuProbeSize(Instant now, int bufferLength)
    {
        if (_raiseTimerUnarmed)
        {
            _raiseTimerUnarmed = false;
            _probeDueAt = now + _config.PathMtuRaiseInterval;
        }

        if (!_config.PathMtuProbing || _probeInFlight || !LossFreeForProbing || _probeDueAt is not { } due || now < due)
        {
            return 0;
        }

        var low = Math.Max(_searchLow, _sendMss);
        var high = Math.Min(_searchHigh, bufferLength);
        if (high == _mssCeiling && high > low && high - low < _config.PathMtuSearchStep)
        {
            // The last probe of a search that got this close tries the ceiling itself: only a probe of that size
            // proves the MSS the route and the peer allow (any smaller one leaves the engine's option room below it).
            return high;
        }

        if (high - low < _config.PathMtuSearchStep)
        {
            // RFC 8899 §5.2 SEARCH_COMPLETE: the next search, after the raise timer, tries up to the ceiling again.
            _searchHigh = _mssCeiling;
            _probeDueAt = _sendMss < _mssCeiling ? now + _config.PathMtuRaiseInterval : null;
            return 0;
        }

        return Math.Min(high, low + Math.Max(_config.PathMtuSearchStep, (high - low + 1) / 2));
    }

    /// <summary>
    /// Sends the probe when one is due and the data, the peer's window and cwnd all hold it (RFC 4821 §7.4: a probe is
    /// made of real queued data, and there is none when nothing waits to be sent). Without SACK the queued data and the
    /// peer's window must also hold <see cref="CongestionControl.DuplicateAckThreshold"/> segments after it, as Linux's
    /// tcp_mtu_probe asks (cwnd need only hold the probe: the ACK clock of the flight sends them): their duplicate ACKs
    /// are what tells a lost probe within a round trip, where a probe with nothing behind it is found lost only by the
    /// retransmission timer, and cwnd collapses with it. <paramref name="holding"/>: the probe does not fit yet but will
    /// once the flight's ACKs free room (the windows themselves hold it), and new data waits meanwhile, as Linux's
    /// tcp_mtu_probe makes tcp_write_xmit wait: otherwise a flow the peer's window or cwnd limits sends a segment of one
    /// MSS as each ACK frees one, and room for a larger one never opens.
    /// </summary>
    private bool TryEmitPathMtuProbe(Instant now, Span<byte> payloadBuffer, int available, out TcpSegmentRepr header, out int payloadLength, out bool holding)
    {
        header = default;
        payloadLength = 0;
        holding = false;
        var size = PathMtuProbeSize(now, payloadBuffer.Length);
        var needed = _sackAgreed ? size : size + (CongestionControl.DuplicateAckThreshold * _sendMss);
        if (size == 0 || available < needed)
        {
            return false;
        }

        var inFlight = _sndNxt - _sndUna;
        if (_sndWnd - inFlight < needed || UsableSendWindow(size) < size)
        {
            holding = inFlight > 0 && _sndWnd >= needed && _congestion.Window >= size;
            return false;
        }

        var start = _sndNxt;
        header = EmitData(now, start, size, payloadBuffer, out payloadLength, advance: true);
        _probeInFlight = true;
        _probeStart = start;
        _probeEnd = start + payloadLength;
        _probeSize = payloadLength;
        _probeOptionsLength = header.Options.PaddedLength;
        _probeDuplicateAcks = 0;
        Stats.PathMtuProbes++;
        return true;
    }

    /// <summary>
    /// An acceptable ACK moved SND.UNA (RFC 4821 §7.6.1): the probe is delivered when the cumulative ACK covers it and
    /// none of its bytes was ever sent again, so only the peer's receipt of the probe's own bytes can raise the MSS. The
    /// new MSS keeps the engine's option room (RFC 6691) inside what the probe proved, except at the ceiling, which the
    /// route's MTU already sized with that room.
    /// </summary>
    private void OnPathMtuProbeAcknowledged(Instant now)
    {
        if (!_probeInFlight || _sndUna < _probeEnd)
        {
            return;
        }

        _probeInFlight = false;
        _searchLow = Math.Max(_searchLow, _probeSize);
        _probeDueAt = now;
        var mss = _probeSize >= _mssCeiling
            ? _mssCeiling
            : Math.Min(_mssCeiling, _probeSize + _probeOptionsLength - TcpSegment.MaxOptionsLength);
        if (mss > _sendMss)
        {
            Stats.PathMtuIncreases++;
            ChangeSendMss(mss);
        }
    }

    /// <summary>
    /// The probe was lost (RFC 4821 §7.5): the search's upper bound comes down below it and the next probe may follow
    /// (the search was due when the probe went, and stays due). Not a congestion signal: the caller leaves cwnd alone.
    /// </summary>
    private void OnPathMtuProbeLost()
    {
        _probeInFlight = false;
        _searchHigh = Math.Min(_searchHigh, _probeSize - 1);
        Stats.PathMtuProbesLost++;
    }

    /// <summary>Bytes of the probe are sent again (timeout, tail-loss probe, RACK): the probe did not get through.</summary>
    private void NotePathMtuProbeResent(SeqNumber from, int length)
    {
        if (_probeInFlight && from < _probeEnd && from + length > _probeStart)
        {
            OnPathMtuProbeLost();
        }
    }

    /// <summary>
    /// The lost probe's bytes go out again at the send MSS, outside any recovery episode and with cwnd untouched (as
    /// Linux's tcp_simple_retransmit): with SACK the scoreboard marks them lost (the probe is the one segment longer than
    /// the MSS) and resends them within cwnd; without it <see cref="TryResendLostProbe"/> does, the bytes having left the
    /// network already.
    /// </summary>
    private void ResendLostProbe()
    {
        if (_sackAgreed)
        {
            _scoreboard.MarkLongerThanLost(_sendMss);
            return;
        }

        _probeRepairing = true;
        _probeRepairNext = SeqNumber.Max(_probeStart, _sndUna);
        _probeRepairEnd = _probeEnd;
    }

    /// <summary>
    /// A duplicate ACK without SACK (RFC 5681 §2): true when it belongs to the probe and congestion control must not
    /// count it. While the probe is in flight, a duplicate ACK naming its first byte says a segment after it arrived and
    /// it did not; at <see cref="CongestionControl.DuplicateAckThreshold"/> of them (reordering rarely reaches three, as
    /// for a fast retransmit) the probe is lost: this is RFC 4821 §7.5's "not acknowledged when the data after it is",
    /// the loss SACK would show, within a round trip and without the timeout's stall, as Linux's tcp_fastretrans_alert
    /// with SND.UNA at the probe. Until its bytes are acknowledged, the later segments' duplicate ACKs are still the
    /// probe's: a fast recovery would halve cwnd for a loss the probe's size explains.
    /// </summary>
    private bool DuplicateAckOfLostProbe(SeqNumber ack)
    {
        if (_probeRepairing)
        {
            return ack == _sndUna;
        }

        if (!_probeInFlight || ack != _probeStart)
        {
            return false;
        }

        if (++_probeDuplicateAcks >= CongestionControl.DuplicateAckThreshold)
        {
            OnPathMtuProbeLost();
            ResendLostProbe();
        }

        return true;
    }

    /// <summary>Without SACK: the next piece of a lost probe's bytes, at most one MSS, when some are still to resend.</summary>
    private bool TryResendLostProbe(Instant now, Span<byte> payloadBuffer, out TcpSegmentRepr header, out int payloadLength)
    {
        header = default;
        payloadLength = 0;
        var from = SeqNumber.Max(_probeRepairNext, _sndUna);
        if (!_probeRepairing || from >= _probeRepairEnd)
        {
            return false;
        }

        header = EmitData(now, from, Math.Min(_sendMss, _probeRepairEnd - from), payloadBuffer, out payloadLength, advance: false);
        _probeRepairNext = from + Math.Max(1, payloadLength);
        return true;
    }

    /// <summary>SND.UNA moved: a lost probe's bytes all acknowledged end its repair; a timeout's go-back-N ends it too.</summary>
    private void OnProbeRepairAcknowledged()
    {
        if (_probeRepairing && _sndUna >= _probeRepairEnd)
        {
            _probeRepairing = false;
        }
    }

    /// <summary>
    /// RACK marked segments lost (RFC 8985 §6.2): when the probe is all that was lost, it is a lost probe, not congestion
    /// (RFC 4821 §7.5, as Linux's tcp_mtup_probe_failed with tcp_simple_retransmit): the probe's failure is noted and its
    /// bytes go out again at the send MSS without a recovery episode. Returns whether that was the case.
    /// </summary>
    private bool OnlyThePathMtuProbeLost()
    {
        if (!_probeInFlight || !_scoreboard.LostOnlyWithin(_probeStart, _probeEnd))
        {
            return false;
        }

        OnPathMtuProbeLost();
        return true;
    }
}

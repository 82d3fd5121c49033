using System.Runtime.InteropServices;
using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// The sender's record of every segment in flight, used when SACK was agreed: the SACK scoreboard of RFC 6675 §3
/// (which bytes the receiver holds beyond SND.UNA) kept per transmitted segment, as Linux keeps its retransmission
/// queue, together with the RACK state of RFC 8985 §6 (the most recently sent segment known delivered, and when).
/// Loss is decided by time (RACK), not by counting duplicate ACKs; <see cref="Pipe"/> is RFC 6675's estimate of the
/// bytes still in the network. Sans-IO: every time comes in as an <see cref="Instant"/>.
/// <para>
/// Invariant: entries are sorted, contiguous and disjoint, from SND.UNA to SND.MAX; each is one transmitted segment
/// (data and possibly the FIN). An entry is in flight unless it is SACKed or marked lost and not yet resent.
/// </para>
/// </summary>
internal sealed class SendScoreboard
{
    /// <summary>RFC 6675 §2 DupThresh: with no reordering seen, this many SACKed segments make the reorder window zero.</summary>
    public const int DuplicateThreshold = 3;

    /// <summary>RFC 8985 §6.2 step 4: how long RACK.reo_wnd stays inflated after D-SACKs, in recoveries.</summary>
    private const int ReorderWindowPersist = 16;

    private readonly List<SentSegment> _segments = [];

    /// <summary>RACK.xmit_ts and RACK.end_seq: the most recently sent segment known to have been delivered.</summary>
    private Instant _rackXmitTs;
    private SeqNumber _rackEndSeq;
    private bool _rackValid;

    /// <summary>RACK.fack: the highest sequence number known delivered (for reordering detection, RFC 8985 §6.2 step 3).</summary>
    private SeqNumber _rackFack;
    private bool _rackFackValid;

    /// <summary>RACK.dsack_round: a D-SACK inflates the reorder window once per round trip (RFC 8985 §6.2 step 4).</summary>
    private SeqNumber? _dsackRound;
    private int _reorderWindowPersist;

    /// <summary>RACK.rtt: the RTT of the most recently delivered segment, as RACK measures it.</summary>
    public TimeSpan RackRtt { get; private set; }

    /// <summary>RACK.min_RTT: the smallest RACK.rtt seen.</summary>
    public TimeSpan? MinRtt { get; private set; }

    /// <summary>RACK.reordering_seen: a segment was delivered after a later one, without being resent.</summary>
    public bool ReorderingSeen { get; private set; }

    /// <summary>RACK.reo_wnd_mult: grows with each round trip that brought a D-SACK.</summary>
    public int ReorderWindowMultiplier { get; private set; } = 1;

    /// <summary>
    /// How many segments a full send buffer holds: the list is sized to it at the first transmission, so a running
    /// transfer never grows it (no allocation per segment), and an idle connection that never sent holds nothing.
    /// </summary>
    public int ExpectedSegments { get; set; } = 16;

    /// <summary>Segments tracked (in flight, SACKed or lost).</summary>
    public int Count => _segments.Count;

    /// <summary>Segments the receiver has SACKed.</summary>
    public int SackedSegments { get; private set; }

    /// <summary>Bytes the receiver has SACKed beyond SND.UNA.</summary>
    public int SackedBytes { get; private set; }

    /// <summary>True when some segment is marked lost and waits to be resent.</summary>
    public bool HasLost
    {
        get
        {
            foreach (var segment in _segments)
            {
                if (segment.Lost)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// RFC 6675 §4 "pipe": bytes in the network, the segments neither SACKed nor marked lost (a lost segment that was
    /// resent is in flight again, so its retransmission counts, as RFC 6675's second term does).
    /// </summary>
    public int Pipe
    {
        get
        {
            var pipe = 0;
            foreach (var segment in _segments)
            {
                if (!segment.Sacked && !segment.Lost)
                {
                    pipe += segment.Length;
                }
            }

            return pipe;
        }
    }

    /// <summary>The segment at <paramref name="index"/> (sorted by sequence number).</summary>
    public SentSegment this[int index] => _segments[index];

    /// <summary>
    /// Records a transmission of [<paramref name="start"/>, <paramref name="end"/>) at <paramref name="now"/>. New
    /// sequence space (at or past the last entry's end) is appended; a retransmission restamps the entries it covers
    /// and clears their lost mark (splitting an entry it covers only in part).
    /// </summary>
    public void OnSent(SeqNumber start, SeqNumber end, Instant now)
    {
        if (end <= start)
        {
            return;
        }

        if (_segments.Count == 0 || start >= _segments[^1].End)
        {
            if (_segments.Capacity == 0)
            {
                _segments.Capacity = ExpectedSegments;
            }

            _segments.Add(new SentSegment(start, end, now));
            return;
        }

        var index = SplitAt(start);
        SplitAt(end);
        var segments = CollectionsMarshal.AsSpan(_segments);
        for (var i = index; i < segments.Length && segments[i].Start < end; i++)
        {
            segments[i].SentAt = now;
            segments[i].Retransmitted = true;
            segments[i].Lost = false;
        }
    }

    /// <summary>
    /// SND.UNA moved to <paramref name="ack"/>: forgets the segments below it and feeds RACK with the newly delivered
    /// ones (RFC 8985 §6.2 steps 1-3). Returns the bytes newly delivered that were not SACKed before.
    /// </summary>
    public int OnCumulativeAck(SeqNumber ack, Instant now)
    {
        var delivered = 0;
        var removed = 0;
        foreach (var segment in _segments)
        {
            if (segment.End > ack)
            {
                break;
            }

            removed++;
            if (segment.Sacked)
            {
                SackedSegments--;
                SackedBytes -= segment.Length;
            }
            else
            {
                delivered += segment.Length;
                OnDelivered(segment, now);
            }
        }

        _segments.RemoveRange(0, removed);
        if (_segments.Count > 0 && _segments[0].Start < ack)
        {
            // Acknowledged in part (the peer acknowledges what it has, whatever our segment boundaries).
            var segments = CollectionsMarshal.AsSpan(_segments);
            var trimmed = ack - segments[0].Start;
            delivered += segments[0].Sacked ? 0 : trimmed;
            if (segments[0].Sacked)
            {
                SackedBytes -= trimmed;
            }

            segments[0].Start = ack;
        }

        return delivered;
    }

    /// <summary>
    /// Marks the segments the SACK blocks cover (RFC 2018 §3, RFC 6675 §3 Update()) and feeds RACK with each newly
    /// SACKed one. A first block below <paramref name="sndUna"/> or inside the second is a D-SACK (RFC 2883 §4): it
    /// reports a duplicate, not new data, and sets <paramref name="dsack"/>. Returns the bytes newly SACKed.
    /// </summary>
    public int ApplySack(in SackBlockList blocks, SeqNumber sndUna, SeqNumber sndMax, Instant now, out bool dsack)
    {
        dsack = blocks.Count > 0
            && (blocks[0].Right <= sndUna || (blocks.Count > 1 && blocks[0].Left >= blocks[1].Left && blocks[0].Right <= blocks[1].Right));
        var newlySacked = 0;
        for (var b = dsack ? 1 : 0; b < blocks.Count; b++)
        {
            var block = blocks[b];

            // Blocks outside [SND.UNA, SND.MAX] or empty are stale or forged: RFC 2018 gives them no meaning.
            if (block.Right <= block.Left || block.Left < sndUna || block.Right > sndMax)
            {
                continue;
            }

            var segments = CollectionsMarshal.AsSpan(_segments);
            for (var i = FirstEndingAfter(block.Left); i < segments.Length && segments[i].Start < block.Right; i++)
            {
                ref var segment = ref segments[i];
                if (segment.Sacked || segment.Start < block.Left || segment.End > block.Right)
                {
                    continue;
                }

                segment.Sacked = true;
                segment.Lost = false;
                SackedSegments++;
                SackedBytes += segment.Length;
                newlySacked += segment.Length;
                OnDelivered(segment, now);
            }
        }

        if (dsack)
        {
            OnDsack(sndMax);
        }

        return newlySacked;
    }

    /// <summary>
    /// RACK_detect_loss (RFC 8985 §6.2 step 5): marks lost every segment sent before the last one delivered whose
    /// reorder window has passed. Returns how long until the next one would be due (the reorder timer), or null.
    /// </summary>
    public TimeSpan? DetectLoss(Instant now, TimeSpan reorderWindow, out int newlyLost)
    {
        newlyLost = 0;
        if (!_rackValid)
        {
            return null;
        }

        TimeSpan? timeout = null;
        var segments = CollectionsMarshal.AsSpan(_segments);
        for (var i = 0; i < segments.Length; i++)
        {
            ref var segment = ref segments[i];
            if (segment.Sacked || segment.Lost || !SentBefore(segment.SentAt, segment.End, _rackXmitTs, _rackEndSeq))
            {
                continue;
            }

            var remaining = segment.SentAt + RackRtt + reorderWindow - now;
            if (remaining <= TimeSpan.Zero)
            {
                segment.Lost = true;
                newlyLost++;
            }
            else if (timeout is not { } t || remaining > t)
            {
                timeout = remaining;
            }
        }

        return timeout;
    }

    /// <summary>
    /// RACK.reo_wnd (RFC 8985 §6.2 step 4): zero while no reordering was seen and either loss recovery is on or
    /// DupThresh segments are SACKed; otherwise a quarter of the minimum RTT per multiplier, at most SRTT.
    /// </summary>
    public TimeSpan ReorderWindow(bool inRecovery, TimeSpan? smoothedRtt)
    {
        if (!ReorderingSeen && (inRecovery || SackedSegments >= DuplicateThreshold))
        {
            return TimeSpan.Zero;
        }

        var window = (MinRtt ?? TimeSpan.Zero) * ReorderWindowMultiplier / 4;
        return smoothedRtt is { } srtt && srtt < window ? srtt : window;
    }

    /// <summary>A loss recovery ended: after 16 of them without a D-SACK the reorder window is back to its base (RFC 8985 §6.2 step 4).</summary>
    public void OnRecoveryEnded()
    {
        if (_reorderWindowPersist > 0 && --_reorderWindowPersist == 0)
        {
            ReorderWindowMultiplier = 1;
        }
    }

    /// <summary>
    /// The retransmission timer expired (RFC 8985 §6.3, RFC 6675 §5.1): every segment not SACKed is lost. When the
    /// segment at SND.UNA is marked SACKed the receiver reneged (RFC 2018 §8: it must have acknowledged it otherwise),
    /// so every SACK mark is dropped first and everything is resent.
    /// </summary>
    public void OnRetransmissionTimeout()
    {
        var reneged = _segments.Count > 0 && _segments[0].Sacked;
        var segments = CollectionsMarshal.AsSpan(_segments);
        for (var i = 0; i < segments.Length; i++)
        {
            if (reneged)
            {
                segments[i].Sacked = false;
            }

            segments[i].Lost = !segments[i].Sacked;
        }

        if (reneged)
        {
            SackedSegments = 0;
            SackedBytes = 0;
        }
    }

    /// <summary>
    /// A link on the path takes no segment longer than <paramref name="length"/> bytes (ICMP "packet too big"): every
    /// segment in flight longer than that, not SACKed, was dropped there and is marked lost. Returns how many.
    /// </summary>
    public int MarkLongerThanLost(int length)
    {
        var marked = 0;
        var segments = CollectionsMarshal.AsSpan(_segments);
        for (var i = 0; i < segments.Length; i++)
        {
            if (!segments[i].Sacked && !segments[i].Lost && segments[i].Length > length)
            {
                segments[i].Lost = true;
                marked++;
            }
        }

        return marked;
    }

    /// <summary>Whether some segment is marked lost and every one marked lost lies within <paramref name="start"/>..<paramref name="end"/>.</summary>
    public bool LostOnlyWithin(SeqNumber start, SeqNumber end)
    {
        var any = false;
        foreach (var segment in _segments)
        {
            if (segment.Lost)
            {
                if (segment.Start < start || segment.End > end)
                {
                    return false;
                }

                any = true;
            }
        }

        return any;
    }

    /// <summary>The first segment marked lost (RFC 6675 NextSeg rule 1, in sequence order), or -1.</summary>
    public int FirstLost()
    {
        for (var i = 0; i < _segments.Count; i++)
        {
            if (_segments[i].Lost)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Forgets everything (the connection will not send this data again).</summary>
    public void Clear()
    {
        _segments.Clear();
        SackedSegments = 0;
        SackedBytes = 0;
    }

    /// <summary>RACK_sent_after, negated: was (t1, seq1) sent before (t2, seq2)? Ties in time are broken by sequence.</summary>
    private static bool SentBefore(Instant t1, SeqNumber seq1, Instant t2, SeqNumber seq2) =>
        t1 < t2 || (t1 == t2 && seq1 < seq2);

    /// <summary>RFC 8985 §6.2 steps 1-3 for one segment delivered (cumulatively acknowledged or SACKed) at <paramref name="now"/>.</summary>
    private void OnDelivered(in SentSegment segment, Instant now)
    {
        var rtt = now - segment.SentAt;

        // Step 2: an ACK faster than the minimum RTT for a resent segment acknowledges the original transmission;
        // it says nothing about when the resent one arrived.
        if (segment.Retransmitted && MinRtt is { } minRtt && rtt < minRtt)
        {
            return;
        }

        RackRtt = rtt;
        MinRtt = MinRtt is { } min && min <= rtt ? min : rtt;
        if (!_rackValid || SentBefore(_rackXmitTs, _rackEndSeq, segment.SentAt, segment.End))
        {
            _rackXmitTs = segment.SentAt;
            _rackEndSeq = segment.End;
            _rackValid = true;
        }

        // Step 3: delivered below the highest delivered, and never resent: the network reordered it.
        if (!segment.Retransmitted && _rackFackValid && segment.End < _rackFack)
        {
            ReorderingSeen = true;
        }

        if (!_rackFackValid || segment.End > _rackFack)
        {
            _rackFack = segment.End;
            _rackFackValid = true;
        }
    }

    private void OnDsack(SeqNumber sndMax)
    {
        if (_dsackRound is { } round && _rackFack >= round)
        {
            _dsackRound = null;
        }

        if (_dsackRound is null)
        {
            _dsackRound = sndMax;
            ReorderWindowMultiplier++;
            _reorderWindowPersist = ReorderWindowPersist;
        }
    }

    /// <summary>Index of the first segment whose end lies after <paramref name="seq"/>.</summary>
    private int FirstEndingAfter(SeqNumber seq)
    {
        int low = 0, high = _segments.Count;
        while (low < high)
        {
            var mid = (low + high) / 2;
            if (_segments[mid].End <= seq)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }

        return low;
    }

    /// <summary>Makes <paramref name="seq"/> an entry boundary; returns the index of the entry starting there (or Count).</summary>
    private int SplitAt(SeqNumber seq)
    {
        var index = FirstEndingAfter(seq);
        if (index == _segments.Count || _segments[index].Start == seq)
        {
            return index;
        }

        var whole = _segments[index];
        _segments[index] = whole with { End = seq };
        _segments.Insert(index + 1, whole with { Start = seq });
        if (whole.Sacked)
        {
            SackedSegments++;
        }

        return index + 1;
    }
}

/// <summary>One transmitted segment in the <see cref="SendScoreboard"/>: its sequence space and what is known of it.</summary>
internal record struct SentSegment(SeqNumber Start, SeqNumber End, Instant SentAt)
{
    /// <summary>Sequence space covered: data bytes, plus one for a FIN.</summary>
    public readonly int Length => End - Start;

    /// <summary>Sent more than once; RACK's RTT from it may belong to an earlier transmission.</summary>
    public bool Retransmitted { get; set; }

    /// <summary>The receiver reported holding it (RFC 2018).</summary>
    public bool Sacked { get; set; }

    /// <summary>Declared lost and not resent since.</summary>
    public bool Lost { get; set; }
}

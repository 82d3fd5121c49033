using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// SACK negotiation and blocks (RFC 2018, D-SACK RFC 2883), and loss recovery from the scoreboard: RACK (RFC 8985 §6),
/// the tail-loss probe (RFC 8985 §7) and PRR (RFC 6937), each driven segment by segment against a scripted peer.
/// </summary>
[Trait("Category", "Stack")]
public sealed class SackRecoveryTests
{
    private static readonly SeqNumber LocalIss = ScriptedPeer.LocalIss;
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);
    private static readonly TcpOptions PeerSynOptions = new() { MaxSegmentSize = 1000, WindowScale = 3, SackPermitted = true };

    /// <summary>An active open with a peer that offers SACK, whose SYN,ACK comes back after 100 ms (SRTT 100 ms).</summary>
    private static ScriptedPeer EstablishedWithSack(TcpConfig? config = null)
    {
        var peer = TcpConnectionRetransmissionTests.EstablishedWithRtt100(config, PeerSynOptions);
        Assert.True(peer.Connection.SackAgreed);
        return peer;
    }

    /// <summary>Data byte k (from 0) of our stream.</summary>
    private static SeqNumber Byte(int k) => LocalIss + 1 + k;

    private static TcpSegmentRepr AckWithSack(ScriptedPeer peer, SeqNumber ack, params (int From, int To)[] blocks)
    {
        var list = default(SackBlockList);
        foreach (var (from, to) in blocks)
        {
            list = list.Add(new SackBlock(Byte(from), Byte(to)));
        }

        return ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, ack, options: new TcpOptions { Sack = list });
    }

    [Fact]
    public void Syn_must_offer_sack_permitted_and_the_syn_ack_must_echo_it_only_when_offered()
    {
        var connect = TcpConnection.Connect(ScriptedPeer.DefaultConfig, 1, 2, LocalIss, Instant.Zero);
        Assert.True(connect.PollTransmit(Instant.Zero, new byte[64], out var syn, out _));
        Assert.True(syn.Options.SackPermitted);

        var off = TcpConnection.Connect(ScriptedPeer.DefaultConfig with { SelectiveAcknowledgment = false }, 1, 2, LocalIss, Instant.Zero);
        Assert.True(off.PollTransmit(Instant.Zero, new byte[64], out var plainSyn, out _));
        Assert.False(plainSyn.Options.SackPermitted);

        var offered = ScriptedPeer.Listen();
        offered.Send(ScriptedPeer.Segment(TcpFlags.Syn, ScriptedPeer.RemoteIss, options: PeerSynOptions));
        Assert.True(offered.Single().Header.Options.SackPermitted);
        Assert.True(offered.Connection.SackAgreed);

        var notOffered = ScriptedPeer.Listen();
        notOffered.Send(ScriptedPeer.Segment(TcpFlags.Syn, ScriptedPeer.RemoteIss, options: new TcpOptions { MaxSegmentSize = 1000 }));
        Assert.False(notOffered.Single().Header.Options.SackPermitted);
        Assert.False(notOffered.Connection.SackAgreed);
    }

    [Fact]
    public void Out_of_order_data_must_be_reported_with_the_latest_block_first_and_a_duplicate_once_as_d_sack()
    {
        var peer = EstablishedWithSack();
        var next = peer.RemoteNext;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, next + 1000, LocalIss + 1), new byte[500]);
        var first = peer.Single();
        Assert.Equal(next, first.Ack);
        Assert.Equal(1, first.Header.Options.Sack.Count);
        Assert.Equal(new SackBlock(next + 1000, next + 1500), first.Header.Options.Sack[0]);

        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, next + 3000, LocalIss + 1), new byte[500]);
        var second = peer.Single().Header.Options.Sack;
        Assert.Equal(2, second.Count);
        Assert.Equal(new SackBlock(next + 3000, next + 3500), second[0]); // RFC 2018 §4: the triggering segment first
        Assert.Equal(new SackBlock(next + 1000, next + 1500), second[1]);

        // The hole fills: the ACK jumps over the first range and only the second is reported.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, next, LocalIss + 1), new byte[1000]);
        var filled = peer.Single();
        Assert.Equal(next + 1500, filled.Ack);
        Assert.Equal(new SackBlock(next + 3000, next + 3500), filled.Header.Options.Sack[0]);
        Assert.Equal(1, filled.Header.Options.Sack.Count);

        // A segment received twice is reported once in a D-SACK block (RFC 2883 §4), ahead of the others.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, next, LocalIss + 1), new byte[1000]);
        var duplicate = peer.Single().Header.Options.Sack;
        Assert.Equal(new SackBlock(next, next + 1000), duplicate[0]);
        Assert.Equal(new SackBlock(next + 3000, next + 3500), duplicate[1]);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, next + 1500, LocalIss + 1), new byte[1500]);
        var after = peer.Single();
        Assert.Equal(next + 3500, after.Ack);
        Assert.Equal(0, after.Header.Options.Sack.Count);
    }

    [Fact]
    public void Sack_blocks_must_not_be_sent_when_sack_was_not_agreed()
    {
        var peer = ScriptedPeer.Established();
        Assert.False(peer.Connection.SackAgreed);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext + 1000, LocalIss + 1), new byte[500]);
        Assert.Equal(0, peer.Single().Header.Options.Sack.Count);
    }

    [Fact]
    public void Lost_middle_segment_must_be_retransmitted_on_the_third_sack_without_a_timeout()
    {
        var peer = EstablishedWithSack();
        peer.Connection.Write(new byte[10_000]);
        Assert.Equal(10, peer.Drain().Count);
        peer.Now += 100 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(2000)));
        peer.AssertSilent();

        // Segment 3 (bytes 2000-2999) was lost; 4, 5 and 6 arrive and are SACKed. Below DupThresh SACKed segments RACK
        // waits a quarter of the minimum RTT for reordering; at the third the reorder window is zero.
        peer.Send(AckWithSack(peer, Byte(2000), (3000, 4000)));
        peer.AssertSilent();
        peer.Send(AckWithSack(peer, Byte(2000), (3000, 5000)));
        peer.AssertSilent();
        peer.Send(AckWithSack(peer, Byte(2000), (3000, 6000)));
        var retransmit = peer.Single();
        Assert.Equal(Byte(2000), retransmit.Seq);
        Assert.Equal(1000, retransmit.Payload.Length);
        Assert.True(peer.Connection.InLossRecovery);
        Assert.Equal(3, peer.Connection.SackedSegments);
        Assert.Equal(4000, peer.Connection.SlowStartThreshold); // half of the 8000 bytes in flight at the loss

        for (var end = 7000; end <= 10_000; end += 1000)
        {
            peer.Send(AckWithSack(peer, Byte(2000), (3000, end)));
            peer.Drain();
        }

        peer.Now += 100 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(10_000)));
        Assert.False(peer.Connection.InLossRecovery);
        Assert.Equal(4000, peer.Connection.CongestionWindow); // RFC 6937: cwnd = ssthresh at the end of recovery
        Assert.Equal(0, peer.Connection.Stats.RetransmissionTimeouts);
        Assert.Equal(1, peer.Connection.Stats.Retransmissions);
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void One_sacked_segment_must_mark_the_hole_lost_after_the_reorder_window()
    {
        var peer = EstablishedWithSack();
        peer.Connection.Write(new byte[4000]);
        Assert.Equal(4, peer.Drain().Count);
        peer.Now += 100 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(2000)));
        var ackedAt = peer.Now;
        peer.Send(AckWithSack(peer, Byte(2000), (3000, 4000)));
        peer.AssertSilent();

        // RACK.reo_wnd = min_RTT / 4 = 25 ms, counted from when the last delivered segment's RTT says the hole was due.
        Assert.Equal(ackedAt + (25 * Ms), peer.FireNextTimer());
        var retransmit = peer.Single();
        Assert.Equal(Byte(2000), retransmit.Seq);
        Assert.Equal(0, peer.Connection.Stats.RetransmissionTimeouts);
    }

    [Fact]
    public void New_data_sent_while_a_hole_waits_out_its_reorder_window_must_not_postpone_its_retransmission()
    {
        var peer = EstablishedWithSack();
        peer.Connection.Write(new byte[20_000]);
        Assert.Equal(10, peer.Drain().Count);
        peer.Now += 100 * Ms;
        var ackedAt = peer.Now;

        // Segment 1 lost, segment 2 SACKed: the SACK takes a segment out of the pipe and a new one goes, while the hole
        // waits out RACK's reorder window (min_RTT / 4 = 25 ms). The new data re-arms the probe timeout (2 SRTT), but not
        // in place of the reorder timer, which would leave the hole to the probe, or to the RTO if the probe is lost.
        peer.Send(AckWithSack(peer, Byte(0), (1000, 2000)));
        Assert.Equal([Byte(10_000)], peer.Drain().Select(s => s.Seq));
        Assert.Equal(ackedAt + (25 * Ms), peer.FireNextTimer());
        Assert.Equal(Byte(0), peer.Drain()[0].Seq);
        Assert.True(peer.Connection.InLossRecovery);
        Assert.Equal(0, peer.Connection.Stats.TailLossProbes);
    }

    [Fact]
    public void Probe_of_a_one_segment_flight_must_go_in_place_of_the_retransmission_timeout()
    {
        var peer = EstablishedWithSack();
        peer.Connection.Write(new byte[1000]);
        var sentAt = peer.Now;
        Assert.Single(peer.Drain());

        // PTO = 2 SRTT + WCDelAckT + 1 ms = 401 ms lies beyond the RTO (300 ms): RFC 8985 §7.2 schedules the probe at the
        // RTO's time, and the probe goes in place of the timeout: no loss window, nothing marked lost.
        Assert.Equal(sentAt + (300 * Ms), peer.FireNextTimer());
        Assert.Equal(Byte(0), peer.Single().Seq);
        Assert.Equal(1, peer.Connection.Stats.TailLossProbes);
        Assert.Equal(0, peer.Connection.Stats.RetransmissionTimeouts);
        Assert.Equal(10_000, peer.Connection.CongestionWindow);
        Assert.Equal(sentAt + (600 * Ms), peer.Connection.PollTimeout()); // the RTO, re-armed as the probe went (§7.3)

        peer.Now += 100 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(1000)));
        Assert.Equal(0, peer.Connection.Stats.RetransmissionTimeouts);
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Sack_block_ending_at_a_fin_received_out_of_order_must_cover_the_fin()
    {
        var peer = EstablishedWithSack();
        var next = peer.RemoteNext;

        // The last 500 bytes and the FIN arrive ahead of a hole. The block's right edge follows the last sequence number
        // received (RFC 2018 §3), the FIN's, as Linux reports it: otherwise the sender cannot match the block to its
        // last segment, and RACK never learns that it was delivered.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack | TcpFlags.Fin, next + 1000, LocalIss + 1), new byte[500]);
        var ack = peer.Single();
        Assert.Equal(next, ack.Ack);
        Assert.Equal(new SackBlock(next + 1000, next + 1501), ack.Header.Options.Sack[0]);

        // The hole fills: the FIN is taken with the data before it, and no block is left.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, next, LocalIss + 1), new byte[1000]);
        var filled = peer.Single();
        Assert.Equal(next + 1501, filled.Ack);
        Assert.Equal(0, filled.Header.Options.Sack.Count);
    }

    [Fact]
    public void Lost_retransmission_must_be_detected_by_time_and_sent_again_without_a_timeout()
    {
        var peer = EstablishedWithSack();
        peer.Connection.Write(new byte[20_000]);
        Assert.Equal(10, peer.Drain().Count);
        peer.Now += 100 * Ms;
        peer.Send(AckWithSack(peer, Byte(0), (1000, 2000)));
        peer.Send(AckWithSack(peer, Byte(0), (1000, 3000)));
        peer.Send(AckWithSack(peer, Byte(0), (1000, 4000)));
        var first = peer.Drain();
        Assert.Equal(Byte(0), first[0].Seq);

        // The retransmission is lost too. New data sent after it is SACKed one RTT later: RACK marks it lost again.
        for (var end = 5000; end <= 10_000; end += 1000)
        {
            peer.Send(AckWithSack(peer, Byte(0), (1000, end)));
            peer.Drain();
        }

        peer.Now += 100 * Ms;
        peer.Send(AckWithSack(peer, Byte(0), (1000, 11_000)));
        var again = peer.Drain();
        Assert.Contains(again, s => s.Seq == Byte(0));
        Assert.Equal(0, peer.Connection.Stats.RetransmissionTimeouts);
    }

    [Fact]
    public void Lost_tail_segment_must_be_recovered_by_a_probe_before_the_retransmission_timeout()
    {
        var peer = EstablishedWithSack();
        peer.Connection.Write(new byte[10_000]);
        var sent = peer.Drain();
        Assert.Equal(10, sent.Count);
        var sentAt = peer.Now;

        // Everything but the last segment arrives.
        peer.Now += 100 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(9000)));
        peer.AssertSilent();
        var ackedAt = peer.Now;

        // PTO = 2 SRTT (plus the clock granularity) after the ACK, before the RTO (SRTT 100 ms, RTO 250 ms).
        var fired = peer.FireNextTimer();
        Assert.Equal(ackedAt + (201 * Ms), fired);
        var probe = peer.Single();
        Assert.Equal(Byte(9000), probe.Seq);
        Assert.Equal(1000, probe.Payload.Length);
        Assert.Equal(1, peer.Connection.Stats.TailLossProbes);

        peer.Now += 100 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(10_000)));
        Assert.Equal(0, peer.Connection.Stats.RetransmissionTimeouts);
        Assert.True(peer.Now - sentAt <= 401 * Ms, "recovered in about four RTTs from the first send, two after the last ACK");
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Probe_must_send_new_data_when_there_is_some()
    {
        var peer = EstablishedWithSack(ScriptedPeer.DefaultConfig with { InitialWindowSegments = 2 });
        peer.Connection.Write(new byte[5000]);
        Assert.Equal(2, peer.Drain().Count);
        peer.FireNextTimer();
        var probe = peer.Single();
        Assert.Equal(Byte(2000), probe.Seq); // beyond cwnd, within the peer's window (RFC 8985 §7.3)
        Assert.Equal(1, peer.Connection.Stats.TailLossProbes);
    }

    [Fact]
    public void Prr_must_send_in_proportion_to_deliveries_then_slow_start_back_to_ssthresh()
    {
        var peer = EstablishedWithSack();
        peer.Connection.Write(new byte[10_000]);
        Assert.Equal(10, peer.Drain().Count);
        peer.Now += 100 * Ms;

        // Segment 1 lost, segment 2 SACKed: after the reorder window RACK starts a recovery with 10000 bytes in flight
        // (RecoverFS), ssthresh 5000, pipe 8000; PRR lets the first retransmission go at once.
        peer.Send(AckWithSack(peer, Byte(0), (1000, 2000)));
        peer.AssertSilent();
        peer.FireNextTimer();
        Assert.Equal(Byte(0), peer.Single().Seq);
        Assert.Equal(5000, peer.Connection.SlowStartThreshold);
        Assert.Equal(9000, peer.Connection.CongestionWindow);
        peer.Connection.Write(new byte[20_000]);
        peer.AssertSilent();

        // Each ACK SACKs one more segment (prr_delivered += 1000). While pipe > ssthresh:
        // sndcnt = ceil(prr_delivered * 5000 / 10000) - prr_out; once pipe <= ssthresh (PRR-SSRB):
        // sndcnt = min(ssthresh - pipe, max(prr_delivered - prr_out, 1000) + 1000). cwnd = pipe + sndcnt.
        //   k  pipe  sndcnt  sent
        //   1  8000     0     0
        //   2  7000     0     0
        //   3  6000   500     1   (a partial segment's worth still sends one segment, as Linux counts in packets)
        //   4  6000     0     0
        //   5  5000     0     0   (PRR-SSRB from here: ssthresh - pipe = 0)
        //   6  4000  1000     1
        //   7  4000  1000     1
        //   8  4000  1000     1
        var sentPerAck = new List<int>();
        var windows = new List<int>();
        for (var k = 1; k <= 8; k++)
        {
            peer.Send(AckWithSack(peer, Byte(0), (1000, 2000 + (1000 * k))));
            windows.Add(peer.Connection.CongestionWindow);
            sentPerAck.Add(peer.Drain().Count);
        }

        Assert.Equal([0, 0, 1, 0, 0, 1, 1, 1], sentPerAck);
        Assert.Equal([8000, 7000, 6500, 6000, 5000, 5000, 5000, 5000], windows);

        // The retransmission arrives: the cumulative ACK passes RecoveryPoint, the recovery ends and cwnd = ssthresh.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(10_000)));
        Assert.False(peer.Connection.InLossRecovery);
        Assert.Equal(5000, peer.Connection.CongestionWindow);
        Assert.Equal(0, peer.Connection.Stats.RetransmissionTimeouts);
    }

    [Fact]
    public void Timeout_with_sack_must_resend_only_what_the_peer_does_not_hold()
    {
        var peer = EstablishedWithSack(ScriptedPeer.DefaultConfig with { InitialWindowSegments = 4 });
        peer.Connection.Write(new byte[4000]);
        Assert.Equal(4, peer.Drain().Count);
        peer.Now += 100 * Ms;
        peer.Send(AckWithSack(peer, Byte(0), (1000, 2000)));

        // Segment 1 is resent by RACK and lost again; nothing else comes back until the retransmission timer expires.
        List<Emitted> afterTimeout = [];
        for (var i = 0; i < 10 && peer.Connection.Stats.RetransmissionTimeouts == 0; i++)
        {
            peer.FireNextTimer();
            afterTimeout = peer.Drain();
        }

        Assert.Equal(1, peer.Connection.Stats.RetransmissionTimeouts);
        Assert.Equal([Byte(0)], afterTimeout.Select(s => s.Seq)); // cwnd is one segment
        Assert.Equal(1000, peer.Connection.CongestionWindow);

        // The peer had segment 2: the cumulative ACK jumps over it, and slow start resends 3 and 4, never 2.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(2000)));
        Assert.Equal([Byte(2000), Byte(3000)], peer.Drain().Select(s => s.Seq));
        Assert.True(peer.Connection.InLossRecovery);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, Byte(4000)));
        Assert.False(peer.Connection.InLossRecovery);
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Snapshot_must_record_that_sack_was_agreed()
    {
        var peer = EstablishedWithSack(ScriptedPeer.DefaultConfig with { RetainReadLog = true });
        var snapshot = peer.Connection.ExportState([]);
        Assert.True(snapshot.TSnapshot.TFlags.HasFlag(Mtcp.Wire.Control.TcpSnapshotFlags.SackPermitted));
        var plain = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { RetainReadLog = true });
        Assert.False(plain.Connection.ExportState([]).TSnapshot.TFlags.HasFlag(Mtcp.Wire.Control.TcpSnapshotFlags.SackPermitted));
    }
}

using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>Retransmission timer (RFC 6298), Karn's algorithm, fast retransmit and NewReno recovery (RFC 5681, 6582).</summary>
[Trait("Category", "Stack")]
public sealed class TcpConnectionRetransmissionTests
{
    private static readonly SeqNumber LocalIss = ScriptedPeer.LocalIss;
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// An active open whose SYN,ACK comes back after 100 ms: SRTT 100 ms, RTO 300 ms. The peer's SYN,ACK carries MSS
    /// 1000 and window scale 3, or <paramref name="peerSynOptions"/>.
    /// </summary>
    internal static ScriptedPeer EstablishedWithRtt100(TcpConfig? config = null, TcpOptions? peerSynOptions = null)
    {
        var now = Instant.FromMilliseconds(1000);
        var peer = new ScriptedPeer(TcpConnection.Connect(config ?? ScriptedPeer.DefaultConfig, 80, ScriptedPeer.RemotePort, LocalIss, now), now);
        peer.Single();
        peer.Now += 100 * Ms;
        var options = peerSynOptions ?? new TcpOptions { MaxSegmentSize = 1000, WindowScale = 3 };
        peer.Send(ScriptedPeer.Segment(TcpFlags.Syn | TcpFlags.Ack, ScriptedPeer.RemoteIss, LocalIss + 1, window: 20000, options: options));
        peer.Single();
        peer.Events();
        return peer;
    }

    [Fact]
    public void Syn_round_trip_must_seed_the_estimator()
    {
        var peer = EstablishedWithRtt100();
        Assert.Equal(100 * Ms, peer.Connection.SmoothedRtt);
        Assert.Equal(300 * Ms, peer.Connection.RetransmissionTimeout);
    }

    [Fact]
    public void Unacknowledged_data_must_be_resent_after_the_rto_with_backoff()
    {
        var peer = EstablishedWithRtt100();
        peer.Connection.Write(new byte[500]);
        var sentAt = peer.Now;
        var original = peer.Single();
        Assert.Equal(sentAt + (300 * Ms), peer.FireNextTimer());
        var again = peer.Single();
        Assert.Equal(original.Seq, again.Seq);
        Assert.Equal(original.Payload, again.Payload);
        Assert.Equal(600 * Ms, peer.Connection.RetransmissionTimeout);
        Assert.Equal(sentAt + (900 * Ms), peer.FireNextTimer());
        peer.Single();
        Assert.Equal(2, peer.Connection.Stats.RetransmissionTimeouts);
        Assert.Equal(2, peer.Connection.Stats.Retransmissions);
        Assert.Equal(1000, peer.Connection.CongestionWindow); // loss window: one SMSS
    }

    [Fact]
    public void Ack_of_retransmitted_data_must_not_be_sampled_karn()
    {
        var peer = EstablishedWithRtt100();
        peer.Connection.Write(new byte[500]);
        peer.Single();
        peer.FireNextTimer();
        peer.Single();
        peer.Now += 5 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 501));
        Assert.Equal(100 * Ms, peer.Connection.SmoothedRtt);
        Assert.Equal(600 * Ms, peer.Connection.RetransmissionTimeout); // backoff kept until a valid sample
        Assert.Null(peer.Connection.PollTimeout());

        peer.Connection.Write(new byte[100]);
        peer.Single();
        peer.Now += 100 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 601));
        Assert.Equal(100 * Ms, peer.Connection.SmoothedRtt);
        Assert.Equal(250 * Ms, peer.Connection.RetransmissionTimeout); // RTTVAR 37.5 ms after an exact sample
    }

    [Fact]
    public void New_ack_must_restart_the_timer_and_full_ack_must_stop_it()
    {
        var peer = EstablishedWithRtt100();
        peer.Connection.Write(new byte[2000]);
        peer.Drain();
        peer.Now += 50 * Ms;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1001));
        Assert.Equal(peer.Now + peer.Connection.RetransmissionTimeout, peer.Connection.PollTimeout());
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 2001));
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Too_many_timeouts_must_abort_the_connection()
    {
        var peer = EstablishedWithRtt100(ScriptedPeer.DefaultConfig with { MaxRetransmissions = 3 });
        peer.Connection.Write(new byte[10]);
        peer.Single();
        for (var i = 0; i < 3; i++)
        {
            peer.FireNextTimer();
            peer.Single();
        }

        peer.FireNextTimer();
        Assert.Equal(TcpState.Closed, peer.State);
        Assert.Equal([TcpEvent.TimedOut, TcpEvent.Closed], peer.Events());
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Timeout_must_go_back_to_snd_una_and_resume_when_the_receiver_acks_ahead()
    {
        var peer = EstablishedWithRtt100();
        peer.Connection.Write(new byte[5000]);
        Assert.Equal(5, peer.Drain().Count);
        peer.FireNextTimer();
        var resent = peer.Single(); // cwnd is one segment now
        Assert.Equal(LocalIss + 1, resent.Seq);

        // The receiver had the rest buffered: its ACK jumps past SND.NXT, nothing is sent twice.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 5001));
        Assert.Equal(LocalIss + 5001, peer.Connection.SendNext);
        peer.AssertSilent();
    }

    [Fact]
    public void Third_duplicate_ack_must_trigger_fast_retransmit_and_recovery()
    {
        var peer = EstablishedWithRtt100();
        peer.Connection.Write(new byte[6000]);
        Assert.Equal(6, peer.Drain().Count);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1001));
        peer.AssertSilent();
        for (var i = 0; i < 2; i++)
        {
            peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1001));
            peer.AssertSilent();
        }

        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1001));
        var retransmit = peer.Single();
        Assert.Equal(LocalIss + 1001, retransmit.Seq);
        Assert.Equal(1000, retransmit.Payload.Length);
        Assert.Equal(1, peer.Connection.Stats.FastRetransmits);
        Assert.Equal(3, peer.Connection.Stats.DuplicateAcks);
        Assert.True(peer.Connection.InFastRecovery);
        Assert.Equal(2500, peer.Connection.SlowStartThreshold); // half of the 5000 bytes in flight

        // A partial ACK (RFC 6582) retransmits the next hole at once.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 3001));
        var next = peer.Drain();
        Assert.Equal(LocalIss + 3001, next[0].Seq);
        Assert.True(peer.Connection.InFastRecovery);

        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 6001));
        Assert.False(peer.Connection.InFastRecovery);
    }

    [Fact]
    public void Duplicate_acks_must_release_new_segments_by_limited_transmit()
    {
        var peer = EstablishedWithRtt100(ScriptedPeer.DefaultConfig with { InitialWindowSegments = 2 });
        peer.Connection.Write(new byte[6000]);
        Assert.Equal(2, peer.Drain().Count);

        // The first ACK after the SYN,ACK changes the window, so it is a window update, not a duplicate.
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1));
        peer.AssertSilent();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1));
        Assert.Equal(LocalIss + 2001, peer.Single().Seq);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1));
        Assert.Equal(LocalIss + 3001, peer.Single().Seq);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1));
        Assert.Equal(LocalIss + 1, peer.Drain()[0].Seq); // third duplicate: fast retransmit
        Assert.Equal(1, peer.Connection.Stats.FastRetransmits);
    }

    [Fact]
    public void Window_changes_must_not_count_as_duplicate_acks()
    {
        var peer = EstablishedWithRtt100();
        peer.Connection.Write(new byte[3000]);
        peer.Drain();
        for (var i = 0; i < 4; i++)
        {
            peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1, window: (ushort)(16000 + i)));
        }

        Assert.Equal(0, peer.Connection.Stats.DuplicateAcks);
        Assert.Equal(0, peer.Connection.Stats.FastRetransmits);
    }
}

using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>RST generation and validation: RFC 9293 §3.5.2-3, §3.10.7, RFC 5961 §3 and §4.</summary>
[Trait("Category", "Stack")]
public sealed class TcpConnectionResetTests
{
    public static TheoryData<TcpState, TcpEvent> SynchronizedStates => new()
    {
        { TcpState.SynReceived, TcpEvent.Reset },
        { TcpState.Established, TcpEvent.Reset },
        { TcpState.FinWait1, TcpEvent.Reset },
        { TcpState.FinWait2, TcpEvent.Reset },
        { TcpState.CloseWait, TcpEvent.Reset },
        { TcpState.Closing, TcpEvent.Closed },
        { TcpState.LastAck, TcpEvent.Closed },
        { TcpState.TimeWait, TcpEvent.Closed },
    };

    [Theory]
    [MemberData(nameof(SynchronizedStates))]
    public void Reset_at_exactly_rcv_nxt_must_close(TcpState state, TcpEvent reported)
    {
        var peer = ScriptedPeer.For(state);
        peer.Events();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Rst, peer.Connection.ReceiveNext));
        Assert.Equal(TcpState.Closed, peer.State);
        var events = peer.Events();
        Assert.Equal(reported, events[0]);
        Assert.Equal(TcpEvent.Closed, events[^1]);
        peer.AssertSilent();
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Theory]
    [MemberData(nameof(SynchronizedStates))]
    public void Reset_outside_the_window_must_be_ignored(TcpState state, TcpEvent reported)
    {
        _ = reported;
        var peer = ScriptedPeer.For(state);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Rst, peer.Connection.ReceiveNext + 1_000_000));
        Assert.Equal(state, peer.State);
        peer.AssertSilent();
    }

    [Fact]
    public void Reset_in_the_window_but_not_at_rcv_nxt_must_get_a_challenge_ack()
    {
        var peer = ScriptedPeer.Established();
        var rcvNxt = peer.Connection.ReceiveNext;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Rst, rcvNxt + 100));
        Assert.Equal(TcpState.Established, peer.State);
        var challenge = peer.Single();
        Assert.Equal(TcpFlags.Ack, challenge.Flags);
        Assert.Equal(rcvNxt, challenge.Ack);
        Assert.Equal(ScriptedPeer.LocalIss + 1, challenge.Seq);
        Assert.Equal(1, peer.Connection.Stats.ChallengeAcks);
    }

    [Fact]
    public void Syn_in_a_synchronized_state_must_get_a_challenge_ack()
    {
        var peer = ScriptedPeer.Established();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Syn, peer.Connection.ReceiveNext + 10));
        Assert.Equal(TcpState.Established, peer.State);
        Assert.Equal(TcpFlags.Ack, peer.Single().Flags);
        Assert.Equal(1, peer.Connection.Stats.ChallengeAcks);
    }

    [Fact]
    public void Unacceptable_segment_must_be_answered_with_an_ack_and_dropped()
    {
        var peer = ScriptedPeer.Established();
        var rcvNxt = peer.Connection.ReceiveNext;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, rcvNxt - 2000, ScriptedPeer.LocalIss + 1), new byte[100]);
        var ack = peer.Single();
        Assert.Equal(rcvNxt, ack.Ack);
        Assert.Equal(0, peer.Connection.BytesReadable);
        Assert.Equal(1, peer.Connection.Stats.SegmentsRejected);
    }

    [Fact]
    public void Ack_of_unsent_data_must_be_answered_with_an_ack_and_dropped()
    {
        var peer = ScriptedPeer.Established();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, ScriptedPeer.LocalIss + 500), [1, 2, 3]);
        Assert.Equal(TcpFlags.Ack, peer.Single().Flags);
        Assert.Equal(ScriptedPeer.LocalIss + 1, peer.Connection.SendUnacknowledged);
        Assert.Equal(0, peer.Connection.BytesReadable);
    }

    [Fact]
    public void Abort_must_send_a_reset_where_the_peer_holds_state()
    {
        var peer = ScriptedPeer.CloseWait();
        peer.Events();
        peer.Connection.Abort(peer.Now);
        var rst = peer.Single();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(TcpState.Closed, peer.State);
        Assert.Equal([TcpEvent.Closed], peer.Events());
    }

    [Fact]
    public void Abort_in_time_wait_must_close_silently()
    {
        var peer = ScriptedPeer.TimeWait();
        peer.Connection.Abort(peer.Now);
        Assert.Equal(TcpState.Closed, peer.State);
        peer.AssertSilent();
    }

    [Fact]
    public void Closed_connection_must_answer_any_segment_but_a_reset_with_a_reset()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Abort(peer.Now);
        peer.Drain();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, new SeqNumber(777)), [1, 2]);
        var rst = peer.Single();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(new SeqNumber(777), rst.Seq);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Rst, peer.RemoteNext));
        peer.AssertSilent();
    }

    [Fact]
    public void Reset_for_a_segment_without_ack_must_acknowledge_its_whole_length()
    {
        var syn = ScriptedPeer.Segment(TcpFlags.Syn | TcpFlags.Fin, new SeqNumber(uint.MaxValue));
        Assert.True(TcpConnection.TryMakeReset(syn, 10, out var rst));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(new SeqNumber(0), rst.SequenceNumber);
        Assert.Equal(new SeqNumber(11), rst.AcknowledgmentNumber); // SEG.SEQ + SEG.LEN, across the wrap
        Assert.Equal(ScriptedPeer.LocalPort, rst.SourcePort);
        Assert.Equal(ScriptedPeer.RemotePort, rst.DestinationPort);
    }

    [Fact]
    public void Reset_must_never_answer_a_reset()
    {
        Assert.False(TcpConnection.TryMakeReset(ScriptedPeer.Segment(TcpFlags.Rst | TcpFlags.Ack, new SeqNumber(1), new SeqNumber(2)), 0, out _));
    }
}

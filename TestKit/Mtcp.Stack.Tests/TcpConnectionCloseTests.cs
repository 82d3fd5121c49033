using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>Closing: RFC 9293 §3.6 (both orders, simultaneous), TIME-WAIT for 2 MSL (§3.4.2).</summary>
[Trait("Category", "Stack")]
public sealed class TcpConnectionCloseTests
{
    private static readonly SeqNumber LocalIss = ScriptedPeer.LocalIss;

    [Fact]
    public void Fin_must_follow_the_buffered_data()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Write(new byte[1500]);
        peer.Connection.Close(peer.Now);
        Assert.Equal(TcpState.FinWait1, peer.State);
        Assert.Equal(0, peer.Connection.Write(new byte[1]));
        var segments = peer.Drain();
        Assert.Equal(2, segments.Count);
        Assert.Equal(TcpFlags.Ack, segments[0].Flags);
        Assert.Equal(TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Fin, segments[1].Flags);
        Assert.Equal(LocalIss + 1001, segments[1].Seq);
    }

    [Fact]
    public void Ack_of_our_fin_must_move_fin_wait_1_to_fin_wait_2()
    {
        var peer = ScriptedPeer.FinWait1();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 2));
        Assert.Equal(TcpState.FinWait2, peer.State);
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Fin_with_the_ack_of_our_fin_must_go_straight_to_time_wait()
    {
        var peer = ScriptedPeer.FinWait1();
        peer.SendData([], LocalIss + 2, extra: TcpFlags.Fin);
        Assert.Equal(TcpState.TimeWait, peer.State);
        Assert.Equal(peer.RemoteNext, peer.Single().Ack);
    }

    [Fact]
    public void Data_must_still_be_received_in_fin_wait_2()
    {
        var peer = ScriptedPeer.FinWait2();
        peer.SendData([1, 2, 3], LocalIss + 2);
        Assert.Equal(3, peer.Connection.Read(new byte[10]));
    }

    [Fact]
    public void Closing_must_enter_time_wait_when_our_fin_is_acknowledged()
    {
        var peer = ScriptedPeer.Closing();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 2));
        Assert.Equal(TcpState.TimeWait, peer.State);
    }

    [Fact]
    public void Time_wait_must_last_twice_the_msl_then_close()
    {
        var peer = ScriptedPeer.TimeWait();
        var entered = peer.Now;
        peer.Events();
        Assert.Equal(entered + TimeSpan.FromSeconds(60), peer.FireNextTimer());
        Assert.Equal(TcpState.Closed, peer.State);
        Assert.Equal([TcpEvent.Closed], peer.Events());
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Retransmitted_fin_in_time_wait_must_be_acknowledged_and_restart_the_timer()
    {
        var peer = ScriptedPeer.TimeWait();
        peer.Now += TimeSpan.FromSeconds(10);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack | TcpFlags.Fin, peer.RemoteNext - 1, LocalIss + 2));
        Assert.Equal(peer.RemoteNext, peer.Single().Ack);
        Assert.Equal(peer.Now + TimeSpan.FromSeconds(60), peer.Connection.PollTimeout());
        Assert.Equal(TcpState.TimeWait, peer.State);
    }

    [Fact]
    public void Passive_close_must_end_when_our_fin_is_acknowledged()
    {
        var peer = ScriptedPeer.LastAck();
        peer.Events();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 2));
        Assert.Equal(TcpState.Closed, peer.State);
        Assert.Equal([TcpEvent.Closed], peer.Events());
        peer.AssertSilent();
    }

    [Fact]
    public void Lost_fin_must_be_retransmitted_in_last_ack()
    {
        var peer = ScriptedPeer.LastAck();
        peer.FireNextTimer();
        var fin = peer.Single();
        Assert.Equal(TcpFlags.Ack | TcpFlags.Fin, fin.Flags);
        Assert.Equal(LocalIss + 1, fin.Seq);
    }

    [Fact]
    public void Peer_close_must_report_peer_closed_and_keep_writes_open()
    {
        var peer = ScriptedPeer.CloseWait();
        Assert.Contains(TcpEvent.PeerClosed, peer.Events());
        Assert.Equal(4, peer.Connection.Write([1, 2, 3, 4]));
        Assert.Equal(4, peer.Single().Payload.Length);
    }
}

using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>Data transfer: sequence wrap, ACK policy (RFC 9293 §3.8.6.3, RFC 5681 §4.2), flow control, reassembly.</summary>
[Trait("Category", "Stack")]
public sealed class TcpConnectionDataTests
{
    private static readonly SeqNumber LocalIss = ScriptedPeer.LocalIss;

    private static byte[] Bytes(int count, int start = 0) => Enumerable.Range(start, count).Select(i => (byte)(i * 7)).ToArray();

    [Fact]
    public void Data_must_cross_the_sequence_wrap_in_both_directions()
    {
        var peer = ScriptedPeer.Established();
        Assert.Equal(1500, peer.Connection.Write(Bytes(1500)));
        var segments = peer.Drain();
        Assert.Equal(2, segments.Count);
        Assert.Equal(LocalIss + 1, segments[0].Seq);
        Assert.Equal(LocalIss + 1001, segments[1].Seq);
        Assert.True(segments[1].Seq.Value < LocalIss.Value, "second segment starts past 2^32");
        Assert.Equal(Bytes(1500), segments[0].Payload.Concat(segments[1].Payload));
        Assert.Equal(TcpFlags.Ack | TcpFlags.Psh, segments[1].Flags);

        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1501));
        Assert.Equal(LocalIss + 1501, peer.Connection.SendUnacknowledged);
        Assert.Equal(0, peer.Connection.BytesUnacknowledged);

        peer.SendData(Bytes(100), LocalIss + 1501);
        var read = new byte[200];
        Assert.Equal(100, peer.Connection.Read(read));
        Assert.Equal(Bytes(100), read[..100]);
        Assert.Equal(ScriptedPeer.RemoteIss + 101, peer.Connection.ReceiveNext);
        Assert.True(peer.Connection.ReceiveNext.Value < ScriptedPeer.RemoteIss.Value);
    }

    [Fact]
    public void Single_segment_must_be_acknowledged_after_the_delayed_ack_timeout()
    {
        var peer = ScriptedPeer.Established();
        var arrival = peer.Now;
        peer.SendData(Bytes(500), LocalIss + 1);
        peer.AssertSilent();
        Assert.Equal(arrival + TimeSpan.FromMilliseconds(40), peer.Connection.PollTimeout());
        peer.FireNextTimer();
        var ack = peer.Single();
        Assert.Equal(peer.RemoteNext, ack.Ack);
        Assert.Null(peer.Connection.PollTimeout());
    }

    [Fact]
    public void Delayed_ack_of_a_short_segment_must_go_once_the_application_has_read_everything()
    {
        var peer = ScriptedPeer.Established();
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.SendData(Bytes(500), LocalIss + 1);
        peer.AssertSilent();

        Assert.Equal(1000, peer.Connection.Read(new byte[1000]));
        peer.AssertSilent();
        Assert.Equal(500, peer.Connection.Read(new byte[1000]));
        Assert.Equal(peer.RemoteNext, peer.Single().Ack);
    }

    [Fact]
    public void Delayed_ack_of_a_full_segment_must_wait_for_its_timeout_even_once_read()
    {
        var peer = ScriptedPeer.Established();
        peer.SendData(Bytes(1000), LocalIss + 1);
        Assert.Equal(1000, peer.Connection.Read(new byte[2000]));
        peer.AssertSilent();
        peer.FireNextTimer();
        Assert.Equal(peer.RemoteNext, peer.Single().Ack);
    }

    [Fact]
    public void Second_full_segment_must_be_acknowledged_at_once()
    {
        var peer = ScriptedPeer.Established();
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.AssertSilent();
        peer.SendData(Bytes(1000), LocalIss + 1);
        Assert.Equal(peer.RemoteNext, peer.Single().Ack);
    }

    [Fact]
    public void Delayed_ack_must_ride_on_outgoing_data()
    {
        var peer = ScriptedPeer.Established();
        peer.SendData(Bytes(500), LocalIss + 1);
        peer.Connection.Write(Bytes(10));
        var data = peer.Single();
        Assert.Equal(10, data.Payload.Length);
        Assert.Equal(peer.RemoteNext, data.Ack);
        Assert.NotEqual(peer.Now + TimeSpan.FromMilliseconds(40), peer.Connection.PollTimeout());
    }

    [Fact]
    public void Zero_delayed_ack_timeout_must_acknowledge_every_segment()
    {
        var peer = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { DelayedAckTimeout = TimeSpan.Zero });
        peer.SendData(Bytes(10), LocalIss + 1);
        Assert.Equal(peer.RemoteNext, peer.Single().Ack);
    }

    [Fact]
    public void Out_of_order_segment_must_trigger_an_immediate_duplicate_ack_and_the_fill_an_immediate_ack()
    {
        var peer = ScriptedPeer.Established();
        var start = peer.RemoteNext;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start + 300, LocalIss + 1), Bytes(200, start: 300));
        Assert.Equal(start, peer.Single().Ack);
        Assert.Equal(0, peer.Connection.BytesReadable);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start, LocalIss + 1), Bytes(300));
        Assert.Equal(start + 500, peer.Single().Ack);
        var read = new byte[1000];
        Assert.Equal(500, peer.Connection.Read(read));
        Assert.Equal(Bytes(500), read[..500]);
    }

    [Fact]
    public void Fin_ahead_of_a_hole_must_wait_for_the_hole()
    {
        var peer = ScriptedPeer.Established();
        var start = peer.RemoteNext;
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack | TcpFlags.Fin, start + 100, LocalIss + 1), Bytes(50, start: 100));
        Assert.Equal(TcpState.Established, peer.State);
        Assert.Equal(start, peer.Single().Ack);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start, LocalIss + 1), Bytes(100));
        Assert.Equal(TcpState.CloseWait, peer.State);
        Assert.Equal(start + 151, peer.Single().Ack);
        Assert.Contains(TcpEvent.PeerClosed, peer.Events());
        Assert.Equal(150, peer.Connection.Read(new byte[500]));
    }

    [Fact]
    public void Advertised_window_must_be_scaled_by_our_shift()
    {
        var peer = ScriptedPeer.Established();
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.SendData(Bytes(1000), LocalIss + 1);
        var ack = peer.Single();
        Assert.Equal((ushort)((ScriptedPeer.DefaultConfig.ReceiveBufferSize - 2000) >> 2), ack.Header.Window);
    }

    [Fact]
    public void Peer_window_must_be_scaled_by_its_shift_and_limit_what_we_send()
    {
        var peer = ScriptedPeer.Established();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1, window: 300));
        Assert.Equal(2400, peer.Connection.SendWindow); // 300 << 3
        peer.Connection.Write(Bytes(5000));
        var segments = peer.Drain();

        // Two full segments fit; the 400-byte remainder waits (sender SWS avoidance, RFC 9293 §3.8.6.2.1).
        Assert.Equal([1000, 1000], segments.Select(s => s.Payload.Length));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 2001, window: 300));
        Assert.Equal([1000, 1000], peer.Drain().Select(s => s.Payload.Length));
    }

    [Fact]
    public void Without_a_window_scale_setting_the_window_must_be_capped_at_65535()
    {
        var config = ScriptedPeer.DefaultConfig with { WindowScaleShift = null, ReceiveBufferSize = 100_000 };
        var now = Instant.FromMilliseconds(1);
        var peer = new ScriptedPeer(TcpConnection.Connect(config, 80, ScriptedPeer.RemotePort, LocalIss, now), now);
        Assert.Null(peer.Single().Header.Options.WindowScale);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Syn | TcpFlags.Ack, ScriptedPeer.RemoteIss, LocalIss + 1, window: 5000, options: new TcpOptions { WindowScale = 4 }));
        var ack = peer.Single();
        Assert.Equal(ushort.MaxValue, ack.Header.Window);
        Assert.Equal(0, peer.Connection.SendWindowShift);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1, window: 5000));
        Assert.Equal(5000, peer.Connection.SendWindow);
    }

    [Fact]
    public void Zero_window_must_stop_data_and_start_persist_probes_with_backoff()
    {
        var peer = ScriptedPeer.Established();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1, window: 0));
        peer.Connection.Write(Bytes(100));
        peer.AssertSilent();

        var rto = peer.Connection.RetransmissionTimeout;
        var armedAt = peer.Now;
        Assert.Equal(armedAt + rto, peer.FireNextTimer());
        var probe = peer.Single();
        Assert.Equal(LocalIss, probe.Seq); // SND.UNA - 1: already acknowledged, so the receiver must answer
        Assert.Empty(probe.Payload);
        Assert.Equal(1, peer.Connection.Stats.ZeroWindowProbes);

        var second = peer.FireNextTimer();
        Assert.Equal(armedAt + rto + rto + rto, second); // the next probe waits twice as long
        peer.Single();

        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1, window: 1000));
        var data = peer.Single();
        Assert.Equal(100, data.Payload.Length);
        Assert.Equal(LocalIss + 1, data.Seq);
    }

    [Fact]
    public void Acks_riding_on_data_must_count_while_our_window_is_zero()
    {
        var config = ScriptedPeer.DefaultConfig with { ReceiveBufferSize = 2000 };
        var peer = ScriptedPeer.Established(config);
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.SendData(Bytes(1000), LocalIss + 1);
        Assert.Equal(0, peer.Single().Header.Window);
        peer.Connection.Write(Bytes(500));
        peer.Drain();

        // Our window is closed, so the text is dropped, but the ACK of our 500 bytes is taken (§3.10.7.4).
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 501), Bytes(100));
        Assert.Equal(LocalIss + 501, peer.Connection.SendUnacknowledged);
        var ack = peer.Single();
        Assert.Equal(peer.RemoteNext, ack.Ack);
        Assert.Equal(0, ack.Header.Window);
        Assert.Equal(2000, peer.Connection.BytesReadable);
    }

    [Fact]
    public void Ack_older_than_the_largest_window_must_be_dropped()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Write(Bytes(1000));
        peer.Drain();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1001));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss - 1_000_000), Bytes(10));
        Assert.Equal(TcpFlags.Ack, peer.Single().Flags); // RFC 5961 §5.2: ACK and drop
        Assert.Equal(0, peer.Connection.BytesReadable);
    }

    [Fact]
    public void Reading_a_full_buffer_must_send_a_window_update()
    {
        var config = ScriptedPeer.DefaultConfig with { ReceiveBufferSize = 4000 };
        var peer = ScriptedPeer.Established(config);
        for (var i = 0; i < 4; i++)
        {
            peer.SendData(Bytes(1000), LocalIss + 1);
        }

        var acks = peer.Drain();
        Assert.Equal(0, acks[^1].Header.Window);
        Assert.Equal(4000, peer.Connection.Read(new byte[4000]));
        var update = peer.Single();
        Assert.Equal((ushort)(4000 >> 2), update.Header.Window);
    }

    [Fact]
    public void Reading_must_not_send_a_window_update_while_the_peer_has_more_than_half_the_buffer_left()
    {
        var config = ScriptedPeer.DefaultConfig with { ReceiveBufferSize = 8000 };
        var peer = ScriptedPeer.Established(config);
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.SendData(Bytes(1000), LocalIss + 1);
        Assert.Equal((ushort)(6000 >> 2), peer.Single().Header.Window);

        // The window grew by two MSS, but the peer still has 6000 of 8000 bytes to fill: the ACKs its next data
        // draws carry the larger window.
        Assert.Equal(2000, peer.Connection.Read(new byte[2000]));
        Assert.Empty(peer.Drain());

        // Once the peer has half the buffer or less left to fill, reading announces the larger window at once.
        for (var i = 0; i < 4; i++)
        {
            peer.SendData(Bytes(1000), LocalIss + 1);
        }

        Assert.Equal((ushort)(4000 >> 2), peer.Drain()[^1].Header.Window);
        Assert.Equal(4000, peer.Connection.Read(new byte[4000]));
        Assert.Equal((ushort)(8000 >> 2), peer.Single().Header.Window);
    }

    [Fact]
    public void Write_must_be_bounded_by_the_send_buffer_and_report_writable_after_an_ack()
    {
        var config = ScriptedPeer.DefaultConfig with { SendBufferSize = 3000 };
        var peer = ScriptedPeer.Established(config);
        Assert.Equal(3000, peer.Connection.Write(Bytes(5000)));
        Assert.Equal(0, peer.Connection.SendBufferFree);
        peer.Drain();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1001));
        Assert.Equal([TcpEvent.Writable], peer.Events());
        Assert.Equal(1000, peer.Connection.SendBufferFree);
    }

    [Fact]
    public void Nagle_must_hold_a_short_segment_while_an_earlier_short_one_is_unacknowledged()
    {
        var peer = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { Nagle = true });
        peer.Connection.Write(Bytes(1500));
        Assert.Equal([1000, 500], peer.Drain().Select(s => s.Payload.Length));
        peer.Connection.Write(Bytes(1500));
        Assert.Equal(1000, peer.Single().Payload.Length);
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1501));
        Assert.Equal(500, peer.Single().Payload.Length);
    }

    [Fact]
    public void Without_nagle_a_short_segment_must_go_at_once()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Write(Bytes(1500));
        Assert.Equal([1000, 500], peer.Drain().Select(s => s.Payload.Length));
    }

    [Fact]
    public void Initial_window_must_limit_the_first_flight_to_ten_segments()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Write(Bytes(20_000));
        Assert.Equal(10, peer.Drain().Count);
    }

    [Fact]
    public void Read_log_must_keep_read_bytes_until_released()
    {
        var peer = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { RetainReadLog = true });
        var start = peer.Connection.ReceiveNext;
        peer.SendData(Bytes(300), LocalIss + 1);
        Assert.Equal(300, peer.Connection.Read(new byte[1000]));
        Assert.Equal(300, peer.Connection.ReadLogLength);
        Assert.Equal(start, peer.Connection.ReadLogStart);
        Assert.Equal(start + 300, peer.Connection.ReadNext);
        var log = new byte[300];
        Assert.Equal(300, peer.Connection.CopyReadLog(log));
        Assert.Equal(Bytes(300), log);

        peer.Connection.ReleaseReadLog(start + 200);
        Assert.Equal(100, peer.Connection.ReadLogLength);
        Assert.Equal(start + 200, peer.Connection.ReadLogStart);
    }

    [Fact]
    public void Read_log_must_be_visible_without_copying_and_switchable()
    {
        var peer = ScriptedPeer.Established();
        Assert.False(peer.Connection.RetainReadLog);
        peer.Connection.RetainReadLog = true;
        peer.SendData(Bytes(200), LocalIss + 1);
        peer.Connection.Read(new byte[200]);
        peer.Connection.GetReadLog(out var first, out var second);
        Assert.Equal(Bytes(200), first.ToArray().Concat(second.ToArray()));

        peer.Connection.RetainReadLog = false;
        Assert.Equal(0, peer.Connection.ReadLogLength);
        Assert.Equal(peer.Connection.ReadNext, peer.Connection.ReadLogStart);
    }

    [Fact]
    public void Unacknowledged_bytes_must_be_visible_without_copying()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Write(Bytes(1500));
        peer.Drain();
        var una = peer.Connection.SendUnacknowledged;
        peer.Connection.GetUnacknowledged(una + 100, una + 1500, out var first, out var second);
        Assert.Equal(Bytes(1500)[100..], first.ToArray().Concat(second.ToArray()));
    }

    [Fact]
    public void Unacknowledged_bytes_between_two_sequence_numbers_must_be_available()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Write(Bytes(3000));
        peer.Drain();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 1001));
        var una = peer.Connection.SendUnacknowledged;
        var copy = new byte[2000];
        Assert.Equal(2000, peer.Connection.CopyUnacknowledged(una, peer.Connection.WriteEnd, copy));
        Assert.Equal(Bytes(3000)[1000..], copy);
        Assert.Throws<ArgumentOutOfRangeException>(() => peer.Connection.CopyUnacknowledged(una - 1, una + 5, copy));
    }
}

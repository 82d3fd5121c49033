using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Segments handed to the engine as one burst (<see cref="TcpConnection.BeginBurst"/>): in-order data gets one ACK at
/// the end (RFC 5681 §4.2, RFC 9293 §3.8.6.3), while whatever RFC 5681 §4.2 acknowledges at once keeps its own ACK, with
/// the SACK blocks of its moment (RFC 2018 §4, RFC 6675).
/// </summary>
[Trait("Category", "Stack")]
public sealed class BurstAcknowledgmentTests
{
    private static readonly SeqNumber LocalIss = ScriptedPeer.LocalIss;
    private static readonly TcpOptions SackPeerSynOptions = new() { MaxSegmentSize = 1000, WindowScale = 3, SackPermitted = true };

    private static readonly TcpConfig AckPerBurst = ScriptedPeer.DefaultConfig with { AckPerBurst = true };

    private static byte[] Bytes(int count) => new byte[count];

    [Fact]
    public void In_order_segments_of_one_burst_must_be_acknowledged_once_at_its_end()
    {
        var peer = ScriptedPeer.Established(AckPerBurst);
        peer.Connection.BeginBurst();
        for (var i = 0; i < 6; i++)
        {
            peer.SendData(Bytes(1000), LocalIss + 1);
        }

        peer.Connection.EndBurst();
        var ack = peer.Single();
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal(peer.RemoteNext, ack.Ack);
        Assert.Equal(6000, peer.Connection.BytesReadable);
    }

    [Fact]
    public void Without_ack_per_burst_in_order_segments_of_a_burst_must_be_acknowledged_every_second_one()
    {
        var peer = ScriptedPeer.Established();
        var start = peer.RemoteNext;
        peer.Connection.BeginBurst();
        for (var i = 0; i < 6; i++)
        {
            peer.SendData(Bytes(1000), LocalIss + 1);
        }

        peer.Connection.EndBurst();
        var acks = peer.Drain();
        Assert.Equal([start + 2000, start + 4000, start + 6000], acks.Select(a => a.Ack));
    }

    [Fact]
    public void The_same_segments_one_at_a_time_must_be_acknowledged_every_second_one()
    {
        var peer = ScriptedPeer.Established();
        var acks = new List<Emitted>();
        for (var i = 0; i < 6; i++)
        {
            peer.SendData(Bytes(1000), LocalIss + 1);
            acks.AddRange(peer.Drain());
        }

        Assert.Equal(3, acks.Count);
        Assert.Equal(peer.RemoteNext, acks[^1].Ack);
    }

    [Fact]
    public void A_burst_of_one_full_segment_must_keep_the_delayed_ack()
    {
        var peer = ScriptedPeer.Established(AckPerBurst);
        peer.Connection.BeginBurst();
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.Connection.EndBurst();
        peer.AssertSilent();
        Assert.Equal(peer.Now + TimeSpan.FromMilliseconds(40), peer.Connection.PollTimeout());
    }

    [Fact]
    public void The_ack_of_a_burst_must_ride_on_the_data_sent_after_it()
    {
        var peer = ScriptedPeer.Established(AckPerBurst);
        peer.Connection.BeginBurst();
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.Connection.EndBurst();
        peer.Connection.Write(Bytes(100));
        var data = peer.Single();
        Assert.Equal(100, data.Payload.Length);
        Assert.Equal(peer.RemoteNext, data.Ack);
    }

    [Fact]
    public void Out_of_order_segments_in_a_burst_must_each_get_an_immediate_duplicate_ack_with_the_sack_blocks_of_their_arrival()
    {
        var peer = TcpConnectionRetransmissionTests.EstablishedWithRtt100(AckPerBurst, SackPeerSynOptions);
        Assert.True(peer.Connection.SackAgreed);
        var start = peer.RemoteNext;

        // In order, then two segments past holes at +1000 and +3000, then the first hole filled.
        peer.Connection.BeginBurst();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start, LocalIss + 1), Bytes(1000));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start + 2000, LocalIss + 1), Bytes(1000));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start + 4000, LocalIss + 1), Bytes(1000));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start + 1000, LocalIss + 1), Bytes(1000));
        peer.Connection.EndBurst();

        var acks = peer.Drain();
        Assert.Equal(3, acks.Count);

        Assert.Equal(start + 1000, acks[0].Ack);
        Assert.Equal(1, acks[0].Header.Options.Sack.Count);
        Assert.Equal(new SackBlock(start + 2000, start + 3000), acks[0].Header.Options.Sack[0]);

        // The same ACK number again (a duplicate ACK, RFC 5681 §2), the newest block first (RFC 2018 §4).
        Assert.Equal(start + 1000, acks[1].Ack);
        Assert.Equal(acks[0].Header.Window, acks[1].Header.Window);
        Assert.Equal(2, acks[1].Header.Options.Sack.Count);
        Assert.Equal(new SackBlock(start + 4000, start + 5000), acks[1].Header.Options.Sack[0]);
        Assert.Equal(new SackBlock(start + 2000, start + 3000), acks[1].Header.Options.Sack[1]);

        // The fill is acknowledged at once too (RFC 5681 §4.2), up to the next hole.
        Assert.Equal(start + 3000, acks[2].Ack);
        Assert.Equal(new SackBlock(start + 4000, start + 5000), acks[2].Header.Options.Sack[0]);
    }

    [Fact]
    public void In_order_data_before_an_out_of_order_segment_must_not_get_a_second_ack_at_the_end_of_the_burst()
    {
        var peer = TcpConnectionRetransmissionTests.EstablishedWithRtt100(AckPerBurst, SackPeerSynOptions);
        var start = peer.RemoteNext;
        peer.Connection.BeginBurst();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start, LocalIss + 1), Bytes(1000));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start + 1000, LocalIss + 1), Bytes(1000));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start + 3000, LocalIss + 1), Bytes(1000));
        peer.Connection.EndBurst();

        // The duplicate ACK of the out-of-order segment covers the in-order two: a repeat would read as another duplicate.
        var ack = peer.Single();
        Assert.Equal(start + 2000, ack.Ack);
        Assert.Equal(new SackBlock(start + 3000, start + 4000), ack.Header.Options.Sack[0]);
    }

    [Fact]
    public void Immediate_acks_of_a_burst_must_be_dropped_by_a_reset_later_in_the_burst()
    {
        var peer = TcpConnectionRetransmissionTests.EstablishedWithRtt100(AckPerBurst, SackPeerSynOptions);
        var start = peer.RemoteNext;
        peer.Connection.BeginBurst();
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, start + 2000, LocalIss + 1), Bytes(1000));
        peer.Send(ScriptedPeer.Segment(TcpFlags.Rst, start));
        peer.Connection.EndBurst();
        peer.AssertSilent();
        Assert.Equal(TcpState.Closed, peer.State);
    }

    [Fact]
    public void A_burst_never_ended_must_still_be_acknowledged_by_the_delayed_ack_deadline()
    {
        var peer = ScriptedPeer.Established(AckPerBurst);
        peer.Connection.BeginBurst();
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.SendData(Bytes(1000), LocalIss + 1);
        peer.AssertSilent();
        peer.FireNextTimer();
        Assert.Equal(peer.RemoteNext, peer.Single().Ack);
    }
}

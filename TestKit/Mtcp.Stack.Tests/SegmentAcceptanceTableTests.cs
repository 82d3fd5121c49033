using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>Each row of the acceptance table in <c>TcpConnection.Judge</c>, checked against a real connection.</summary>
[Trait("Category", "Stack")]
public sealed class SegmentAcceptanceTableTests
{
    private static readonly SeqNumber LocalIss = ScriptedPeer.LocalIss;

    public static TheoryData<string, TcpState, TcpFlags, int, int, int, string> Rows => new()
    {
        // row, state, flags, SEG.SEQ - RCV.NXT, SEG.ACK - SND.UNA, payload length, verdict (by name: the enum is internal)
        { "1 repeated SYN", TcpState.SynReceived, TcpFlags.Syn, -1, 0, 0, nameof(SegmentVerdict.ResendSynAck) },
        { "2 FIN again in TIME-WAIT", TcpState.TimeWait, TcpFlags.Fin | TcpFlags.Ack, -1, 0, 0, nameof(SegmentVerdict.RestartTimeWait) },
        { "3 RST far outside", TcpState.Established, TcpFlags.Rst, 1 << 20, 0, 0, nameof(SegmentVerdict.Drop) },
        { "4 old data", TcpState.Established, TcpFlags.Ack, -500, 0, 100, nameof(SegmentVerdict.DropWithAck) },
        { "4 beyond the window", TcpState.Established, TcpFlags.Ack, 1 << 20, 0, 100, nameof(SegmentVerdict.DropWithAck) },
        { "5 RST at RCV.NXT", TcpState.FinWait2, TcpFlags.Rst, 0, 0, 0, nameof(SegmentVerdict.Reset) },
        { "6 RST in window", TcpState.Established, TcpFlags.Rst | TcpFlags.Ack, 10, 0, 0, nameof(SegmentVerdict.ChallengeAck) },
        { "7 SYN in window", TcpState.Established, TcpFlags.Syn, 0, 0, 0, nameof(SegmentVerdict.ChallengeAck) },
        { "8 no ACK", TcpState.Established, TcpFlags.None, 0, 0, 10, nameof(SegmentVerdict.Drop) },
        { "9 SYN-RCVD ACK of nothing", TcpState.SynReceived, TcpFlags.Ack, 0, 0, 0, nameof(SegmentVerdict.ResetBadAck) },
        { "9 SYN-RCVD ACK beyond", TcpState.SynReceived, TcpFlags.Ack, 0, 2, 0, nameof(SegmentVerdict.ResetBadAck) },
        { "10 ACK of unsent data", TcpState.Established, TcpFlags.Ack, 0, 1, 0, nameof(SegmentVerdict.DropWithAck) },
        { "10 ACK far in the past", TcpState.Established, TcpFlags.Ack, 0, -(1 << 24), 0, nameof(SegmentVerdict.DropWithAck) },
        { "11 in-order data", TcpState.Established, TcpFlags.Ack, 0, 0, 100, nameof(SegmentVerdict.Accept) },
        { "11 SYN-RCVD ACK of our SYN", TcpState.SynReceived, TcpFlags.Ack, 0, 1, 0, nameof(SegmentVerdict.Accept) },
        { "11 overlapping retransmission", TcpState.Established, TcpFlags.Ack, -50, 0, 100, nameof(SegmentVerdict.Accept) },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Judge_must_follow_the_table(string row, TcpState state, TcpFlags flags, int seqOffset, int ackOffset, int payloadLength, string verdict)
    {
        var connection = ScriptedPeer.For(state).Connection;
        var segment = ScriptedPeer.Segment(flags, connection.ReceiveNext + seqOffset, connection.SendUnacknowledged + ackOffset);
        Assert.True(Enum.Parse<SegmentVerdict>(verdict) == connection.Judge(segment, payloadLength), row);
    }

    [Fact]
    public void Judge_must_allow_acks_at_rcv_nxt_while_the_window_is_zero()
    {
        var peer = ScriptedPeer.Established(ScriptedPeer.DefaultConfig with { ReceiveBufferSize = 1000 });
        peer.SendData(new byte[1000], LocalIss + 1);
        var c = peer.Connection;
        Assert.Equal(SegmentVerdict.AcceptControlOnly, c.Judge(ScriptedPeer.Segment(TcpFlags.Ack, c.ReceiveNext, c.SendUnacknowledged), 10));
        Assert.Equal(SegmentVerdict.DropWithAck, c.Judge(ScriptedPeer.Segment(TcpFlags.Ack, c.ReceiveNext + 1, c.SendUnacknowledged), 10));
        Assert.Equal(SegmentVerdict.Accept, c.Judge(ScriptedPeer.Segment(TcpFlags.Ack, c.ReceiveNext, c.SendUnacknowledged), 0));
    }
}

namespace Mtcp.Stack;

/// <summary>What the acceptance checks of RFC 9293 §3.10.7.4 decide for an arriving segment (see <c>TcpConnection.Judge</c>).</summary>
internal enum SegmentVerdict
{
    /// <summary>Process the ACK, the text and the FIN.</summary>
    Accept,

    /// <summary>Our window is zero and the segment sits at RCV.NXT: process its ACK, drop text and FIN, answer with an ACK.</summary>
    AcceptControlOnly,

    /// <summary>Drop without answering.</summary>
    Drop,

    /// <summary>Drop and answer with an ACK (of RCV.NXT, with our window).</summary>
    DropWithAck,

    /// <summary>An acceptable RST: the connection goes to CLOSED.</summary>
    Reset,

    /// <summary>Answer with a challenge ACK (RFC 5961) and drop.</summary>
    ChallengeAck,

    /// <summary>Answer with &lt;SEQ=SEG.ACK&gt;&lt;CTL=RST&gt; and drop (bad ACK in SYN-RECEIVED).</summary>
    ResetBadAck,

    /// <summary>The peer repeated its SYN: resend our SYN,ACK at once.</summary>
    ResendSynAck,

    /// <summary>A retransmitted FIN in TIME-WAIT: acknowledge it and restart the 2 MSL timer.</summary>
    RestartTimeWait,
}

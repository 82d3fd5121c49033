namespace Mtcp.Stack;

/// <summary>Counters for tests and benchmarks. Plain fields: the engine is single-threaded by contract.</summary>
public sealed class TcpConnectionStats
{
    /// <summary>Segments produced by <see cref="TcpConnection.PollTransmit"/>, retransmissions included.</summary>
    public long SegmentsSent { get; internal set; }

    /// <summary>Segments given to <see cref="TcpConnection.HandleSegment"/>.</summary>
    public long SegmentsReceived { get; internal set; }

    /// <summary>Segments that carried sequence space already sent once (SYN, data or FIN).</summary>
    public long Retransmissions { get; internal set; }

    /// <summary>
    /// Fast retransmits triggered by the third duplicate ACK (RFC 5681 §3.2) or a partial ACK (RFC 6582); with SACK,
    /// loss recoveries started by RACK (RFC 8985 §6).
    /// </summary>
    public long FastRetransmits { get; internal set; }

    /// <summary>Tail-loss probes sent (RFC 8985 §7.3).</summary>
    public long TailLossProbes { get; internal set; }

    /// <summary>Retransmission-timer expirations (RFC 6298 §5.4).</summary>
    public long RetransmissionTimeouts { get; internal set; }

    /// <summary>Duplicate ACKs received, as RFC 5681 §2 defines them.</summary>
    public long DuplicateAcks { get; internal set; }

    /// <summary>Zero-window probes sent by the persist timer (RFC 9293 §3.8.6.1).</summary>
    public long ZeroWindowProbes { get; internal set; }

    /// <summary>Keep-alive probes sent to a silent peer (RFC 9293 §3.8.4; <see cref="TcpConnection.KeepAliveIdle"/>).</summary>
    public long KeepAliveProbes { get; internal set; }

    /// <summary>Payload bytes sent, retransmissions included.</summary>
    public long BytesSent { get; internal set; }

    /// <summary>Payload bytes the peer acknowledged for the first time.</summary>
    public long BytesAcked { get; internal set; }

    /// <summary>Payload bytes accepted into the receive buffer (in order or out of order, each counted once on arrival).</summary>
    public long BytesReceived { get; internal set; }

    /// <summary>Segments dropped as unacceptable (RFC 9293 §3.10.7.4, first check).</summary>
    public long SegmentsRejected { get; internal set; }

    /// <summary>ICMP "packet too big" reports that lowered the send MSS (<see cref="TcpConnection.HandlePacketTooBig"/>).</summary>
    public long PathMtuReductions { get; internal set; }

    /// <summary>Path MTU black holes detected (RFC 4821 §7.2): the send MSS fell back to <see cref="TcpConfig.BaseSegmentSize"/>.</summary>
    public long PathMtuBlackHoles { get; internal set; }

    /// <summary>Path MTU probes sent (RFC 4821 §7.3, RFC 8899 §5): segments of real data larger than the send MSS.</summary>
    public long PathMtuProbes { get; internal set; }

    /// <summary>
    /// Probes lost (resent; marked lost while later segments arrived, by SACK or by duplicate ACKs naming the probe; quoted
    /// by an ICMP report; or longer than the MSS a report lowered): the search's upper bound came down, cwnd did not.
    /// </summary>
    public long PathMtuProbesLost { get; internal set; }

    /// <summary>Probes acknowledged that raised the send MSS.</summary>
    public long PathMtuIncreases { get; internal set; }

    /// <summary>The five path MTU counters above as one value.</summary>
    public PathMtuCounts PathMtu => new(PathMtuReductions, PathMtuBlackHoles, PathMtuProbes, PathMtuProbesLost, PathMtuIncreases);

    /// <summary>Challenge ACKs sent for in-window RSTs and SYNs (RFC 5961 §3.2, §4.2).</summary>
    public long ChallengeAcks { get; internal set; }
}

using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>What an ICMP "packet too big" did to the connection it names.</summary>
public enum PacketTooBigVerdict
{
    /// <summary>The send MSS went down to the reported path MTU's, and what was in flight goes out again at it.</summary>
    Lowered,

    /// <summary>The quoted ports are not this connection's.</summary>
    NotThisConnection,

    /// <summary>No data in flight can have been too big: the connection is not synchronized.</summary>
    NotSynchronized,

    /// <summary>
    /// The quoted sequence number is outside SND.UNA..SND.MAX: not a segment of ours still in flight (RFC 5927 §4.1),
    /// as an off-path attacker's guess or a stale report would be.
    /// </summary>
    OutOfWindow,

    /// <summary>
    /// The report quoted the path MTU probe in flight and an MTU between the send MSS and the probe: the probe is lost
    /// and the search's upper bound came down to what the MTU carries (RFC 8899 §4.6.2, RFC 4821 §7.6); the MSS stays.
    /// </summary>
    ProbeTooBig,

    /// <summary>
    /// The reported MTU would not lower the send MSS (RFC 8201 §4, RFC 1191 §6.3: never raise it), and it names no probe
    /// it is too small for.
    /// </summary>
    NotSmaller,
}

/// <summary>Path MTU: ICMP "fragmentation needed" (RFC 1191) and ICMPv6 "packet too big" (RFC 8201).</summary>
public sealed partial class TcpConnection
{
    /// <summary>The least MTU an IPv4 path is taken to have: every host accepts 576-byte datagrams (RFC 791).</summary>
    public const int MinimumIPv4Mtu = 576;

    /// <summary>The least MTU an IPv6 link has (RFC 8200 §5): a report below it is not believed.</summary>
    public const int MinimumIPv6Mtu = 1280;

    private const int IPv4HeaderLength = 20;
    private const int IPv6HeaderLength = 40;

    /// <summary>
    /// The send MSS for a path of <paramref name="mtu"/> bytes: the MTU less the IP header, the carrier's own header
    /// between it and the segment (<paramref name="carrierHeaderLength"/>: 8 for UDP encapsulation, 0 for raw IP), the
    /// TCP header and room for the largest options, as the runtime derives the MSS from the route's MTU at connect (the
    /// engine does not shorten a segment by the options it carries, RFC 6691); a report below the family's minimum MTU
    /// counts as the minimum, which the carrier's header does not change (the link's MTU is what has a minimum).
    /// </summary>
    public static int SegmentSizeForPathMtu(int mtu, bool ipv6, int carrierHeaderLength)
    {
        var floor = ipv6 ? MinimumIPv6Mtu : MinimumIPv4Mtu;
        return Math.Max(mtu, floor) - (ipv6 ? IPv6HeaderLength : IPv4HeaderLength) - carrierHeaderLength - TcpSegment.MinHeaderLength - TcpSegment.MaxOptionsLength;
    }

    /// <summary>
    /// An ICMP error said a segment of this connection was too big for a link on the path: the quoted segment's ports
    /// (as this side sent them) and sequence number, the next hop's MTU, and the length of the carrier's header that
    /// the MTU must hold besides IP's (<see cref="SegmentSizeForPathMtu"/>). Validated as RFC 5927 §4.1 and RFC 8899
    /// §4.6.1 advise, so a forged report changes nothing: the ports must be this connection's, the sequence number one
    /// of the bytes in flight, and the MTU must lower the send MSS. Then the MSS goes down (never below the family's
    /// minimum) and the segments longer than it, which the link dropped, are sent again at the new size without
    /// touching the congestion window: a too-big segment is no sign of congestion (RFC 1191 §6.4, as Linux's
    /// tcp_simple_retransmit). A report that does not lower the MSS but quotes the path MTU probe in flight, with an MTU
    /// the probe does not fit, narrows the probe search instead (<see cref="NarrowPathMtuSearch"/>).
    /// </summary>
    public PacketTooBigVerdict HandlePacketTooBig(ushort quotedSourcePort, ushort quotedDestinationPort, SeqNumber quotedSequence, int mtu, bool ipv6, int carrierHeaderLength)
    {
        if (quotedSourcePort != LocalPort || quotedDestinationPort != RemotePort)
        {
            return PacketTooBigVerdict.NotThisConnection;
        }

        if (_state is not (TcpState.Established or TcpState.FinWait1 or TcpState.CloseWait or TcpState.Closing or TcpState.LastAck))
        {
            return PacketTooBigVerdict.NotSynchronized;
        }

        // SND.MAX rather than RFC 5927's SND.NXT: after a go-back-N rewind, segments up to SND.MAX are still in the network.
        if (quotedSequence < _sndUna || quotedSequence >= _sndMax)
        {
            return PacketTooBigVerdict.OutOfWindow;
        }

        var segmentSize = SegmentSizeForPathMtu(mtu, ipv6, carrierHeaderLength);
        if (segmentSize >= _sendMss)
        {
            return NarrowPathMtuSearch(quotedSequence, segmentSize) ? PacketTooBigVerdict.ProbeTooBig : PacketTooBigVerdict.NotSmaller;
        }

        ChangeSendMss(segmentSize);
        OnPathMtuLoweredByReport(segmentSize);
        Stats.PathMtuReductions++;
        if (_sackAgreed)
        {
            // Only the segments longer than the new MSS were dropped; the scoreboard resends them cut to it.
            if (_scoreboard.MarkLongerThanLost(segmentSize) > 0 && _recovery == LossRecovery.None)
            {
                _recovery = LossRecovery.Timeout;
                _recoveryPoint = _sndMax;
                StopLossTimer();
            }
        }
        else
        {
            // Go-back-N from SND.UNA at the new size, as after a timeout but with cwnd untouched.
            _sndNxt = _sndUna;
        }

        return PacketTooBigVerdict.Lowered;
    }
}

using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// Carries TCP-format segments (header plus payload, checksum already set by the codec) between IP
/// addresses. Implementations: raw IPv4 or IPv6 with protocol 253 or 6, UDP encapsulation, and an in-memory
/// fabric. One thread may send while another receives; <see cref="Receive"/> is meant for one
/// dedicated thread (blocking receive beats async receive on small machines).
/// </summary>
public interface IPacketTransport : IDisposable
{
    /// <summary>The address segments are sent from and filtered on: only segments addressed here are returned.</summary>
    IpAddress LocalAddress { get; }

    /// <summary>The largest segment (TCP header plus payload) this transport carries in one packet.</summary>
    int MaxSegmentLength { get; }

    /// <summary>
    /// The largest segment that reaches <paramref name="destination"/> in one packet without IP fragmentation: the MTU
    /// of the kernel's route to it (<see cref="RouteMtu"/>) less the carrier's headers, at most
    /// <see cref="MaxSegmentLength"/>; null when the transport has no kernel route (in memory) or the kernel knows none.
    /// A few system calls: once per connection, not per packet.
    /// </summary>
    int? MaxSegmentLengthTo(IpAddress destination) => null;

    /// <summary>
    /// The least buffer length <see cref="Receive"/> accepts: room for the largest packet including any
    /// carrier header, so that nothing is ever truncated.
    /// </summary>
    int ReceiveBufferLength { get; }

    /// <summary>
    /// Sends one segment. Returns false when the packet was dropped locally (a firewall rule, a full queue or
    /// send buffer, no route, a path that cannot carry its size): IP is best effort, so the caller treats that
    /// as loss and lets retransmission recover. Each such drop is counted in <see cref="SendDrops"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">the transport was disposed.</exception>
    /// <exception cref="PacketTransportException">the socket cannot send at all (closed descriptor, invalid address).</exception>
    bool Send(IpAddress destination, ReadOnlySpan<byte> segment);

    /// <summary>
    /// Sends the batch's segments in order, each as <see cref="Send"/> would, with as few system calls as the transport
    /// can (the raw and UDP transports: one sendmmsg(2) per batch); the batch is left as it was. Every segment is tried
    /// whatever became of the ones before it: one the path refuses (EMSGSIZE) or a firewall drops does not take the
    /// rest with it. A transport without a call of its own sends each alone (<see cref="SegmentBatch.SendEach"/>).
    /// </summary>
    /// <returns>the segments dropped locally (lost, for retransmission to recover), each counted in <see cref="SendDrops"/>.</returns>
    /// <exception cref="ObjectDisposedException">the transport was disposed.</exception>
    /// <exception cref="PacketTransportException">the socket could not send some segments at all; the others were tried.</exception>
    int SendBatch(SegmentBatch batch) => SegmentBatch.SendEach(this, batch);

    /// <summary>
    /// The bytes the carrier puts between the IP header and the segment (UDP's 8-byte header; none for raw IP): what a
    /// path MTU report's MTU must also hold besides the IP header and the segment.
    /// </summary>
    int CarrierHeaderLength => 0;

    /// <summary>The segments <see cref="Send"/> dropped locally, by reason; a transport that never drops keeps the default.</summary>
    SendDropCounters SendDrops => SendDropCounters.None;

    /// <summary>
    /// Blocks until a segment addressed to <see cref="LocalAddress"/> arrives, the timeout passes, or
    /// the transport is disposed. The segment is written into <paramref name="buffer"/> (possibly after
    /// a carrier header) and located by <paramref name="received"/>; nothing is allocated per packet.
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits without limit.
    /// </summary>
    /// <exception cref="ArgumentException">the buffer is shorter than <see cref="ReceiveBufferLength"/>.</exception>
    ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received);

    /// <summary>
    /// A segment that has already arrived, without blocking: as <see cref="Receive"/> when one is queued, false at once
    /// when none is (or the transport was disposed). The receive thread gathers what arrived together after a
    /// <see cref="Receive"/> this way, to hand each endpoint its segments as one burst (as GRO does). A transport that
    /// cannot tell returns false: every segment then travels alone.
    /// </summary>
    bool TryReceiveWaiting(Span<byte> buffer, out ReceivedSegment received)
    {
        received = default;
        return false;
    }

    /// <summary>
    /// Whether <see cref="ReceivePacketTooBig"/> reads anything (on a second thread): the raw transports do, on an ICMP
    /// socket of their own. UDP reads its reports from its own socket's error queue instead
    /// (<see cref="TryReceiveQueuedPacketTooBig"/>); memory has no ICMP.
    /// </summary>
    bool ReadsPacketTooBig => false;

    /// <summary>
    /// A path MTU report the transport's own socket has queued (an ICMP error about a datagram it sent, or the local
    /// host's refusal of one as beyond its interface's MTU, kept on the UDP socket's error queue), without blocking;
    /// false when none is. The receiving thread calls it after each
    /// <see cref="Receive"/> (at once after <see cref="ReceiveOutcome.ErrorQueued"/>) until it returns false; without
    /// an error noted since, it costs no system call. <paramref name="buffer"/> holds the quote (at least
    /// <see cref="ReceiveBufferLength"/> bytes). The report is not authenticated: its connection checks it.
    /// </summary>
    bool TryReceiveQueuedPacketTooBig(Span<byte> buffer, out PacketTooBigReport report)
    {
        report = default;
        return false;
    }

    /// <summary>
    /// Blocks until an ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201) quoting a packet this
    /// transport sent arrives, the timeout passes, or the transport is disposed; a second thread may call it while
    /// another calls <see cref="Receive"/>. <paramref name="buffer"/> holds one ICMP message (at least
    /// <see cref="ReceiveBufferLength"/> bytes). The report is not authenticated: its connection checks it.
    /// </summary>
    ReceiveOutcome ReceivePacketTooBig(Span<byte> buffer, TimeSpan timeout, out PacketTooBigReport report)
    {
        report = default;
        return ReceiveOutcome.Closed;
    }
}

/// <summary>What one call to <see cref="IPacketTransport.Receive"/> produced.</summary>
public enum ReceiveOutcome
{
    /// <summary>A segment was written into the buffer.</summary>
    Received,

    /// <summary>The timeout passed without a segment for this address.</summary>
    TimedOut,

    /// <summary>The transport was disposed; no segment will ever arrive again.</summary>
    Closed,

    /// <summary>
    /// No segment: the socket raised an ICMP error about a datagram it sent, which waits on its error queue
    /// (<see cref="IPacketTransport.TryReceiveQueuedPacketTooBig"/> reads it).
    /// </summary>
    ErrorQueued,
}

/// <summary>
/// Where a received segment lies in the caller's buffer, and the IP addresses it travelled between
/// (needed for the pseudo-header checksum, RFC 9293 §3.1, and for demultiplexing).
/// </summary>
public readonly record struct ReceivedSegment(IpAddress Source, IpAddress Destination, int Offset, int Length)
{
    public Span<byte> SliceOf(Span<byte> buffer) => buffer.Slice(Offset, Length);

    public ReadOnlySpan<byte> SliceOf(ReadOnlySpan<byte> buffer) => buffer.Slice(Offset, Length);
}

using System.Net;
using System.Net.Sockets;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// Segments carried as the payload of UDP datagrams, byte for byte as they would travel in IP: for
/// unprivileged processes and NAT paths. Every node binds the same kind of endpoint (its own address
/// and <c>localPort</c>) and sends to the peer's address at <c>peerPort</c>; datagrams from any other
/// port are discarded. The checksum inside the segment still covers the IP pseudo-header, so a dissector
/// told to decode the UDP port as TCP validates it.
/// </summary>
/// <remarks>
/// Path MTU (RFC 1191, RFC 8201): datagrams go with DF (IPv4) or IPV6_DONTFRAG, so a narrower link on the path answers
/// with ICMP "fragmentation needed" or ICMPv6 "packet too big" instead of fragmenting every segment, and the socket keeps
/// those errors on its error queue (IP_RECVERR / IPV6_RECVERR). The kernel raises each once as the socket's error, which
/// ends the blocking receive (<see cref="ReceiveOutcome.ErrorQueued"/>); the receiving thread then reads the queue
/// (<see cref="TryReceiveQueuedPacketTooBig"/>), so the one thread that reads the socket reads its errors too. A send
/// can take that error instead (the kernel hands a socket's pending error to whichever call comes first, and a send
/// then fails without trying its datagram): such a send notes the queue for the receiving thread and tries once more.
/// Sends use IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE, as the raw IPv4 transport does and for the same reason: the
/// kernel lowers its route's path MTU on any report that names our addresses and UDP ports (it has no sequence number
/// to check, and a service's ports are no secret); under IP_PMTUDISC_DO every later send above it would fail locally,
/// whichever connection it belonged to, so one forged message would shrink them all. Under PROBE only a report the
/// connection checked itself (its ports and a sequence number in flight, <c>TcpConnection.HandlePacketTooBig</c>)
/// lowers its MSS, and the local host refuses (EMSGSIZE) only a datagram beyond its interface's own MTU. Such a datagram
/// is then sent fragmented at the source, as the raw transports send theirs, so its bytes are not lost; and the kernel
/// records the refusal on the error queue with the interface's MTU (SO_EE_ORIGIN_LOCAL, which no ICMP message can
/// forge) but without the datagram: the transport keeps the refused segment's ports and sequence number per
/// destination, and the receiving thread joins the two into a report like a router's, which lowers the connection's
/// MSS (within <c>mtcp.runtime.receive-poll-interval</c>: the local record raises no error that would end the blocking
/// receive).
/// </remarks>
public sealed class UdpEncapsulationTransport : IPacketTransport, IDatagramFilter, IBatchCarrier
{
    private const int MaxUdpDatagramLength = DatagramSocket.MaxDatagramLength;
    private const int IPv4AndUdpHeaderLength = 20 + 8;
    private const int UdpHeaderLength = 8;
    private const int IPv6AndUdpHeaderLength = 40 + 8;

    // Error queue entries read by one call that finds no report, as many as a receive burst's segments by default.
    private const int MaxEntriesPerCall = 64;

    // Destinations whose refused segment is kept at once; more means a flood of refusals, and the oldest are dropped.
    private const int MaxRefusedDestinations = 1024;

    // Room for one control message: its header, a sock_extended_err and the offender's sockaddr_in6.
    private const int ErrorControlLength = ErrorQueueEntry.ControlHeaderLength + ErrorQueueEntry.ExtendedErrorLength + 32;

    private readonly DatagramSocket _socket;
    private readonly ushort _peerPort;
    private readonly SocketAddress _sendAddress;
    private readonly RouteMtu _routes;

    // The error queue's socket address, read by the receiving thread only.
    private readonly SocketAddress _errorAddress;
    private long _ignoredErrors;

    // The last segment refused as too big, per destination, until the kernel's record of the refusal is read.
    private readonly Dictionary<IpAddress, PacketTooBigReport> _refused = [];
    private readonly Lock _refusedLock = new();

    private UdpEncapsulationTransport(Socket socket, IpAddress localAddress, ushort localPort, ushort peerPort)
    {
        _peerPort = peerPort;
        LocalAddress = localAddress;
        LocalPort = localPort;
        _sendAddress = new SocketAddress(socket.AddressFamily);
        _errorAddress = new SocketAddress(socket.AddressFamily);

        // Opened with the UDP socket, so in the same network namespace.
        _routes = RouteMtu.Open(socket.AddressFamily);
        _socket = new DatagramSocket(socket, "udp", ToString()) { ReadsErrorQueue = true };
    }

    public IpAddress LocalAddress { get; }

    /// <summary>The UDP port this transport is bound to.</summary>
    public ushort LocalPort { get; }

    /// <summary>The UDP port segments are sent to and accepted from.</summary>
    public ushort PeerPort => _peerPort;

    /// <summary>A UDP payload's limit: 65,535 minus the UDP header, and for IPv4 also minus the IP header, which its length field counts.</summary>
    public int MaxSegmentLength => LocalAddress.IsIPv4 ? MaxUdpDatagramLength - IPv4AndUdpHeaderLength : MaxUdpDatagramLength - UdpHeaderLength;

    public int ReceiveBufferLength => MaxUdpDatagramLength;

    public int? MaxSegmentLengthTo(IpAddress destination) =>
        _routes.Of(destination) is { } mtu ? Math.Min(MaxSegmentLength, mtu - (destination.IsIPv4 ? IPv4AndUdpHeaderLength : IPv6AndUdpHeaderLength)) : null;

    public int CarrierHeaderLength => UdpHeaderLength;

    /// <summary>
    /// Entries of the socket's error queue read and dropped: ICMP errors other than a path MTU report (port or host
    /// unreachable, ...), reports about a datagram to another port, or quoting too little of it to name a segment.
    /// </summary>
    public long IgnoredErrors => Interlocked.Read(ref _ignoredErrors);

    /// <summary>Datagrams received but not returned because they came from a port other than <see cref="PeerPort"/>.</summary>
    public long DiscardedDatagrams => _socket.Discarded;

    public SendDropCounters SendDrops => _socket.SendDrops;

    /// <summary>
    /// Binds a UDP socket to <paramref name="localAddress"/>:<paramref name="localPort"/> (a specific
    /// address, so that only datagrams for this node arrive) in the calling thread's network namespace.
    /// </summary>
    /// <exception cref="PacketTransportException">the endpoint could not be bound.</exception>
    public static UdpEncapsulationTransport Open(IpAddress localAddress, ushort localPort, ushort peerPort, int socketBufferBytes = 4 * 1024 * 1024)
    {
        if (localAddress.Length == 0)
        {
            throw new ArgumentException("the local address must be a specific IPv4 or IPv6 address", nameof(localAddress));
        }

        var local = localAddress.ToIPAddress();
        if (local.Equals(IPAddress.Any) || local.Equals(IPAddress.IPv6Any))
        {
            throw new ArgumentException("the local address must be specific, not the wildcard: segments are filtered by destination address", nameof(localAddress));
        }

        var socket = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.ReceiveBufferSize = socketBufferBytes;
            socket.SendBufferSize = socketBufferBytes;
            if (localAddress.IsIPv4)
            {
                // IP_PMTUDISC_PROBE sets DF on every datagram (see the remarks for why not IP_PMTUDISC_DO).
                DatagramSocket.SetOption(socket, Libc.IPProtocolLevel, Libc.IpMtuDiscover, Libc.PmtuDiscoveryProbe);
                DatagramSocket.SetOption(socket, Libc.IPProtocolLevel, Libc.IpRecverr, 1);
            }
            else
            {
                DatagramSocket.SetOption(socket, Libc.IPv6ProtocolLevel, Libc.Ipv6MtuDiscover, Libc.PmtuDiscoveryProbe);
                DatagramSocket.SetOption(socket, Libc.IPv6ProtocolLevel, Libc.Ipv6Dontfrag, 1);
                DatagramSocket.SetOption(socket, Libc.IPv6ProtocolLevel, Libc.Ipv6Recverr, 1);
            }

            socket.Bind(new IPEndPoint(local, localPort));
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new PacketTransportException($"binding UDP {local}:{localPort} failed: {e.Message}", e);
        }

        var boundPort = (ushort)((IPEndPoint)socket.LocalEndPoint!).Port;
        return new UdpEncapsulationTransport(socket, localAddress, boundPort, peerPort);
    }

    public bool Send(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        CheckSendable(destination, segment.Length);
        lock (_socket.SendLock)
        {
            var errno = _socket.SendTo(((IBatchCarrier)this).SocketAddressOf(destination), ReadOnlySpan<byte>.Empty, segment);
            return _socket.Sent(AfterFailedSend(destination, segment, errno));
        }
    }

    /// <summary>
    /// The batch with one sendmmsg(2) (see <see cref="DatagramSocket.SendBatch"/>), a datagram per segment. Not UDP_SEGMENT
    /// (GSO): a netfilter rule meets the whole super-datagram once, so one drop would take up to 64 segments with it, and
    /// the refusal of one beyond the MTU would refuse them all.
    /// </summary>
    public int SendBatch(SegmentBatch batch) => _socket.SendBatch(batch, this);

    void IBatchCarrier.CheckSendable(IpAddress destination, int segmentLength) => CheckSendable(destination, segmentLength);

    private void CheckSendable(IpAddress destination, int segmentLength)
    {
        ObjectDisposedException.ThrowIf(_socket.IsDisposed, this);
        if (destination.Family != LocalAddress.Family)
        {
            throw new ArgumentException($"cannot send from {LocalAddress} to {destination}: address families differ", nameof(destination));
        }

        if (segmentLength > MaxSegmentLength)
        {
            throw new ArgumentException($"segment of {segmentLength} bytes exceeds the {MaxSegmentLength}-byte UDP limit", nameof(segmentLength));
        }
    }

    int IBatchCarrier.BatchHeaderLength => 0;

    ReadOnlySpan<byte> IBatchCarrier.SocketAddressOf(IpAddress destination)
    {
        CarrierHeaders.WriteSocketAddress(_sendAddress, destination, _peerPort);
        return _sendAddress.Buffer.Span[.._sendAddress.Size];
    }

    void IBatchCarrier.WriteBatchHeader(IpAddress destination, int segmentLength, Span<byte> header)
    {
    }

    int IBatchCarrier.AfterFailedSend(IpAddress destination, ReadOnlySpan<byte> segment, int errno) => AfterFailedSend(destination, segment, errno);

    /// <summary>What a send that failed with <paramref name="errno"/> tries next (see the remarks); the errno left, 0 once sent.</summary>
    private int AfterFailedSend(IpAddress destination, ReadOnlySpan<byte> segment, int errno)
    {
        if (errno != 0 && MayBeRaisedByIcmp(errno))
        {
            // Perhaps an ICMP error about an earlier datagram, taken by this send before it tried its own (see the
            // remarks): its entry waits on the error queue, and this datagram gets its own try.
            _socket.ErrorQueued();
            errno = _socket.SendTo(((IBatchCarrier)this).SocketAddressOf(destination), ReadOnlySpan<byte>.Empty, segment);
        }

        if (errno == Libc.Emsgsize)
        {
            KeepRefused(destination, segment);
            errno = SendFragmentable(((IBatchCarrier)this).SocketAddressOf(destination), segment);
        }

        return errno;
    }

    /// <summary>
    /// A segment beyond the interface's MTU, sent once more with path MTU discovery off for this send
    /// (IP_PMTUDISC_WANT, IPV6_DONTFRAG off), so that the kernel fragments it at the source, as the raw transports' sends
    /// of such segments are: its bytes are not lost while its connection lowers its MSS, and a segment meant to be
    /// larger than the path (a sealed client-stored state) still arrives. 0 or the errno.
    /// </summary>
    private int SendFragmentable(ReadOnlySpan<byte> address, ReadOnlySpan<byte> segment)
    {
        var socket = _socket.Socket;
        var (level, option) = LocalAddress.IsIPv4 ? (Libc.IPProtocolLevel, Libc.IpMtuDiscover) : (Libc.IPv6ProtocolLevel, Libc.Ipv6MtuDiscover);
        DatagramSocket.SetOption(socket, level, option, Libc.PmtuDiscoveryWant);
        if (LocalAddress.IsIPv6)
        {
            DatagramSocket.SetOption(socket, Libc.IPv6ProtocolLevel, Libc.Ipv6Dontfrag, 0);
        }

        try
        {
            return _socket.SendTo(address, ReadOnlySpan<byte>.Empty, segment);
        }
        finally
        {
            DatagramSocket.SetOption(socket, level, option, Libc.PmtuDiscoveryProbe);
            if (LocalAddress.IsIPv6)
            {
                DatagramSocket.SetOption(socket, Libc.IPv6ProtocolLevel, Libc.Ipv6Dontfrag, 1);
            }
        }
    }

    /// <summary>
    /// The errors an ICMP message raises on a UDP socket with IP_RECVERR (icmp_err_convert, icmpv6_err_convert), which a
    /// send may meet in place of its own outcome; EACCES is left out: a firewall's drop on the way out gives it too,
    /// and trying that datagram again would halve the rule's loss.
    /// </summary>
    private static bool MayBeRaisedByIcmp(int errno) => errno is Libc.Emsgsize or Libc.Econnrefused or Libc.Ehostunreach or Libc.Enetunreach
        or Libc.Ehostdown or Libc.Enonet or Libc.Enoprotoopt or Libc.Eproto or Libc.Eopnotsupp;

    /// <summary>
    /// A segment refused twice as too big (the second time it was the datagram's own size): its ports and sequence number,
    /// kept for the kernel's record of the refusal, which names the destination and the MTU; the report made of the two
    /// lowers the connection's MSS for what follows. The queue is noted, as that record raises no error.
    /// </summary>
    private void KeepRefused(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        if (IcmpPacketTooBig.TryReadQuotedSegment(LocalAddress, destination, ErrorQueueEntry.UdpProtocol, segment, MaxSegmentLength, out var quote) == IcmpReportError.None)
        {
            lock (_refusedLock)
            {
                if (_refused.Count >= MaxRefusedDestinations && !_refused.ContainsKey(destination))
                {
                    _refused.Clear();
                }

                _refused[destination] = quote;
            }
        }

        _socket.ErrorQueued();
    }

    /// <summary>
    /// The error queue's next path MTU report (see the remarks); the entries that are none are counted in
    /// <see cref="IgnoredErrors"/>. After <see cref="MaxEntriesPerCall"/> of them it returns false and the next call
    /// goes on, so that a flood of errors cannot hold the receiving thread from the segments.
    /// </summary>
    public bool TryReceiveQueuedPacketTooBig(Span<byte> buffer, out PacketTooBigReport report)
    {
        Span<byte> control = stackalloc byte[ErrorControlLength];
        var read = 0;
        while (read++ < MaxEntriesPerCall && _socket.TryReceiveQueuedError(buffer, _errorAddress, control, out var length, out var controlLength))
        {
            var verdict = ErrorQueueEntry.TryRead(control[..controlLength], _errorAddress.Buffer.Span[.._errorAddress.Size], _errorAddress.Family, buffer[..length], LocalAddress, _peerPort, out report);
            if (verdict == QueuedErrorVerdict.PacketTooBig)
            {
                return true;
            }

            if (verdict == QueuedErrorVerdict.LocalTooBig)
            {
                // The kernel's record of a refused send: the segment kept for its destination, at the MTU it names. A
                // second record of one refusal (the send's second try) finds the segment taken and is no error.
                if (TryTakeRefused(report.QuotedDestination, out var quote))
                {
                    report = quote with { Mtu = report.Mtu };
                    return true;
                }

                continue;
            }

            Interlocked.Increment(ref _ignoredErrors);
        }

        report = default;
        return false;
    }

    private bool TryTakeRefused(IpAddress destination, out PacketTooBigReport quote)
    {
        lock (_refusedLock)
        {
            return _refused.Remove(destination, out quote);
        }
    }

    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received) =>
        _socket.Receive(this, buffer, timeout, out received);

    public bool TryReceiveWaiting(Span<byte> buffer, out ReceivedSegment received) => _socket.TryReceiveWaiting(this, buffer, out received);

    /// <summary>A datagram from the peer port carries one whole segment; the segment's addresses are the datagram's.</summary>
    bool IDatagramFilter.TryLocateSegment(ReadOnlySpan<byte> datagram, SocketAddress source, out ReceivedSegment received) =>
        CarrierHeaders.TryLocateWhole(CarrierHeaders.TryReadUdpSource(source.Buffer.Span[..source.Size], source.Family, _peerPort, out var sourceAddress), sourceAddress, LocalAddress, datagram.Length, out received);

    public void Dispose()
    {
        _socket.Dispose();
        _routes.Dispose();
    }

    public override string ToString() => $"UDP encapsulation at {LocalAddress}:{LocalPort} to peer port {_peerPort}";
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// Segments carried directly in IPv4 packets over a raw socket: protocol 253 (RFC 3692 experimental;
/// the kernel's TCP never sees them) or protocol 6 (real TCP, so unmodified kernel TCP peers can talk to
/// the engine; the local kernel's own RSTs must then be suppressed, see
/// <see cref="KernelResetSuppression"/>). Needs CAP_NET_RAW.
/// </summary>
/// <remarks>
/// Every raw socket of a protocol receives every packet of that protocol in its network namespace, so
/// the socket is bound to <see cref="LocalAddress"/> (the kernel then delivers only packets addressed
/// to it) and each packet's destination is checked again here. Received packets start with the IPv4
/// header, which is parsed for the addresses and skipped. The kernel reassembles fragments before raw
/// delivery, so a segment may be as large as an IPv4 packet allows.
/// <para>
/// Sends write their own IPv4 header (IP_HDRINCL) and hand it and the segment to one sendmsg(2): without it the
/// kernel copies a raw payload with csum_and_copy_from_iter, a checksum nobody reads that costs as much again
/// as the copy. The kernel still fills in the identification, total length and header checksum. It does not
/// fragment such packets, so a segment larger than the route's MTU goes out once more without IP_HDRINCL.
/// </para>
/// </remarks>
public sealed class RawIPv4Transport : IRawIPTransport, IDatagramFilter, IBatchCarrier
{
    /// <summary>IP protocol 253, reserved for experimentation (RFC 3692).</summary>
    public const byte ExperimentalProtocol = RawIPTransport.ExperimentalProtocol;

    /// <summary>IP protocol 6, TCP.</summary>
    public const byte TcpProtocol = RawIPTransport.TcpProtocol;

    private const int MaxIPv4PacketLength = DatagramSocket.MaxDatagramLength;
    internal const int MinIPv4HeaderLength = 20;
    private const int SockaddrInLength = 16;
    // What the kernel puts in headers it builds (net.ipv4.ip_default_ttl, the RFC 1700 default).
    private const byte DefaultTimeToLive = 64;

    private readonly DatagramSocket _socket;
    private readonly byte _protocol;
    private readonly uint _localAddressValue;
    private readonly SocketAddress _sendAddress = new(AddressFamily.InterNetwork, SockaddrInLength);
    private readonly byte[] _sendHeader = new byte[MinIPv4HeaderLength];

    // Opened with the raw socket, so in the same network namespace.
    private readonly RouteMtu _routes = RouteMtu.Open(AddressFamily.InterNetwork);
    private readonly PacketTooBigSocket _packetTooBig;

    private RawIPv4Transport(Socket socket, IpAddress localAddress, byte protocol)
    {
        _protocol = protocol;
        LocalAddress = localAddress;
        _socket = new DatagramSocket(socket, "raw", ToString());
        try
        {
            _packetTooBig = PacketTooBigSocket.Open(localAddress, protocol);
        }
        catch
        {
            _socket.Dispose();
            _routes.Dispose();
            throw;
        }

        Span<byte> bytes = stackalloc byte[IpAddress.V4Length];
        localAddress.WriteTo(bytes);
        _localAddressValue = BinaryPrimitives.ReadUInt32BigEndian(bytes);
        WriteHeaderTemplate(_sendHeader, localAddress, protocol);
    }

    public IpAddress LocalAddress { get; }

    /// <summary>The IP protocol number this transport sends and receives.</summary>
    public byte Protocol => _protocol;

    public int MaxSegmentLength => MaxIPv4PacketLength - MinIPv4HeaderLength;

    public int ReceiveBufferLength => MaxIPv4PacketLength;

    public int? MaxSegmentLengthTo(IpAddress destination) =>
        _routes.Of(destination) is { } mtu ? Math.Min(MaxSegmentLength, mtu - MinIPv4HeaderLength) : null;

    /// <summary>Packets received on the socket but not returned: wrong destination, malformed or truncated IPv4 header.</summary>
    public long DiscardedPackets => _socket.Discarded;

    public SendDropCounters SendDrops => _socket.SendDrops;

    /// <summary>Opens a protocol-253 transport bound to <paramref name="localAddress"/>.</summary>
    public static RawIPv4Transport OpenExperimental(IpAddress localAddress, RawTransportOptions? options = null) =>
        Open(localAddress, ExperimentalProtocol, options ?? new RawTransportOptions());

    /// <summary>
    /// Opens a protocol-6 transport bound to <paramref name="localAddress"/>. Unless told otherwise the
    /// socket marks its packets with <see cref="KernelResetSuppression.DefaultEngineMark"/>.
    /// </summary>
    public static RawIPv4Transport OpenTcp(IpAddress localAddress, RawTransportOptions? options = null) =>
        Open(localAddress, TcpProtocol, options ?? RawTransportOptions.Tcp);

    /// <summary>
    /// Opens a raw IPv4 socket for <paramref name="protocol"/> in the calling thread's network namespace
    /// (the socket stays in that namespace for its whole life).
    /// </summary>
    /// <exception cref="InsufficientPrivilegeException">the process lacks CAP_NET_RAW.</exception>
    /// <exception cref="PacketTransportException">the socket could not be opened or bound.</exception>
    public static RawIPv4Transport Open(IpAddress localAddress, byte protocol, RawTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!localAddress.IsIPv4)
        {
            throw new ArgumentException($"a raw IPv4 transport needs an IPv4 local address, not {localAddress}", nameof(localAddress));
        }

        var socket = RawSockets.Open(localAddress, protocol, options);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.HeaderIncluded, true);

            // The kernel believes any ICMP "fragmentation needed" that names a raw socket's destination and lowers its
            // route's path MTU (raw sockets have no sequence numbers to check); with the default IP_PMTUDISC_WANT our DF
            // packets over that MTU would then fail locally, and the kernel would answer them with a fragmentation
            // needed of its own, quoting a real segment, which the connection believes. IP_PMTUDISC_PROBE sends up to
            // the interface's MTU whatever the route holds, so only reports the connection checked itself
            // (TcpConnection.HandlePacketTooBig, RFC 5927 §4.1) lower the MSS, as kernel TCP checks them.
            DatagramSocket.SetOption(socket, Libc.IPProtocolLevel, Libc.IpMtuDiscover, Libc.PmtuDiscoveryProbe);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new RawIPv4Transport(socket, localAddress, protocol);
    }

    public bool Send(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        CheckSendable(destination, segment.Length);
        lock (_socket.SendLock)
        {
            var address = ((IBatchCarrier)this).SocketAddressOf(destination);
            WriteHeader(destination, segment.Length, _sendHeader);
            return _socket.Sent(AfterFailedSend(destination, segment, _socket.SendTo(address, _sendHeader, segment)));
        }
    }

    /// <summary>The batch with one sendmmsg(2) (see <see cref="DatagramSocket.SendBatch"/>), each segment behind its own IPv4 header.</summary>
    public int SendBatch(SegmentBatch batch) => _socket.SendBatch(batch, this);

    void IBatchCarrier.CheckSendable(IpAddress destination, int segmentLength) => CheckSendable(destination, segmentLength);

    private void CheckSendable(IpAddress destination, int segmentLength)
    {
        ObjectDisposedException.ThrowIf(_socket.IsDisposed, this);
        if (!destination.IsIPv4)
        {
            throw new ArgumentException($"a raw IPv4 transport cannot send to {destination}", nameof(destination));
        }

        if (segmentLength > MaxSegmentLength)
        {
            throw new ArgumentException($"segment of {segmentLength} bytes exceeds the {MaxSegmentLength}-byte IPv4 limit", nameof(segmentLength));
        }
    }

    int IBatchCarrier.BatchHeaderLength => MinIPv4HeaderLength;

    ReadOnlySpan<byte> IBatchCarrier.SocketAddressOf(IpAddress destination)
    {
        var address = _sendAddress.Buffer.Span;
        BinaryPrimitives.WriteUInt16BigEndian(address[2..], 0);
        destination.WriteTo(address[4..]);
        return address[..SockaddrInLength];
    }

    /// <summary>The header template with the datagram's destination and total length.</summary>
    void IBatchCarrier.WriteBatchHeader(IpAddress destination, int segmentLength, Span<byte> header)
    {
        _sendHeader.CopyTo(header);
        WriteHeader(destination, segmentLength, header);
    }

    int IBatchCarrier.AfterFailedSend(IpAddress destination, ReadOnlySpan<byte> segment, int errno) => AfterFailedSend(destination, segment, errno);

    /// <summary>A segment the route's MTU refused goes again without IP_HDRINCL, for the kernel to fragment (see the remarks).</summary>
    private int AfterFailedSend(IpAddress destination, ReadOnlySpan<byte> segment, int errno) =>
        errno == Libc.Emsgsize ? SendFragmentable(((IBatchCarrier)this).SocketAddressOf(destination), segment) : errno;

    /// <summary>Sets the destination and total length of <paramref name="header"/>, a copy of the template.</summary>
    private static void WriteHeader(IpAddress destination, int segmentLength, Span<byte> header)
    {
        destination.WriteTo(header[DestinationAddressOffset..]);
        BinaryPrimitives.WriteUInt16BigEndian(header[TotalLengthOffset..], (ushort)(MinIPv4HeaderLength + segmentLength));
    }

    /// <summary>
    /// A segment beyond the route's MTU, sent with a kernel-built header, which the kernel may fragment (IP_PMTUDISC_WANT,
    /// the kernel's default, for this send only: under IP_PMTUDISC_PROBE it refuses to fragment); 0 or the errno.
    /// </summary>
    private int SendFragmentable(ReadOnlySpan<byte> address, ReadOnlySpan<byte> segment)
    {
        var socket = _socket.Socket;
        socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.HeaderIncluded, false);
        DatagramSocket.SetOption(socket, Libc.IPProtocolLevel, Libc.IpMtuDiscover, Libc.PmtuDiscoveryWant);
        try
        {
            return _socket.SendTo(address, ReadOnlySpan<byte>.Empty, segment);
        }
        finally
        {
            DatagramSocket.SetOption(socket, Libc.IPProtocolLevel, Libc.IpMtuDiscover, Libc.PmtuDiscoveryProbe);
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.HeaderIncluded, true);
        }
    }

    /// <summary>
    /// The fixed fields of the IPv4 header our sends carry (RFC 791 §3.1); destination and length are set per send. DF
    /// is set, as kernel TCP sets it: a router on a narrower link then answers "fragmentation needed" with its MTU
    /// (RFC 1191), which lowers the connection's MSS, instead of fragmenting every segment.
    /// </summary>
    private static void WriteHeaderTemplate(Span<byte> header, IpAddress source, byte protocol)
    {
        header.Clear();
        header[VersionAndIhlOffset] = (4 << 4) | (MinIPv4HeaderLength / 4);
        header[FlagsOffset] = DontFragmentFlag;
        header[TimeToLiveOffset] = DefaultTimeToLive;
        header[ProtocolOffset] = protocol;
        source.WriteTo(header[SourceAddressOffset..]);
    }

    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received) =>
        _socket.Receive(this, buffer, timeout, out received);

    public bool TryReceiveWaiting(Span<byte> buffer, out ReceivedSegment received) => _socket.TryReceiveWaiting(this, buffer, out received);

    /*
     * RFC 791 §3.1, the fields read here:
     *  0                   1                   2                   3
     *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
     * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
     * |Version|  IHL  |Type of Service|          Total Length         |
     * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
     * |         Identification        |Flags|      Fragment Offset    |
     * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
     * |  Time to Live |    Protocol   |         Header Checksum       |
     * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
     * |                       Source Address                          |
     * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
     * |                    Destination Address                        |
     * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
     */
    internal const int VersionAndIhlOffset = 0;
    internal const int TotalLengthOffset = 2;
    private const int FlagsOffset = 6;
    private const byte DontFragmentFlag = 0x40;
    private const int TimeToLiveOffset = 8;
    internal const int ProtocolOffset = 9;
    internal const int SourceAddressOffset = 12;
    internal const int DestinationAddressOffset = 16;

    /// <summary>The segment inside a received IPv4 packet; the sockaddr is not needed, the header names both addresses.</summary>
    bool IDatagramFilter.TryLocateSegment(ReadOnlySpan<byte> packet, SocketAddress source, out ReceivedSegment received) =>
        CarrierHeaders.TryLocateInIPv4(packet, _protocol, _localAddressValue, LocalAddress, out received) == CarrierError.None;

    public bool ReadsPacketTooBig => true;

    public ReceiveOutcome ReceivePacketTooBig(Span<byte> buffer, TimeSpan timeout, out PacketTooBigReport report) =>
        _packetTooBig.Receive(buffer, timeout, out report);

    /// <summary>ICMP messages the transport's ICMP socket received and dropped (see <see cref="PacketTooBigSocket"/>).</summary>
    public long IgnoredIcmpMessages => _packetTooBig.Ignored;

    public void Dispose()
    {
        _socket.Dispose();
        _routes.Dispose();
        _packetTooBig.Dispose();
    }

    public override string ToString() => $"raw IPv4 protocol {_protocol} at {LocalAddress}";
}

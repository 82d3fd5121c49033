using System.Net;
using System.Net.Sockets;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// Segments carried directly in IPv6 packets over a raw socket, next header 253 (RFC 3692 experimental) or 6 (real TCP,
/// with the kernel's RSTs suppressed as for IPv4, see <see cref="KernelResetSuppression"/>): the IPv6 counterpart of
/// <see cref="RawIPv4Transport"/>, opened by <see cref="RawIPTransport"/> for an IPv6 local address. Needs CAP_NET_RAW.
/// </summary>
/// <remarks>
/// An IPv6 raw socket differs from an IPv4 one in what the kernel hands over (RFC 3542 §3): received data starts after
/// the IPv6 header and its extension headers, so the source comes from the socket address and the destination is the
/// bound <see cref="LocalAddress"/> (raw_v6_match delivers only packets addressed to it); and sends go without a header
/// of our own, which the kernel builds and, beyond the route's MTU, fragments at the source (RFC 8200 §4.5). The
/// kernel computes no checksum for protocols other than ICMPv6 (IPV6_CHECKSUM is off), so the codec's TCP checksum
/// over the IPv6 pseudo-header (RFC 8200 §8.1) travels as written. Link-local addresses, which need a scope, are not
/// supported.
/// </remarks>
public sealed class RawIPv6Transport : IRawIPTransport, IDatagramFilter, IBatchCarrier
{
    /// <summary>The fixed IPv6 header (RFC 8200 §3), which the MTU counts.</summary>
    private const int IPv6HeaderLength = 40;

    private readonly DatagramSocket _socket;
    private readonly SocketAddress _sendAddress = new(AddressFamily.InterNetworkV6);

    // Opened with the raw socket, so in the same network namespace.
    private readonly RouteMtu _routes = RouteMtu.Open(AddressFamily.InterNetworkV6);
    private readonly PacketTooBigSocket _packetTooBig;

    private RawIPv6Transport(Socket socket, IpAddress localAddress, byte protocol)
    {
        Protocol = protocol;
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
    }

    public IpAddress LocalAddress { get; }

    public byte Protocol { get; }

    /// <summary>
    /// The payload length field's 65,535 bytes less the header the kernel counts against it (ip6_append_data refuses
    /// more without a jumbogram, RFC 2675, which no link here carries).
    /// </summary>
    public int MaxSegmentLength => DatagramSocket.MaxDatagramLength - IPv6HeaderLength;

    public int ReceiveBufferLength => DatagramSocket.MaxDatagramLength;

    public int? MaxSegmentLengthTo(IpAddress destination) =>
        _routes.Of(destination) is { } mtu ? Math.Min(MaxSegmentLength, mtu - IPv6HeaderLength) : null;

    /// <summary>Packets received on the socket but not returned: a source address the kernel reported malformed.</summary>
    public long DiscardedPackets => _socket.Discarded;

    public SendDropCounters SendDrops => _socket.SendDrops;

    /// <summary>Opens a raw IPv6 socket for next header <paramref name="protocol"/>, bound to <paramref name="localAddress"/>.</summary>
    /// <exception cref="InsufficientPrivilegeException">the process lacks CAP_NET_RAW.</exception>
    /// <exception cref="PacketTransportException">the socket could not be opened or bound.</exception>
    public static RawIPv6Transport Open(IpAddress localAddress, byte protocol, RawTransportOptions options)
    {
        if (!localAddress.IsIPv6)
        {
            throw new ArgumentException($"a raw IPv6 transport needs an IPv6 local address, not {localAddress}", nameof(localAddress));
        }

        return new RawIPv6Transport(RawSockets.Open(localAddress, protocol, options), localAddress, protocol);
    }

    public bool Send(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        CheckSendable(destination, segment.Length);
        lock (_socket.SendLock)
        {
            return _socket.Sent(_socket.SendTo(((IBatchCarrier)this).SocketAddressOf(destination), ReadOnlySpan<byte>.Empty, segment));
        }
    }

    /// <summary>The batch with one sendmmsg(2) (see <see cref="DatagramSocket.SendBatch"/>); the kernel builds each header.</summary>
    public int SendBatch(SegmentBatch batch) => _socket.SendBatch(batch, this);

    void IBatchCarrier.CheckSendable(IpAddress destination, int segmentLength) => CheckSendable(destination, segmentLength);

    private void CheckSendable(IpAddress destination, int segmentLength)
    {
        ObjectDisposedException.ThrowIf(_socket.IsDisposed, this);
        if (!destination.IsIPv6)
        {
            throw new ArgumentException($"a raw IPv6 transport cannot send to {destination}", nameof(destination));
        }

        if (segmentLength > MaxSegmentLength)
        {
            throw new ArgumentException($"segment of {segmentLength} bytes exceeds the {MaxSegmentLength}-byte IPv6 limit", nameof(segmentLength));
        }
    }

    int IBatchCarrier.BatchHeaderLength => 0;

    ReadOnlySpan<byte> IBatchCarrier.SocketAddressOf(IpAddress destination)
    {
        // sin6_port 0: the socket's own protocol (rawv6_sendmsg refuses any other).
        CarrierHeaders.WriteSocketAddress(_sendAddress, destination, 0);
        return _sendAddress.Buffer.Span[.._sendAddress.Size];
    }

    void IBatchCarrier.WriteBatchHeader(IpAddress destination, int segmentLength, Span<byte> header)
    {
    }

    /// <summary>Nothing more to try: the kernel already fragments a segment beyond the route's MTU at the source.</summary>
    int IBatchCarrier.AfterFailedSend(IpAddress destination, ReadOnlySpan<byte> segment, int errno) => errno;

    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received) =>
        _socket.Receive(this, buffer, timeout, out received);

    public bool TryReceiveWaiting(Span<byte> buffer, out ReceivedSegment received) => _socket.TryReceiveWaiting(this, buffer, out received);

    /// <summary>The whole datagram is the segment; its source is the socket address's, its destination the bound address.</summary>
    bool IDatagramFilter.TryLocateSegment(ReadOnlySpan<byte> datagram, SocketAddress source, out ReceivedSegment received) =>
        CarrierHeaders.TryLocateWhole(CarrierHeaders.TryReadSource(source.Buffer.Span[..source.Size], source.Family, out var sourceAddress), sourceAddress, LocalAddress, datagram.Length, out received);

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

    public override string ToString() => $"raw IPv6 next header {Protocol} at {LocalAddress}";
}

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
public sealed class UdpEncapsulationTransport : IPacketTransport, IDatagramFilter
{
    private const int MaxUdpDatagramLength = DatagramSocket.MaxDatagramLength;
    private const int IPv4AndUdpHeaderLength = 20 + 8;
    private const int UdpHeaderLength = 8;
    private const int IPv6AndUdpHeaderLength = 40 + 8;

    private readonly DatagramSocket _socket;
    private readonly ushort _peerPort;
    private readonly SocketAddress _sendAddress;
    private readonly Lock _sendLock = new();
    private readonly RouteMtu _routes;

    private UdpEncapsulationTransport(Socket socket, IpAddress localAddress, ushort localPort, ushort peerPort)
    {
        _peerPort = peerPort;
        LocalAddress = localAddress;
        LocalPort = localPort;
        _sendAddress = new SocketAddress(socket.AddressFamily);

        // Opened with the UDP socket, so in the same network namespace.
        _routes = RouteMtu.Open(socket.AddressFamily);
        _socket = new DatagramSocket(socket, "udp", ToString());
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
        ObjectDisposedException.ThrowIf(_socket.IsDisposed, this);
        if (destination.Family != LocalAddress.Family)
        {
            throw new ArgumentException($"cannot send from {LocalAddress} to {destination}: address families differ", nameof(destination));
        }

        if (segment.Length > MaxSegmentLength)
        {
            throw new ArgumentException($"segment of {segment.Length} bytes exceeds the {MaxSegmentLength}-byte UDP limit", nameof(segment));
        }

        lock (_sendLock)
        {
            CarrierHeaders.WriteSocketAddress(_sendAddress, destination, _peerPort);
            return _socket.Sent(_socket.SendTo(_sendAddress.Buffer.Span[.._sendAddress.Size], ReadOnlySpan<byte>.Empty, segment));
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

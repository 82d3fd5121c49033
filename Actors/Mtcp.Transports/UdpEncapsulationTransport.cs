using System.Buffers.Binary;
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
public sealed class UdpEncapsulationTransport : IPacketTransport
{
    private const int MaxUdpDatagramLength = 65535;
    private const int IPv4AndUdpHeaderLength = 20 + 8;
    private const int UdpHeaderLength = 8;

    private readonly Socket _socket;
    private readonly ushort _peerPort;
    private readonly SocketAddress _sendAddress;
    private readonly SocketAddress _receiveAddress;
    private readonly Lock _sendLock = new();
    private TimeSpan _currentTimeout = Timeout.InfiniteTimeSpan;
    private long _discardedDatagrams;
    private volatile bool _disposed;

    private UdpEncapsulationTransport(Socket socket, IpAddress localAddress, ushort localPort, ushort peerPort)
    {
        _socket = socket;
        _peerPort = peerPort;
        LocalAddress = localAddress;
        LocalPort = localPort;
        _sendAddress = new SocketAddress(socket.AddressFamily);
        _receiveAddress = new SocketAddress(socket.AddressFamily);
    }

    public IpAddress LocalAddress { get; }

    /// <summary>The UDP port this transport is bound to.</summary>
    public ushort LocalPort { get; }

    /// <summary>The UDP port segments are sent to and accepted from.</summary>
    public ushort PeerPort => _peerPort;

    /// <summary>A UDP payload's limit: 65,535 minus the UDP header, and for IPv4 also minus the IP header, which its length field counts.</summary>
    public int MaxSegmentLength => LocalAddress.IsIPv4 ? MaxUdpDatagramLength - IPv4AndUdpHeaderLength : MaxUdpDatagramLength - UdpHeaderLength;

    public int ReceiveBufferLength => MaxUdpDatagramLength;

    /// <summary>Datagrams received but not returned because they came from a port other than <see cref="PeerPort"/>.</summary>
    public long DiscardedDatagrams => Interlocked.Read(ref _discardedDatagrams);

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
        ObjectDisposedException.ThrowIf(_disposed, this);
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
            WriteSocketAddress(_sendAddress, destination, _peerPort);
            try
            {
                _socket.SendTo(segment, SocketFlags.None, _sendAddress);
                return true;
            }
            catch (SocketException e) when (RawIPv4Transport.IsLocalDrop(e.SocketErrorCode))
            {
                return false;
            }
        }
    }

    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received)
    {
        if (buffer.Length < ReceiveBufferLength)
        {
            throw new ArgumentException($"the receive buffer needs {ReceiveBufferLength} bytes, got {buffer.Length}", nameof(buffer));
        }

        received = default;
        if (_disposed)
        {
            return ReceiveOutcome.Closed;
        }

        SetTimeout(timeout);
        var deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            int length;
            try
            {
                length = _socket.ReceiveFrom(buffer, SocketFlags.None, _receiveAddress);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                return ReceiveOutcome.TimedOut;
            }
            catch (SocketException e) when (!_disposed && e.SocketErrorCode == SocketError.ConnectionReset)
            {
                // An ICMP port unreachable for an earlier datagram; the datagram path is still usable.
                continue;
            }
            catch (Exception e) when (_disposed && e is SocketException or ObjectDisposedException)
            {
                return ReceiveOutcome.Closed;
            }

            if (_disposed)
            {
                return ReceiveOutcome.Closed;
            }

            if (TryReadSource(_receiveAddress, out var source, out var sourcePort) && sourcePort == _peerPort)
            {
                received = new ReceivedSegment(source, LocalAddress, 0, length);
                return ReceiveOutcome.Received;
            }

            Interlocked.Increment(ref _discardedDatagrams);
            if (Environment.TickCount64 >= deadline)
            {
                return ReceiveOutcome.TimedOut;
            }
        }
    }

    // sockaddr_in: family(2) port(2) address(4); sockaddr_in6: family(2) port(2) flowinfo(4) address(16) scope(4).
    private const int PortOffset = 2;
    private const int IPv4AddressOffset = 4;
    private const int IPv6AddressOffset = 8;

    private static void WriteSocketAddress(SocketAddress address, IpAddress ip, ushort port)
    {
        var bytes = address.Buffer.Span;
        BinaryPrimitives.WriteUInt16BigEndian(bytes[PortOffset..], port);
        ip.WriteTo(bytes[(ip.IsIPv4 ? IPv4AddressOffset : IPv6AddressOffset)..]);
    }

    private static bool TryReadSource(SocketAddress address, out IpAddress source, out ushort port)
    {
        var bytes = address.Buffer.Span[..address.Size];
        port = BinaryPrimitives.ReadUInt16BigEndian(bytes[PortOffset..]);
        switch (address.Family)
        {
            case AddressFamily.InterNetwork when bytes.Length >= IPv4AddressOffset + IpAddress.V4Length:
                source = IpAddress.FromIPv4(bytes[IPv4AddressOffset..]);
                return true;
            case AddressFamily.InterNetworkV6 when bytes.Length >= IPv6AddressOffset + IpAddress.V6Length:
                source = IpAddress.FromIPv6(bytes[IPv6AddressOffset..]);
                return true;
            default:
                source = default;
                return false;
        }
    }

    private void SetTimeout(TimeSpan timeout)
    {
        if (timeout == _currentTimeout)
        {
            return;
        }

        _socket.ReceiveTimeout = timeout == Timeout.InfiniteTimeSpan ? 0 : Math.Max(1, (int)Math.Ceiling(timeout.TotalMilliseconds));
        _currentTimeout = timeout;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _socket.Dispose();
    }

    public override string ToString() => $"UDP encapsulation at {LocalAddress}:{LocalPort} to peer port {_peerPort}";
}

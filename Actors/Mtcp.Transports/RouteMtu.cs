using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// The MTU of the kernel's route to a destination: the MTU of the interface the route leaves by, or a smaller one
/// the kernel learned for that destination (path MTU discovery, RFC 1191 / RFC 8201). Read with a UDP socket
/// connected to the destination, which makes the kernel look the route up and sends nothing, and getsockopt
/// IP_MTU (IPV6_MTU for IPv6), which Linux answers with that route's MTU. The socket is opened once, by the
/// transport that owns this, so lookups see the routes of the network namespace the transport lives in whatever
/// thread asks. Two system calls a lookup: meant for once per connection, never per packet. Thread-safe.
/// </summary>
public sealed class RouteMtu : IDisposable
{
    // <linux/in.h> and <linux/in6.h>: IP_MTU at level IPPROTO_IP, IPV6_MTU at level IPPROTO_IPV6.
    private const int IpMtuOption = 14;
    private const int IPv6MtuOption = 24;

    // Any port: connect(2) on a datagram socket only fixes the peer; nothing goes out.
    private const int AnyPort = 9;

    private readonly Socket _socket;
    private readonly Lock _lock = new();

    private RouteMtu(Socket socket) => _socket = socket;

    /// <summary>Opens the lookup socket for <paramref name="family"/> in the calling thread's network namespace.</summary>
    public static RouteMtu Open(AddressFamily family) => new(new Socket(family, SocketType.Dgram, ProtocolType.Udp));

    /// <summary>The MTU of the route to <paramref name="destination"/>, or null when the kernel has no route to it.</summary>
    public int? Of(IpAddress destination)
    {
        var address = destination.Length == 0 ? null : destination.ToIPAddress();
        if (address is null || address.AddressFamily != _socket.AddressFamily)
        {
            return null;
        }

        var (level, option) = destination.IsIPv4 ? (SocketOptionLevel.IP, IpMtuOption) : (SocketOptionLevel.IPv6, IPv6MtuOption);
        var socketAddress = new IPEndPoint(address, AnyPort).Serialize();
        Span<byte> value = stackalloc byte[sizeof(int)];
        lock (_lock)
        {
            // connect(2) itself: Socket.Connect refuses to connect again once a connect failed, and this socket
            // connects to one destination after another.
            if (!TryConnect(socketAddress))
            {
                // ENETUNREACH and the like: no route now. The caller keeps its configured bound; a segment that
                // cannot leave is a local drop that retransmission recovers.
                return null;
            }

            if (_socket.GetRawSocketOption((int)level, option, value) != sizeof(int))
            {
                return null;
            }
        }

        // getsockopt(2) answers with a native-endian int.
        return MemoryMarshal.Read<int>(value);
    }

    private unsafe bool TryConnect(SocketAddress socketAddress)
    {
        fixed (byte* native = socketAddress.Buffer.Span)
        {
            return Libc.Connect(_socket.SafeHandle, native, socketAddress.Size) == 0;
        }
    }

    public void Dispose() => _socket.Dispose();
}

using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// The ICMP errors that report a path MTU for a raw transport's segments: a raw ICMP (IPv4) or ICMPv6 socket beside the
/// transport's, bound to its local address and filtered in the kernel to the one type that matters (ICMP_FILTER to
/// destination unreachable, ICMP6_FILTER to packet too big), so that echo, neighbour discovery and the rest never wake
/// the reading thread. Chosen over IP_RECVERR on the transport's own socket, which puts the errors on an error queue
/// that the blocking receive does not read (MSG_ERRQUEUE) and makes the next receive fail with the error (sk_err): the
/// data path would need a second wait and new error handling, where a second socket leaves it untouched.
/// Like the transport's, it needs CAP_NET_RAW and lives in the network namespace it was opened in.
/// </summary>
/// <remarks>
/// Each message costs one receive and a parse (<see cref="IcmpPacketTooBig"/>); what does not quote a packet of the
/// transport's protocol sent from its address is dropped here and counted in <see cref="Ignored"/>. What passes is
/// still unauthenticated: the connection checks the quoted ports and sequence number (RFC 5927 §4.1).
/// </remarks>
internal sealed class PacketTooBigSocket : IDisposable
{
    private const int IcmpProtocol = 1;
    private const int IcmpV6Protocol = 58;

    // <linux/icmp.h>: ICMP_FILTER at level SOL_RAW, a 32-bit mask of the types to drop.
    private const int SolRaw = 255;
    private const int IcmpFilterOption = 1;

    // <linux/icmpv6.h>: ICMPV6_FILTER at level IPPROTO_ICMPV6, 256 bits, a set bit drops the type.
    private const int IcmpV6FilterOption = 1;
    private const int IcmpV6FilterBytes = 32;

    private readonly Socket _socket;
    private readonly IpAddress _localAddress;
    private readonly byte _protocol;
    private TimeSpan _currentTimeout = Timeout.InfiniteTimeSpan;
    private long _ignored;
    private volatile bool _disposed;

    private PacketTooBigSocket(Socket socket, IpAddress localAddress, byte protocol)
    {
        _socket = socket;
        _localAddress = localAddress;
        _protocol = protocol;
    }

    /// <summary>ICMP messages received and dropped: not a path MTU report, malformed, or about someone else's packet.</summary>
    public long Ignored => Interlocked.Read(ref _ignored);

    /// <summary>Opens the ICMP socket for a raw transport of <paramref name="protocol"/> at <paramref name="localAddress"/>.</summary>
    /// <exception cref="PacketTransportException">the socket could not be opened, filtered or bound.</exception>
    public static PacketTooBigSocket Open(IpAddress localAddress, byte protocol)
    {
        var ipv6 = localAddress.IsIPv6;
        var fd = Libc.Socket(ipv6 ? Libc.AfInet6 : Libc.AfInet, Libc.SockRaw | Libc.SockCloexec, ipv6 ? IcmpV6Protocol : IcmpProtocol);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new PacketTransportException($"opening a raw {(ipv6 ? "ICMPv6" : "ICMP")} socket for path MTU reports failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        try
        {
            if (ipv6)
            {
                Span<byte> filter = stackalloc byte[IcmpV6FilterBytes];
                filter.Fill(0xFF);
                ClearBit(filter, IcmpPacketTooBig.IPv6PacketTooBig);
                socket.SetRawSocketOption(IcmpV6Protocol, IcmpV6FilterOption, filter);
            }
            else
            {
                Span<byte> filter = stackalloc byte[sizeof(uint)];
                MemoryMarshal.Write(filter, ~(1u << IcmpPacketTooBig.IPv4DestinationUnreachable));
                socket.SetRawSocketOption(SolRaw, IcmpFilterOption, filter);
            }

            socket.Bind(new IPEndPoint(localAddress.ToIPAddress(), 0));
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new PacketTransportException($"setting up the ICMP socket for path MTU reports at {localAddress} failed: {e.Message}", e);
        }

        return new PacketTooBigSocket(socket, localAddress, protocol);
    }

    /// <summary>
    /// Blocks until a report about a packet this transport sent arrives (<see cref="ReceiveOutcome.Received"/>), the
    /// timeout passes or the socket is disposed. Allocates nothing per message.
    /// </summary>
    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out PacketTooBigReport report)
    {
        report = default;
        if (_disposed)
        {
            return ReceiveOutcome.Closed;
        }

        DatagramSocket.SetTimeout(_socket, timeout, ref _currentTimeout);

        int length;
        try
        {
            length = _socket.Receive(buffer, SocketFlags.None);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
            return ReceiveOutcome.TimedOut;
        }
        catch (Exception e) when (_disposed && e is SocketException or ObjectDisposedException)
        {
            return ReceiveOutcome.Closed;
        }

        if (TryRead(buffer[..length], out report))
        {
            return ReceiveOutcome.Received;
        }

        Interlocked.Increment(ref _ignored);
        report = default;
        return ReceiveOutcome.TimedOut;
    }

    /// <summary>An IPv4 raw socket returns the carrying IPv4 header first; an IPv6 one the ICMPv6 message alone (RFC 3542 §3).</summary>
    private bool TryRead(ReadOnlySpan<byte> message, out PacketTooBigReport report)
    {
        report = default;
        IcmpReportError error;
        if (_localAddress.IsIPv6)
        {
            error = IcmpPacketTooBig.TryReadIPv6(message, out report);
        }
        else
        {
            var headerLength = message.IsEmpty ? 0 : (message[0] & 0x0F) * 4;
            error = headerLength == 0 || message.Length < headerLength ? IcmpReportError.Truncated : IcmpPacketTooBig.TryReadIPv4(message[headerLength..], out report);
        }

        return error == IcmpReportError.None && report.QuotedSource == _localAddress && report.QuotedProtocol == _protocol;
    }

    private static void ClearBit(Span<byte> filter, int type)
    {
        // The kernel reads the filter as 32-bit words in host order: bit (type & 31) of word (type >> 5).
        var word = MemoryMarshal.Cast<byte, uint>(filter);
        word[type >> 5] &= ~(1u << (type & 31));
    }

    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
    }
}

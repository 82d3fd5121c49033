using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// The raw socket under <see cref="RawIPv4Transport"/> and <see cref="RawIPv6Transport"/>: created with libc (.NET refuses
/// raw sockets of unknown protocols such as 253 before any system call, dotnet/runtime#67303), its buffers and mark
/// set, and bound to the local address so that the kernel delivers only packets addressed to it (raw_v4_match,
/// raw_v6_match).
/// </summary>
internal static class RawSockets
{
    /// <summary>Opens a raw socket of <paramref name="localAddress"/>'s family in the calling thread's network namespace.</summary>
    /// <exception cref="InsufficientPrivilegeException">the process lacks CAP_NET_RAW (or CAP_NET_ADMIN for a mark).</exception>
    /// <exception cref="PacketTransportException">the socket could not be opened or bound.</exception>
    public static Socket Open(IpAddress localAddress, byte protocol, RawTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (domain, family) = localAddress.IsIPv4 ? (Libc.AfInet, "AF_INET") : (Libc.AfInet6, "AF_INET6");
        var fd = Libc.Socket(domain, Libc.SockRaw | Libc.SockCloexec, protocol);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var cause = new SocketException(errno);
            if (errno is Libc.Eperm or Libc.Eacces)
            {
                throw new InsufficientPrivilegeException(
                    $"Opening a raw {family} socket for IP protocol {protocol} was refused: it requires root or CAP_NET_RAW. " +
                    "Run as root (or grant CAP_NET_RAW), or use the UDP encapsulation transport, which needs no privilege.",
                    cause);
            }

            throw new PacketTransportException($"socket({family}, SOCK_RAW, {protocol}) failed: {cause.Message} (errno {errno})", cause);
        }

        var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        try
        {
            Configure(socket, localAddress, options);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }

    private static void Configure(Socket socket, IpAddress localAddress, RawTransportOptions options)
    {
        SetBuffer(socket, Libc.SoRcvbufforce, SocketOptionName.ReceiveBuffer, options.ReceiveBufferBytes);
        SetBuffer(socket, Libc.SoSndbufforce, SocketOptionName.SendBuffer, options.SendBufferBytes);
        if (options.SocketMark is { } mark)
        {
            Span<byte> value = stackalloc byte[sizeof(uint)];
            BinaryPrimitives.WriteUInt32LittleEndian(value, mark);
            try
            {
                socket.SetRawSocketOption(Libc.SolSocket, Libc.SoMark, value);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied || e.ErrorCode == Libc.Eperm)
            {
                throw new InsufficientPrivilegeException(
                    "Setting SO_MARK on the raw socket requires root or CAP_NET_ADMIN: run as root or use the UDP encapsulation transport.", e);
            }
        }

        try
        {
            // Bound raw sockets get only packets whose destination is the bound address (raw_v4_match, raw_v6_match).
            socket.Bind(new IPEndPoint(localAddress.ToIPAddress(), 0));
        }
        catch (SocketException e)
        {
            throw new PacketTransportException($"binding the raw socket to {localAddress} failed: {e.Message}; is the address assigned to an interface in this network namespace?", e);
        }
    }

    private static void SetBuffer(Socket socket, int forceOption, SocketOptionName fallback, int bytes)
    {
        Span<byte> value = stackalloc byte[sizeof(int)];
        BinaryPrimitives.WriteInt32LittleEndian(value, bytes);
        try
        {
            socket.SetRawSocketOption(Libc.SolSocket, forceOption, value);
        }
        catch (SocketException)
        {
            // Without CAP_NET_ADMIN the kernel caps the plain option at net.core.[rw]mem_max.
            socket.SetSocketOption(SocketOptionLevel.Socket, fallback, bytes);
        }
    }
}

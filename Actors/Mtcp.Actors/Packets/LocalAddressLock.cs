using System.Net.Sockets;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// One raw-transport MTCP process per local address (docs/threat-model.md): every raw socket of protocol 253 sees every
/// packet, so a second process on the same address answers the first one's segments with resets. The lock is a Unix
/// socket bound to an abstract name made of the address (Linux: no file, scoped to the network namespace like the address itself,
/// released by the kernel when the process exits, however it exits); a second bind fails with "address in use".
/// </summary>
internal sealed class LocalAddressLock : IDisposable
{
    private readonly Socket _socket;

    private LocalAddressLock(Socket socket) => _socket = socket;

    /// <exception cref="PacketTransportException">another process of this network namespace holds the address.</exception>
    public static LocalAddressLock Acquire(IpAddress address)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            // A leading NUL puts the name in Linux's abstract namespace.
            socket.Bind(new UnixDomainSocketEndPoint($"\0mtcp-raw-local-address/{address}"));
            return new LocalAddressLock(socket);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new PacketTransportException(
                $"local address {address} (mtcp.runtime.local-address) is already used by another MTCP node or agent on this host: give each process its own address", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => _socket.Dispose();
}

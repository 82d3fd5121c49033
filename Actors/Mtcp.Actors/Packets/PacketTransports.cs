using Mtcp.Actors.Configuration;
using Mtcp.Transports;

namespace Mtcp.Actors.Packets;

/// <summary>
/// A transport opened from the settings, and why it is the one; <paramref name="AddressLock"/>, when set, keeps other
/// processes off its local address until disposed with the transport.
/// </summary>
internal sealed record OpenedTransport(IPacketTransport Transport, string Reason, IDisposable? AddressLock = null);

/// <summary>Opens the packet transport <c>mtcp.runtime.transport</c> names.</summary>
internal static class PacketTransports
{
    /// <param name="fabric">the in-process network for <see cref="TransportKind.Memory"/>; ignored otherwise.</param>
    /// <exception cref="PacketTransportException">
    /// the transport could not be opened, or another process uses its local address; the message says what to change.
    /// </exception>
    public static OpenedTransport Open(RuntimeSettings settings, InMemoryPacketFabric? fabric = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        switch (settings.Transport)
        {
            case TransportKind.Raw:
                return OpenRaw(settings, "mtcp.runtime.transport = raw");
            case TransportKind.Udp:
                return new OpenedTransport(OpenUdp(settings), "mtcp.runtime.transport = udp");
            case TransportKind.Memory:
                if (fabric is null)
                {
                    throw new PacketTransportException(
                        "mtcp.runtime.transport = memory needs an in-process fabric: start the runtime with MtcpRuntime.Start(system, fabric)");
                }

                return new OpenedTransport(fabric.Attach(settings.LocalAddress), "mtcp.runtime.transport = memory");
            default:
                try
                {
                    return OpenRaw(settings, "mtcp.runtime.transport = auto and raw sockets are permitted (CAP_NET_RAW)");
                }
                catch (InsufficientPrivilegeException e)
                {
                    return new OpenedTransport(
                        OpenUdp(settings),
                        $"mtcp.runtime.transport = auto and raw sockets are refused ({e.InnerException?.Message ?? e.Message}); run as root or grant CAP_NET_RAW for raw IP protocol 253");
                }
        }
    }

    /// <summary>
    /// A raw socket sees every protocol-253 packet of the host, so a second process on the same local address would
    /// answer the first one's segments (with resets): the address is locked first. The UDP transport needs no lock:
    /// its port's bind already fails in a second process.
    /// </summary>
    private static OpenedTransport OpenRaw(RuntimeSettings settings, string reason)
    {
        var addressLock = LocalAddressLock.Acquire(settings.LocalAddress);
        try
        {
            var transport = RawIPTransport.OpenExperimental(
                settings.LocalAddress,
                new RawTransportOptions { ReceiveBufferBytes = settings.RawReceiveBufferSize, SendBufferBytes = settings.RawSendBufferSize });
            return new OpenedTransport(transport, reason, addressLock);
        }
        catch
        {
            addressLock.Dispose();
            throw;
        }
    }

    private static UdpEncapsulationTransport OpenUdp(RuntimeSettings settings) =>
        UdpEncapsulationTransport.Open(settings.LocalAddress, settings.UdpPort, settings.UdpPeerPort, settings.UdpSocketBufferSize);
}

using Mtcp.Actors.Configuration;
using Mtcp.Transports;

namespace Mtcp.Actors.Packets;

/// <summary>A transport opened from the settings, and why it is the one.</summary>
internal sealed record OpenedTransport(IPacketTransport Transport, string Reason);

/// <summary>Opens the packet transport <c>mtcp.runtime.transport</c> names.</summary>
internal static class PacketTransports
{
    /// <param name="fabric">the in-process network for <see cref="TransportKind.Memory"/>; ignored otherwise.</param>
    /// <exception cref="PacketTransportException">the transport could not be opened; the message says what to change.</exception>
    public static OpenedTransport Open(RuntimeSettings settings, InMemoryPacketFabric? fabric = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        switch (settings.Transport)
        {
            case TransportKind.Raw:
                return new OpenedTransport(OpenRaw(settings), "mtcp.runtime.transport = raw");
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
                    return new OpenedTransport(OpenRaw(settings), "mtcp.runtime.transport = auto and raw sockets are permitted (CAP_NET_RAW)");
                }
                catch (InsufficientPrivilegeException e)
                {
                    return new OpenedTransport(
                        OpenUdp(settings),
                        $"mtcp.runtime.transport = auto and raw sockets are refused ({e.InnerException?.Message ?? e.Message}); run as root or grant CAP_NET_RAW for raw IP protocol 253");
                }
        }
    }

    private static RawIPv4Transport OpenRaw(RuntimeSettings settings) =>
        RawIPv4Transport.OpenExperimental(
            settings.LocalAddress,
            new RawTransportOptions { ReceiveBufferBytes = settings.RawReceiveBufferSize, SendBufferBytes = settings.RawSendBufferSize });

    private static UdpEncapsulationTransport OpenUdp(RuntimeSettings settings) =>
        UdpEncapsulationTransport.Open(settings.LocalAddress, settings.UdpPort, settings.UdpPeerPort, settings.UdpSocketBufferSize);
}

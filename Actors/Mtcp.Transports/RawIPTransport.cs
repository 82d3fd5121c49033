using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>A transport that carries segments directly in IP packets of one protocol (<see cref="RawIPTransport"/>).</summary>
public interface IRawIPTransport : IPacketTransport
{
    /// <summary>The IP protocol (IPv4) or next header (IPv6) this transport sends and receives.</summary>
    byte Protocol { get; }
}

/// <summary>
/// Opens the raw transport of the local address's family: <see cref="RawIPv4Transport"/> for an IPv4 address,
/// <see cref="RawIPv6Transport"/> for an IPv6 one. Both carry protocol 253 (RFC 3692 experimental; the kernel's TCP never
/// sees it) or protocol 6 (real TCP for kernel peers, with the kernel's own RSTs suppressed by
/// <see cref="KernelResetSuppression"/>, whose <c>inet</c> table covers both families). Needs CAP_NET_RAW.
/// </summary>
public static class RawIPTransport
{
    /// <summary>IP protocol 253, reserved for experimentation (RFC 3692); the same number as an IPv6 next header.</summary>
    public const byte ExperimentalProtocol = 253;

    /// <summary>IP protocol 6, TCP.</summary>
    public const byte TcpProtocol = 6;

    /// <summary>Opens a protocol-253 transport bound to <paramref name="localAddress"/>.</summary>
    public static IRawIPTransport OpenExperimental(IpAddress localAddress, RawTransportOptions? options = null) =>
        Open(localAddress, ExperimentalProtocol, options ?? new RawTransportOptions());

    /// <summary>
    /// Opens a protocol-6 transport bound to <paramref name="localAddress"/>. Unless told otherwise the socket marks its
    /// packets with <see cref="KernelResetSuppression.DefaultEngineMark"/>.
    /// </summary>
    public static IRawIPTransport OpenTcp(IpAddress localAddress, RawTransportOptions? options = null) =>
        Open(localAddress, TcpProtocol, options ?? RawTransportOptions.Tcp);

    /// <summary>
    /// Opens a raw socket for <paramref name="protocol"/> of <paramref name="localAddress"/>'s family in the calling
    /// thread's network namespace (the socket stays in that namespace for its whole life).
    /// </summary>
    /// <exception cref="ArgumentException">the address is neither IPv4 nor IPv6.</exception>
    /// <exception cref="InsufficientPrivilegeException">the process lacks CAP_NET_RAW.</exception>
    /// <exception cref="PacketTransportException">the socket could not be opened or bound.</exception>
    public static IRawIPTransport Open(IpAddress localAddress, byte protocol, RawTransportOptions options) =>
        localAddress.IsIPv4 ? RawIPv4Transport.Open(localAddress, protocol, options)
        : localAddress.IsIPv6 ? RawIPv6Transport.Open(localAddress, protocol, options)
        : throw new ArgumentException($"a raw transport needs an IPv4 or IPv6 local address, not {localAddress}", nameof(localAddress));
}

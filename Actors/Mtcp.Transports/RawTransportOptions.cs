namespace Mtcp.Transports;

/// <summary>Settings of a raw IP transport (IPv4 or IPv6).</summary>
public sealed record RawTransportOptions
{
    /// <summary>
    /// Receive buffer asked for with SO_RCVBUFFORCE (falls back to SO_RCVBUF, capped by rmem_max, when
    /// not permitted). The default 208 KB overruns under bulk transfer.
    /// </summary>
    public int ReceiveBufferBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>Send buffer, set the same way as the receive buffer.</summary>
    public int SendBufferBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>
    /// SO_MARK put on every packet sent, so that a firewall rule can tell the engine's segments from
    /// the kernel's (see <see cref="KernelResetSuppression"/>). Null leaves packets unmarked.
    /// </summary>
    public uint? SocketMark { get; init; }

    /// <summary>The defaults of a protocol-6 transport: packets marked with <see cref="KernelResetSuppression.DefaultEngineMark"/>.</summary>
    public static RawTransportOptions Tcp { get; } = new() { SocketMark = KernelResetSuppression.DefaultEngineMark };
}

namespace Mtcp.Transports;

/// <summary>A transport could not be opened or configured; the message says why and what to do.</summary>
public class PacketTransportException : Exception
{
    public PacketTransportException(string message)
        : base(message)
    {
    }

    public PacketTransportException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The process lacks a capability the transport needs (CAP_NET_RAW for raw sockets, CAP_NET_ADMIN for
/// nftables and socket marks).
/// </summary>
public sealed class InsufficientPrivilegeException : PacketTransportException
{
    public InsufficientPrivilegeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Some segments of a batch met a socket that could not send them at all (<see cref="IPacketTransport.SendBatch"/>); the
/// others were tried, and <see cref="Unsent"/> counts every segment that did not go, these and the ones lost locally.
/// </summary>
public sealed class PacketBatchException : PacketTransportException
{
    public PacketBatchException(string message, int unsent)
        : base(message)
    {
        Unsent = unsent;
    }

    public PacketBatchException(string message, int unsent, Exception innerException)
        : base(message, innerException)
    {
        Unsent = unsent;
    }

    /// <summary>The batch's segments that were not sent: those the socket could not send and those dropped locally.</summary>
    public int Unsent { get; }
}

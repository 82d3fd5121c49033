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

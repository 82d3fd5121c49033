using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>
/// One segment in flight on the simulated network: addresses, the structured header and a private copy of the
/// payload (so a sender may reuse its buffer and duplicates share nothing mutable).
/// </summary>
public readonly record struct SimPacket(IpAddress Source, IpAddress Destination, TcpSegmentRepr Header, ReadOnlyMemory<byte> Payload)
{
    /// <summary>IPv4 and TCP headers without options: what the MTU limit counts besides the payload.</summary>
    public const int HeaderOverhead = 40;

    public int Size => HeaderOverhead + Payload.Length;
}

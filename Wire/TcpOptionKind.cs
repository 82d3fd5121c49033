namespace Mtcp.Wire;

/// <summary>TCP option kinds this codec knows (IANA "TCP Option Kind Numbers").</summary>
public enum TcpOptionKind : byte
{
    EndOfOptionList = 0,
    NoOperation = 1,
    MaxSegmentSize = 2,
    WindowScale = 3,
    SackPermitted = 4,
    Sack = 5,
    Timestamps = 8,

    /// <summary>RFC 4727 experimental kind, shared through an ExID (RFC 6994); MTCP emits this one.</summary>
    Experimental1 = 253,

    /// <summary>The second RFC 4727 experimental kind; accepted with our ExID too.</summary>
    Experimental2 = 254,
}

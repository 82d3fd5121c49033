namespace Mtcp.Wire;

/// <summary>
/// Why bytes were rejected by a decoder (or a value by an encoder). Every malformed input maps to one
/// of these; decoders never throw on untrusted bytes.
/// </summary>
public enum WireError : byte
{
    None = 0,

    /// <summary>The buffer ends before a fixed-size field or the header the data offset announces.</summary>
    Truncated,

    /// <summary>The data offset is below 5 words or points past the end of the segment (RFC 9293 §3.1).</summary>
    BadDataOffset,

    /// <summary>The Internet checksum over pseudo-header, header and payload does not verify.</summary>
    BadChecksum,

    /// <summary>An option's length byte is missing or runs past the end of the option area.</summary>
    OptionOverrun,

    /// <summary>An option's length byte is below 2 or not the length its kind requires.</summary>
    BadOptionLength,

    /// <summary>The options to emit need more than the 40 bytes a 4-bit data offset leaves (RFC 9293 §3.1).</summary>
    OptionsTooLong,

    /// <summary>An MTCP option (our ExID) carries reserved bits, an impossible layout or an unknown address family.</summary>
    BadMtcpOption,

    /// <summary>The destination buffer is too small for what is to be written.</summary>
    BufferTooSmall,

    /// <summary>The segment's payload would make it longer than the 16-bit lengths of IP allow.</summary>
    SegmentTooLong,

    /// <summary>An address that is required is the default (family-less) <see cref="IpAddress"/>.</summary>
    MissingAddress,

    /// <summary>Source and destination addresses of one pseudo-header are of different families.</summary>
    AddressFamilyMismatch,
}

/// <summary>Whether a decoder verifies the checksum (off only for buffers already verified, e.g. by a NIC).</summary>
public enum ChecksumPolicy : byte
{
    Verify = 0,
    Ignore = 1,
}

namespace Mtcp.Wire;

/// <summary>One SACK block (RFC 2018): the bytes [Left, Right) were received.</summary>
public readonly record struct SackBlock(SeqNumber Left, SeqNumber Right);

/// <summary>The timestamps option (RFC 7323 §3).</summary>
public readonly record struct TcpTimestamps(uint TsVal, uint TsEcr);

/// <summary>
/// Up to four SACK blocks held inline, so a segment with SACK decodes without allocating
/// (four blocks is the most that fit in 40 bytes of option space, RFC 2018 §3).
/// </summary>
public readonly record struct SackBlockList
{
    public const int Capacity = 4;

    private readonly SackBlock _b0;
    private readonly SackBlock _b1;
    private readonly SackBlock _b2;
    private readonly SackBlock _b3;

    private SackBlockList(int count, SackBlock b0, SackBlock b1, SackBlock b2, SackBlock b3)
    {
        Count = count;
        _b0 = b0;
        _b1 = b1;
        _b2 = b2;
        _b3 = b3;
    }

    public int Count { get; }

    public SackBlock this[int index] => index switch
    {
        0 when Count > 0 => _b0,
        1 when Count > 1 => _b1,
        2 when Count > 2 => _b2,
        3 when Count > 3 => _b3,
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    /// <summary>Returns a list with <paramref name="block"/> appended; the list must not be full.</summary>
    public SackBlockList Add(SackBlock block) => Count switch
    {
        0 => new(1, block, default, default, default),
        1 => new(2, _b0, block, default, default),
        2 => new(3, _b0, _b1, block, default),
        3 => new(4, _b0, _b1, _b2, block),
        _ => throw new InvalidOperationException("at most four SACK blocks fit in the option space"),
    };
}

/// <summary>
/// The options of one segment as validated values. The standard options are fields; options we do not
/// know are kept as their raw bytes (kind, length and data, in order) so they round-trip untouched.
/// </summary>
public readonly record struct TcpOptions
{
    /// <summary>MSS (RFC 9293 §3.7.1); only on SYN segments.</summary>
    public ushort? MaxSegmentSize { get; init; }

    /// <summary>Window scale shift count (RFC 7323 §2); only on SYN segments.</summary>
    public byte? WindowScale { get; init; }

    /// <summary>SACK-permitted (RFC 2018 §2); only on SYN segments.</summary>
    public bool SackPermitted { get; init; }

    /// <summary>SACK blocks (RFC 2018 §3).</summary>
    public SackBlockList Sack { get; init; }

    /// <summary>Timestamps (RFC 7323 §3).</summary>
    public TcpTimestamps? Timestamps { get; init; }

    /// <summary>Raw bytes of every option this codec does not decode, in wire order; empty when none.</summary>
    public ReadOnlyMemory<byte> Unknown { get; init; }
}

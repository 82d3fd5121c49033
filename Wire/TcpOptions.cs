using System.Buffers.Binary;

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
/// Decoding allocates only for unknown options and for MTCP options that carry lists.
/// </summary>
public readonly partial record struct TcpOptions
{
    private const int MaxSegmentSizeLength = 4;
    private const int WindowScaleLength = 3;
    private const int SackPermittedLength = 2;
    private const int TimestampsLength = 10;
    private const int SackBlockLength = 8;

    /// <summary>
    /// The MTCP options live behind one reference, null on every segment that has none: they appear only
    /// on the few segments of a migration, and keeping them out of line keeps this struct (copied with
    /// every segment) small. Immutable, so copies of this struct may share it.
    /// </summary>
    private readonly MtcpOptionValues? _mtcp;

    public TcpOptions()
    {
    }

    private TcpOptions(MtcpOptionValues? mtcp) => _mtcp = mtcp;

    /// <summary>MSS (RFC 9293 §3.7.1); only on SYN segments.</summary>
    public ushort? MaxSegmentSize { get; init; }

    /// <summary>
    /// Window scale shift count (RFC 7323 §2); only on SYN segments. Kept as received: values above 14
    /// are for the engine to clamp (RFC 7323 §2.3), not for the codec to reject.
    /// </summary>
    public byte? WindowScale { get; init; }

    /// <summary>SACK-permitted (RFC 2018 §2); only on SYN segments.</summary>
    public bool SackPermitted { get; init; }

    /// <summary>SACK blocks (RFC 2018 §3).</summary>
    public SackBlockList Sack { get; init; }

    /// <summary>Timestamps (RFC 7323 §3).</summary>
    public TcpTimestamps? Timestamps { get; init; }

    /// <summary>Raw bytes of every option this codec does not decode, in wire order; empty when none.</summary>
    public ReadOnlyMemory<byte> Unknown { get; init; }

    /// <summary>
    /// TCP_MIGRATE: alternate servers, on the origin server's SYN+ACK, or on its first segments after the
    /// handshake when the migration secret left no room for them (see <see cref="WithMigrationSecret"/>); the
    /// list received last replaces the one before.
    /// </summary>
    public MtcpAlternateServers? AlternateServers
    {
        get => _mtcp?.AlternateServers;
        init => _mtcp = (_mtcp ?? MtcpOptionValues.None) with { AlternateServers = value };
    }

    /// <summary>TCP_MIGRATED_CONN, on the client's special SYN to the new server.</summary>
    public MtcpMigratedConnection? MigratedConnection
    {
        get => _mtcp?.MigratedConnection;
        init => _mtcp = (_mtcp ?? MtcpOptionValues.None) with { MigratedConnection = value };
    }

    /// <summary>MIGRATE_TRIGGER, on a trigger's special segment to the client.</summary>
    public MtcpMigrateTrigger? MigrateTrigger
    {
        get => _mtcp?.MigrateTrigger;
        init => _mtcp = (_mtcp ?? MtcpOptionValues.None) with { MigrateTrigger = value };
    }

    /// <summary>The origin's <c>last_ack_sent</c> and <c>snd_max_seen</c>, on the new server's SYN+ACK.</summary>
    public MtcpOrigConnectionInfo? OrigConnectionInfo
    {
        get => _mtcp?.OrigConnectionInfo;
        init => _mtcp = (_mtcp ?? MtcpOptionValues.None) with { OrigConnectionInfo = value };
    }

    /// <summary>
    /// β = <c>t_last_rcv_nxt - snd_max_seen</c> (thesis 4.2.3), the bytes the client received from the
    /// origin beyond what the new server's state covers, on the client's ACK of the new server's SYN.
    /// </summary>
    public uint? Beta
    {
        get => _mtcp?.Beta;
        init => _mtcp = (_mtcp ?? MtcpOptionValues.None) with { Beta = value };
    }

    /// <summary>
    /// The connection's migration secret, on the origin server's SYN+ACK (beyond the thesis). Set it with
    /// <see cref="WithMigrationSecret"/> when the segment also carries TCP_MIGRATE, so that the list, not the
    /// secret, gives way.
    /// </summary>
    public MtcpMigrationSecret? MigrationSecret
    {
        get => _mtcp?.MigrationSecret;
        init => _mtcp = (_mtcp ?? MtcpOptionValues.None) with { MigrationSecret = value };
    }

    /// <summary>
    /// CLIENT_STATE: the payload is a sealed client-stored state (<see cref="ClientStateBlob"/>), not stream data; on
    /// the serving node's state segments to its client and on a special SYN that presents the state.
    /// </summary>
    public bool ClientState
    {
        get => _mtcp?.ClientState ?? false;
        init => _mtcp = value || _mtcp is not null ? (_mtcp ?? MtcpOptionValues.None) with { ClientState = value } : null;
    }

    /// <summary>Bytes the options take on the wire, before padding to a 32-bit boundary.</summary>
    public int BufferLength =>
        (MaxSegmentSize.HasValue ? MaxSegmentSizeLength : 0)
        + (WindowScale.HasValue ? WindowScaleLength : 0)
        + (SackPermitted ? SackPermittedLength : 0)
        + (Timestamps.HasValue ? TimestampsLength : 0)
        + (Sack.Count > 0 ? 2 + (Sack.Count * SackBlockLength) : 0)
        + MtcpBufferLength
        + Unknown.Length;

    /// <summary>Bytes the options take in the header: <see cref="BufferLength"/> rounded up to 4.</summary>
    public int PaddedLength => (BufferLength + 3) & ~3;

    /// <summary>
    /// Decodes an option area (RFC 9293 §3.1, §3.2). EOL ends the list and the bytes after it are
    /// padding. A known kind with the wrong length, a length below 2 or a length that runs past the
    /// area is an error. When a kind repeats, the last occurrence wins.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> options, out TcpOptions result, out WireError error)
    {
        result = default;
        Span<byte> unknown = stackalloc byte[TcpSegment.MaxOptionsLength];
        var unknownLength = 0;
        ushort? maxSegmentSize = null;
        byte? windowScale = null;
        var sackPermitted = false;
        var sack = default(SackBlockList);
        TcpTimestamps? timestamps = null;
        MtcpOptionValues? mtcp = null;
        var index = 0;
        while (index < options.Length)
        {
            var kind = (TcpOptionKind)options[index];
            if (kind == TcpOptionKind.EndOfOptionList)
            {
                break;
            }

            if (kind == TcpOptionKind.NoOperation)
            {
                index++;
                continue;
            }

            if (index + 1 >= options.Length)
            {
                error = WireError.OptionOverrun;
                return false;
            }

            int length = options[index + 1];
            if (length < 2)
            {
                error = WireError.BadOptionLength;
                return false;
            }

            if (length > options.Length - index)
            {
                error = WireError.OptionOverrun;
                return false;
            }

            var whole = options.Slice(index, length);
            var data = whole[2..];
            switch (kind)
            {
                case TcpOptionKind.MaxSegmentSize when length == MaxSegmentSizeLength:
                    maxSegmentSize = BinaryPrimitives.ReadUInt16BigEndian(data);
                    break;
                case TcpOptionKind.WindowScale when length == WindowScaleLength:
                    windowScale = data[0];
                    break;
                case TcpOptionKind.SackPermitted when length == SackPermittedLength:
                    sackPermitted = true;
                    break;
                case TcpOptionKind.Timestamps when length == TimestampsLength:
                    timestamps = new TcpTimestamps(
                        BinaryPrimitives.ReadUInt32BigEndian(data),
                        BinaryPrimitives.ReadUInt32BigEndian(data[4..]));
                    break;
                case TcpOptionKind.Sack when data.Length >= SackBlockLength && data.Length % SackBlockLength == 0:
                    sack = default;
                    for (var offset = 0; offset < data.Length; offset += SackBlockLength)
                    {
                        sack = sack.Add(new SackBlock(
                            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(data[offset..])),
                            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(data[(offset + 4)..]))));
                    }

                    break;
                case TcpOptionKind.MaxSegmentSize or TcpOptionKind.WindowScale or TcpOptionKind.SackPermitted
                    or TcpOptionKind.Timestamps or TcpOptionKind.Sack:
                    error = WireError.BadOptionLength;
                    return false;
                case TcpOptionKind.Experimental1 or TcpOptionKind.Experimental2 when MtcpOption.IsOurs(data):
                    if (!TryParseMtcp(data, ref mtcp, out var recognized, out error))
                    {
                        return false;
                    }

                    if (!recognized)
                    {
                        whole.CopyTo(unknown[unknownLength..]);
                        unknownLength += length;
                    }

                    break;
                default:
                    whole.CopyTo(unknown[unknownLength..]);
                    unknownLength += length;
                    break;
            }

            index += length;
        }

        result = new TcpOptions(mtcp)
        {
            MaxSegmentSize = maxSegmentSize,
            WindowScale = windowScale,
            SackPermitted = sackPermitted,
            Sack = sack,
            Timestamps = timestamps,
            Unknown = unknownLength == 0 ? ReadOnlyMemory<byte>.Empty : unknown[..unknownLength].ToArray(),
        };
        error = WireError.None;
        return true;
    }

    /// <summary>
    /// Writes the options and pads them to a 32-bit boundary with an EOL followed by zeros (RFC 9293
    /// §3.1). Known options go first in a fixed order, then the unknown ones byte for byte.
    /// Fails with <see cref="WireError.OptionsTooLong"/> above 40 bytes.
    /// </summary>
    public bool TryWrite(Span<byte> destination, out int written, out WireError error)
    {
        written = 0;
        var length = BufferLength;
        var padded = (length + 3) & ~3;
        if (length > TcpSegment.MaxOptionsLength)
        {
            error = WireError.OptionsTooLong;
            return false;
        }

        if (destination.Length < padded)
        {
            error = WireError.BufferTooSmall;
            return false;
        }

        if (!TryWriteMtcpPrerequisites(out error))
        {
            return false;
        }

        var at = 0;
        if (MaxSegmentSize is { } mss)
        {
            destination[at] = (byte)TcpOptionKind.MaxSegmentSize;
            destination[at + 1] = MaxSegmentSizeLength;
            BinaryPrimitives.WriteUInt16BigEndian(destination[(at + 2)..], mss);
            at += MaxSegmentSizeLength;
        }

        if (WindowScale is { } shift)
        {
            destination[at] = (byte)TcpOptionKind.WindowScale;
            destination[at + 1] = WindowScaleLength;
            destination[at + 2] = shift;
            at += WindowScaleLength;
        }

        if (SackPermitted)
        {
            destination[at] = (byte)TcpOptionKind.SackPermitted;
            destination[at + 1] = SackPermittedLength;
            at += SackPermittedLength;
        }

        if (Timestamps is { } timestamps)
        {
            destination[at] = (byte)TcpOptionKind.Timestamps;
            destination[at + 1] = TimestampsLength;
            BinaryPrimitives.WriteUInt32BigEndian(destination[(at + 2)..], timestamps.TsVal);
            BinaryPrimitives.WriteUInt32BigEndian(destination[(at + 6)..], timestamps.TsEcr);
            at += TimestampsLength;
        }

        if (Sack.Count > 0)
        {
            destination[at] = (byte)TcpOptionKind.Sack;
            destination[at + 1] = (byte)(2 + (Sack.Count * SackBlockLength));
            at += 2;
            for (var i = 0; i < Sack.Count; i++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(destination[at..], Sack[i].Left.Value);
                BinaryPrimitives.WriteUInt32BigEndian(destination[(at + 4)..], Sack[i].Right.Value);
                at += SackBlockLength;
            }
        }

        at += WriteMtcp(destination[at..]);
        Unknown.Span.CopyTo(destination[at..]);
        at += Unknown.Length;

        destination[at..padded].Clear();
        written = padded;
        error = WireError.None;
        return true;
    }

    /// <summary>Value equality that compares <see cref="Unknown"/> by content, not by buffer identity.</summary>
    public bool Equals(TcpOptions other) =>
        MaxSegmentSize == other.MaxSegmentSize
        && WindowScale == other.WindowScale
        && SackPermitted == other.SackPermitted
        && Sack == other.Sack
        && Timestamps == other.Timestamps
        && Unknown.Span.SequenceEqual(other.Unknown.Span)
        && MtcpEquals(other);

    public override int GetHashCode() =>
        HashCode.Combine(MaxSegmentSize, WindowScale, SackPermitted, Sack, Timestamps, Unknown.Length, MtcpHashCode());
}

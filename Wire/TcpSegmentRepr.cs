namespace Mtcp.Wire;

/// <summary>
/// A validated TCP segment header (RFC 9293 §3.1) with its options, without the payload. This is the
/// value the protocol engine consumes and produces; the payload travels beside it as a span.
/// </summary>
public readonly record struct TcpSegmentRepr
{
    public ushort SourcePort { get; init; }

    public ushort DestinationPort { get; init; }

    public SeqNumber SequenceNumber { get; init; }

    /// <summary>Meaningful only when <see cref="TcpFlags.Ack"/> is set.</summary>
    public SeqNumber AcknowledgmentNumber { get; init; }

    public TcpFlags Flags { get; init; }

    /// <summary>The 16-bit window field as sent, before window scaling (RFC 7323 §2.2).</summary>
    public ushort Window { get; init; }

    public ushort UrgentPointer { get; init; }

    public TcpOptions Options { get; init; }

    public bool Has(TcpFlags flag) => (Flags & flag) == flag;
}

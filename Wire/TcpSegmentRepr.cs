using System.Buffers.Binary;

namespace Mtcp.Wire;

/// <summary>
/// A validated TCP segment header (RFC 9293 §3.1) with its options, without the payload. This is the
/// value the protocol engine consumes and produces; the payload travels beside it as a span.
/// </summary>
public readonly record struct TcpSegmentRepr
{
    /// <summary>The TCP length of the pseudo-header is 16 bits for IPv4 (RFC 9293 §3.1).</summary>
    public const int MaxSegmentLength = ushort.MaxValue;

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

    /// <summary>Header bytes this repr emits: 20 plus the options padded to 32 bits.</summary>
    public int HeaderLength => TcpSegment.MinHeaderLength + Options.PaddedLength;

    /// <summary>
    /// Decodes one segment. <paramref name="segment"/> must be exactly the segment (its length is the
    /// pseudo-header's TCP length); <paramref name="payloadOffset"/> is where the payload starts in it.
    /// The reserved header bits are ignored (RFC 9293 §3.1). Never throws on any input.
    /// </summary>
    public static bool TryParse(
        ReadOnlySpan<byte> segment,
        IpAddress source,
        IpAddress destination,
        ChecksumPolicy checksum,
        out TcpSegmentRepr repr,
        out int payloadOffset,
        out WireError error)
    {
        repr = default;
        payloadOffset = 0;
        if (!TcpSegment.TryCreate(segment, out var view, out error))
        {
            return false;
        }

        if (segment.Length > MaxSegmentLength)
        {
            error = WireError.SegmentTooLong;
            return false;
        }

        if (checksum == ChecksumPolicy.Verify)
        {
            if (!CheckAddresses(source, destination, out error))
            {
                return false;
            }

            if (!view.VerifyChecksum(source, destination))
            {
                error = WireError.BadChecksum;
                return false;
            }
        }

        if (!TcpOptions.TryParse(view.Options, out var options, out error))
        {
            return false;
        }

        repr = new TcpSegmentRepr
        {
            SourcePort = view.SourcePort,
            DestinationPort = view.DestinationPort,
            SequenceNumber = view.SequenceNumber,
            AcknowledgmentNumber = view.AcknowledgmentNumber,
            Flags = view.Flags,
            Window = view.Window,
            UrgentPointer = view.UrgentPointer,
            Options = options,
        };
        payloadOffset = view.HeaderLength;
        return true;
    }

    /// <summary>
    /// Writes header, options and <paramref name="payload"/> to <paramref name="destination"/> and fills
    /// the checksum over the pseudo-header of <paramref name="source"/> and <paramref name="destinationAddress"/>
    /// (always protocol 6). <paramref name="payload"/> may already sit at
    /// <c>destination[HeaderLength..]</c>: the copy handles overlap. Returns the segment length.
    /// </summary>
    public bool TryEmit(
        Span<byte> destination,
        ReadOnlySpan<byte> payload,
        IpAddress source,
        IpAddress destinationAddress,
        out int written,
        out WireError error)
    {
        written = 0;
        if (!CheckAddresses(source, destinationAddress, out error))
        {
            return false;
        }

        var options = Options;
        var optionsLength = options.BufferLength;
        if (optionsLength > TcpSegment.MaxOptionsLength)
        {
            error = WireError.OptionsTooLong;
            return false;
        }

        var headerLength = TcpSegment.MinHeaderLength + ((optionsLength + 3) & ~3);
        var total = headerLength + payload.Length;
        if (total > MaxSegmentLength)
        {
            error = WireError.SegmentTooLong;
            return false;
        }

        if (destination.Length < total)
        {
            error = WireError.BufferTooSmall;
            return false;
        }

        // Payload first: a caller may have built it in place at destination[headerLength..] already.
        payload.CopyTo(destination[headerLength..]);
        if (!options.TryWrite(destination[TcpSegment.Field.Options..headerLength], out _, out error))
        {
            return false;
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination[TcpSegment.Field.SourcePort..], SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[TcpSegment.Field.DestinationPort..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(destination[TcpSegment.Field.SequenceNumber..], SequenceNumber.Value);
        BinaryPrimitives.WriteUInt32BigEndian(destination[TcpSegment.Field.AcknowledgmentNumber..], AcknowledgmentNumber.Value);
        destination[TcpSegment.Field.DataOffset] = (byte)((headerLength / 4) << 4);
        destination[TcpSegment.Field.Flags] = (byte)Flags;
        BinaryPrimitives.WriteUInt16BigEndian(destination[TcpSegment.Field.Window..], Window);
        BinaryPrimitives.WriteUInt16BigEndian(destination[TcpSegment.Field.Checksum..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(destination[TcpSegment.Field.UrgentPointer..], UrgentPointer);

        var segment = destination[..total];
        var sum = InternetChecksum.Accumulate(segment, InternetChecksum.PseudoHeaderSum(source, destinationAddress, total));
        BinaryPrimitives.WriteUInt16BigEndian(destination[TcpSegment.Field.Checksum..], InternetChecksum.Finish(sum));
        written = total;
        error = WireError.None;
        return true;
    }

    /// <summary>
    /// <see cref="TryEmit"/> for values the caller built itself: a failure here is a programming error
    /// (options over 40 bytes, a buffer too small), so it throws.
    /// </summary>
    public int Emit(Span<byte> destination, ReadOnlySpan<byte> payload, IpAddress source, IpAddress destinationAddress)
    {
        if (!TryEmit(destination, payload, source, destinationAddress, out var written, out var error))
        {
            throw new ArgumentException($"cannot emit the segment: {error}", nameof(destination));
        }

        return written;
    }

    private static bool CheckAddresses(IpAddress source, IpAddress destination, out WireError error)
    {
        if (source.Length == 0 || destination.Length == 0)
        {
            error = WireError.MissingAddress;
            return false;
        }

        if (source.Family != destination.Family)
        {
            error = WireError.AddressFamilyMismatch;
            return false;
        }

        error = WireError.None;
        return true;
    }
}

using System.Buffers.Binary;

namespace Mtcp.Wire;

/// <summary>
/// A zero-copy view of a TCP segment (header, options and payload). <see cref="TryCreate"/> checks the
/// lengths once; after that no accessor can read out of range. Field values are not validated beyond
/// what the lengths need: that is <see cref="TcpSegmentRepr.TryParse"/>'s job.
/// </summary>
public readonly ref struct TcpSegment
{
    /// <summary>
    /// Field offsets of the header (RFC 9293 §3.1):
    /// <code>
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |          Source Port          |       Destination Port        |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                        Sequence Number                        |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                    Acknowledgment Number                      |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |  Data |       |C|E|U|A|P|R|S|F|                               |
    /// | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
    /// |       |       |R|E|G|K|H|T|N|N|                               |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |           Checksum            |         Urgent Pointer        |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// |                           [Options]                           |
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// </code>
    /// </summary>
    public static class Field
    {
        public const int SourcePort = 0;
        public const int DestinationPort = 2;
        public const int SequenceNumber = 4;
        public const int AcknowledgmentNumber = 8;

        /// <summary>High nibble: header length in 32-bit words; low nibble: reserved.</summary>
        public const int DataOffset = 12;
        public const int Flags = 13;
        public const int Window = 14;
        public const int Checksum = 16;
        public const int UrgentPointer = 18;
        public const int Options = 20;
    }

    /// <summary>Header length without options.</summary>
    public const int MinHeaderLength = 20;

    /// <summary>A 4-bit data offset counts at most 15 words.</summary>
    public const int MaxHeaderLength = 60;

    public const int MaxOptionsLength = MaxHeaderLength - MinHeaderLength;

    private readonly ReadOnlySpan<byte> _buffer;

    private TcpSegment(ReadOnlySpan<byte> buffer) => _buffer = buffer;

    /// <summary>
    /// Wraps <paramref name="buffer"/> (exactly one segment: its length is the TCP length of the
    /// pseudo-header) after checking that it holds a fixed header and the options its data offset announces.
    /// </summary>
    public static bool TryCreate(ReadOnlySpan<byte> buffer, out TcpSegment segment, out WireError error)
    {
        segment = default;
        if (buffer.Length < MinHeaderLength)
        {
            error = WireError.Truncated;
            return false;
        }

        var headerLength = (buffer[Field.DataOffset] >> 4) * 4;
        if (headerLength < MinHeaderLength)
        {
            error = WireError.BadDataOffset;
            return false;
        }

        if (headerLength > buffer.Length)
        {
            // The fixed header is there but the options it announces are not: a truncated segment
            // and a lying data offset are indistinguishable here (RFC 9293 §3.1).
            error = WireError.BadDataOffset;
            return false;
        }

        segment = new TcpSegment(buffer);
        error = WireError.None;
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.SourcePort..]);

    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.DestinationPort..]);

    public SeqNumber SequenceNumber => new(BinaryPrimitives.ReadUInt32BigEndian(_buffer[Field.SequenceNumber..]));

    public SeqNumber AcknowledgmentNumber => new(BinaryPrimitives.ReadUInt32BigEndian(_buffer[Field.AcknowledgmentNumber..]));

    /// <summary>Header length in bytes, options included (data offset × 4).</summary>
    public int HeaderLength => (_buffer[Field.DataOffset] >> 4) * 4;

    /// <summary>The four reserved bits (RFC 9293 §3.1): sent as zero, ignored on receipt.</summary>
    public byte Reserved => (byte)(_buffer[Field.DataOffset] & 0x0F);

    public TcpFlags Flags => (TcpFlags)_buffer[Field.Flags];

    public ushort Window => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.Window..]);

    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.Checksum..]);

    public ushort UrgentPointer => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.UrgentPointer..]);

    public ReadOnlySpan<byte> Options => _buffer[Field.Options..HeaderLength];

    public ReadOnlySpan<byte> Payload => _buffer[HeaderLength..];

    /// <summary>The whole segment, as given to <see cref="TryCreate"/>.</summary>
    public ReadOnlySpan<byte> Bytes => _buffer;

    /// <summary>
    /// True when the checksum verifies over the pseudo-header (protocol 6) and the whole segment: the
    /// ones' complement sum including the checksum field is all ones (RFC 1071 §1(2)).
    /// </summary>
    public bool VerifyChecksum(IpAddress source, IpAddress destination)
    {
        var sum = InternetChecksum.PseudoHeaderSum(source, destination, _buffer.Length);
        return InternetChecksum.Fold(InternetChecksum.Accumulate(_buffer, sum)) == 0xFFFF;
    }
}

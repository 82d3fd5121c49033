using System.Buffers.Binary;

namespace Mtcp.Wire.Control;

/// <summary>
/// The fixed header that opens every control frame. It carries the request id so that one control
/// connection per pair of servers can multiplex many state transfers (thesis 4.2.3), and the body length
/// so that a reader on a byte stream can cut frames without understanding them.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------+---------------+-------------------------------+
/// |    Version    |  MessageType  |        Reserved (zero)        |
/// +---------------+---------------+-------------------------------+
/// |                       BodyLength (bytes)                      |
/// +---------------------------------------------------------------+
/// |                                                               |
/// +                       RequestId (64 bits)                     +
/// |                                                               |
/// +---------------------------------------------------------------+
/// |                     Body (BodyLength bytes)                   |
/// </code>
/// All integers are big-endian.
/// </summary>
public readonly record struct ControlFrameHeader(ControlMessageType MessageType, int BodyLength, ulong RequestId)
{
    public const byte CurrentVersion = 1;
    public const int Length = 16;

    /// <summary>Largest body such that the whole frame still fits one span.</summary>
    public const int MaxBodyLength = int.MaxValue - Length;

    internal const int VersionOffset = 0;
    internal const int MessageTypeOffset = 1;
    internal const int ReservedOffset = 2;
    internal const int BodyLengthOffset = 4;
    internal const int RequestIdOffset = 8;

    /// <summary>Header plus body.</summary>
    public int FrameLength => Length + BodyLength;

    /// <summary>
    /// Reads and validates the header at the start of <paramref name="source"/>; the body need not be
    /// present yet, so a stream reader can learn how many bytes the frame needs.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ControlFrameHeader header, out ControlWireError error)
    {
        header = default;
        if (source.Length < Length)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (source[VersionOffset] != CurrentVersion)
        {
            error = ControlWireError.UnsupportedVersion;
            return false;
        }

        var type = (ControlMessageType)source[MessageTypeOffset];
        if (type is < ControlMessageType.StateRequest or > ControlMessageType.ConnectionTakenOver)
        {
            error = ControlWireError.UnknownMessageType;
            return false;
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(source[ReservedOffset..]) != 0)
        {
            error = ControlWireError.ReservedNotZero;
            return false;
        }

        var bodyLength = BinaryPrimitives.ReadUInt32BigEndian(source[BodyLengthOffset..]);
        if (bodyLength > MaxBodyLength)
        {
            error = ControlWireError.BodyLengthMismatch;
            return false;
        }

        header = new ControlFrameHeader(type, (int)bodyLength, BinaryPrimitives.ReadUInt64BigEndian(source[RequestIdOffset..]));
        error = ControlWireError.None;
        return true;
    }

    internal void Write(Span<byte> destination)
    {
        destination[VersionOffset] = CurrentVersion;
        destination[MessageTypeOffset] = (byte)MessageType;
        BinaryPrimitives.WriteUInt16BigEndian(destination[ReservedOffset..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination[BodyLengthOffset..], (uint)BodyLength);
        BinaryPrimitives.WriteUInt64BigEndian(destination[RequestIdOffset..], RequestId);
    }

    /// <summary>
    /// Validates a whole frame of the expected type: header valid, and exactly <see cref="BodyLength"/>
    /// bytes after it, no fewer and no more. On success <paramref name="body"/> is the body.
    /// </summary>
    internal static bool TryReadFrame(
        ReadOnlySpan<byte> frame,
        ControlMessageType expected,
        out ControlFrameHeader header,
        out ReadOnlySpan<byte> body,
        out ControlWireError error)
    {
        body = default;
        if (!TryRead(frame, out header, out error))
        {
            return false;
        }

        if (header.MessageType != expected)
        {
            error = ControlWireError.UnexpectedMessageType;
            return false;
        }

        if (frame.Length - Length != header.BodyLength)
        {
            error = ControlWireError.BodyLengthMismatch;
            return false;
        }

        body = frame[Length..];
        return true;
    }
}

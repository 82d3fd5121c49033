using System.Buffers.Binary;

namespace Mtcp.Wire.Control;

/// <summary>What <see cref="ReplicationChannelFrame.TryRead"/> found at the start of the bytes received.</summary>
public enum ReplicationChannelFrameStatus : byte
{
    /// <summary>A whole frame: its envelope follows the header.</summary>
    Complete,

    /// <summary>The header or the envelope it announces is not all there yet: read more.</summary>
    Incomplete,

    /// <summary>The length is zero: no envelope is empty, so the stream is not a replication channel's.</summary>
    Empty,

    /// <summary>The length is over the limit (the control frame limit): the connection is to be closed, not read further.</summary>
    TooLong,
}

/// <summary>
/// One frame of the direct replication channel (docs/failover.md, "The direct replication channel"): a sealed control
/// envelope (<see cref="ControlEnvelope"/>, the same bytes a control connection carries for a replica update or ack),
/// prefixed with its length, on a TLS stream between two server nodes.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |                  Length (bytes of the envelope)               |
/// +---------------------------------------------------------------+
/// |                  Envelope (Length bytes) ...                  |
/// +---------------------------------------------------------------+
/// </code>
/// The length is big-endian and unsigned; a reader refuses one of zero or over its limit before reading the envelope,
/// so a peer cannot make it buffer more than one control frame. The envelope is opened (identities, MAC) by the reader's
/// caller, as on the control connection.
/// </summary>
public static class ReplicationChannelFrame
{
    /// <summary>Bytes of the length prefix.</summary>
    public const int HeaderLength = 4;

    private const int LengthOffset = 0;

    /// <summary>Bytes of the frame carrying an envelope of <paramref name="envelopeLength"/> bytes.</summary>
    public static int GetEncodedLength(int envelopeLength) => checked(HeaderLength + envelopeLength);

    /// <summary>
    /// Writes the frame of <paramref name="envelope"/> at the start of <paramref name="destination"/>; returns the bytes
    /// written, or 0 when the envelope is empty or the destination too short.
    /// </summary>
    public static int Write(Span<byte> destination, ReadOnlySpan<byte> envelope)
    {
        if (envelope.IsEmpty || destination.Length < HeaderLength + (long)envelope.Length)
        {
            return 0;
        }

        BinaryPrimitives.WriteUInt32BigEndian(destination[LengthOffset..], (uint)envelope.Length);
        envelope.CopyTo(destination[HeaderLength..]);
        return HeaderLength + envelope.Length;
    }

    /// <summary>
    /// Reads the frame at the start of <paramref name="received"/>, bytes from an untrusted peer. On
    /// <see cref="ReplicationChannelFrameStatus.Complete"/>, <paramref name="envelope"/> is its envelope and
    /// <paramref name="frameLength"/> the bytes it takes; on <see cref="ReplicationChannelFrameStatus.Incomplete"/>,
    /// <paramref name="frameLength"/> is the bytes the whole frame will take once its header is in (0 before).
    /// A length over <paramref name="maxEnvelopeLength"/> is <see cref="ReplicationChannelFrameStatus.TooLong"/>
    /// whatever follows it.
    /// </summary>
    public static ReplicationChannelFrameStatus TryRead(ReadOnlySpan<byte> received, int maxEnvelopeLength, out ReadOnlySpan<byte> envelope, out int frameLength)
    {
        envelope = default;
        frameLength = 0;
        if (received.Length < HeaderLength)
        {
            return ReplicationChannelFrameStatus.Incomplete;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(received[LengthOffset..]);
        if (length == 0)
        {
            return ReplicationChannelFrameStatus.Empty;
        }

        if (length > (uint)Math.Max(0, maxEnvelopeLength))
        {
            return ReplicationChannelFrameStatus.TooLong;
        }

        frameLength = HeaderLength + (int)length;
        if (received.Length < frameLength)
        {
            return ReplicationChannelFrameStatus.Incomplete;
        }

        envelope = received.Slice(HeaderLength, (int)length);
        return ReplicationChannelFrameStatus.Complete;
    }
}

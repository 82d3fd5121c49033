using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// Drains one endpoint's <see cref="IPolledEndpoint.PollTransmit"/> into wire segments ready for a transport: the
/// engine copies the payload straight to where it belongs behind the header, and the codec writes the header
/// and the checksum over the pseudo-header in front of it, so each segment is built in place: in the caller's room
/// (a pooled <see cref="Mtcp.Transports.SegmentBatch"/>) or, for a segment built outside an engine, in one reusable
/// buffer. Owned by one driver; not thread-safe.
/// </summary>
/// <remarks>
/// The reusable buffer is the calling thread's, shared by every encoder that runs on it: a segment is sent (the
/// transport copies it) before the next is encoded, and an actor encodes and sends within one message. One buffer per
/// endpoint cost 1.5 KB (MSS 1460) per idle connection, and as much again per migration on each node it visits.
/// </remarks>
internal sealed class SegmentEncoder
{
    /// <summary>Room kept in front of the payload for the largest header (RFC 9293 §3.1: 60 bytes).</summary>
    private const int HeaderRoom = TcpSegment.MinHeaderLength + TcpSegment.MaxOptionsLength;

    [ThreadStatic]
    private static byte[]? _threadBuffer;

    private readonly int _bufferLength;

    /// <param name="localAddress">our address, the source of the pseudo-header.</param>
    /// <param name="maxPayload">the largest payload the engine may put in one segment (its MSS).</param>
    public SegmentEncoder(IpAddress localAddress, int maxPayload)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayload, 1);
        LocalAddress = localAddress;
        _bufferLength = HeaderRoom + maxPayload;
    }

    public IpAddress LocalAddress { get; }

    /// <summary>This thread's buffer, made large enough for this encoder's segments.</summary>
    private byte[] Buffer()
    {
        if (_threadBuffer is not { } buffer || buffer.Length < _bufferLength)
        {
            buffer = GC.AllocateUninitializedArray<byte>(_bufferLength);
            _threadBuffer = buffer;
        }

        return buffer;
    }

    /// <summary>The room <see cref="TryPoll"/> needs for one segment: the largest header and the largest payload.</summary>
    public int SegmentRoom => _bufferLength;

    /// <summary>
    /// Takes the endpoint's next segment, if any, and encodes it into <paramref name="room"/> (at least
    /// <see cref="SegmentRoom"/> bytes, such as a <see cref="SegmentBatch.Room"/>) for the address it names: the segment
    /// lies at <paramref name="start"/>, <paramref name="length"/> bytes long.
    /// </summary>
    public bool TryPoll(IPolledEndpoint endpoint, Instant now, Span<byte> room, out IpAddress destination, out int start, out int length)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentOutOfRangeException.ThrowIfLessThan(room.Length, _bufferLength, nameof(room));
        if (!endpoint.PollTransmit(now, room.Slice(HeaderRoom, _bufferLength - HeaderRoom), out destination, out var header, out var payloadLength))
        {
            start = length = 0;
            return false;
        }

        start = HeaderRoom - header.HeaderLength;
        length = header.Emit(room[start..], room.Slice(HeaderRoom, payloadLength), LocalAddress, destination);
        return true;
    }

    /// <summary>Encodes a header built outside an engine (a RST answering a stray segment, a MIGRATE_TRIGGER).</summary>
    public ReadOnlySpan<byte> Encode(in TcpSegmentRepr header, IpAddress remoteAddress) => Encode(header, default, remoteAddress);

    /// <summary>
    /// Encodes a segment built outside an engine with <paramref name="payload"/> (a sealed client-stored state); empty
    /// when the payload does not fit this encoder's segments.
    /// </summary>
    public ReadOnlySpan<byte> Encode(in TcpSegmentRepr header, ReadOnlySpan<byte> payload, IpAddress remoteAddress)
    {
        if (payload.Length > _bufferLength - HeaderRoom)
        {
            return default;
        }

        var buffer = Buffer();
        var written = header.Emit(buffer.AsSpan(0, _bufferLength), payload, LocalAddress, remoteAddress);
        return buffer.AsSpan(0, written);
    }
}

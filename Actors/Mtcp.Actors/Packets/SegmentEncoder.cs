using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// Drains one endpoint's <see cref="IPolledEndpoint.PollTransmit"/> into wire segments ready for a transport: the
/// engine copies the payload straight to where it belongs behind the header, and the codec writes the header
/// and the checksum over the pseudo-header in front of it, so each segment is built in place in one reusable
/// buffer. Owned by one driver; not thread-safe.
/// </summary>
internal sealed class SegmentEncoder
{
    /// <summary>Room kept in front of the payload for the largest header (RFC 9293 §3.1: 60 bytes).</summary>
    private const int HeaderRoom = TcpSegment.MinHeaderLength + TcpSegment.MaxOptionsLength;

    private readonly byte[] _buffer;

    /// <param name="localAddress">our address, the source of the pseudo-header.</param>
    /// <param name="maxPayload">the largest payload the engine may put in one segment (its MSS).</param>
    public SegmentEncoder(IpAddress localAddress, int maxPayload)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayload, 1);
        LocalAddress = localAddress;
        _buffer = GC.AllocateUninitializedArray<byte>(HeaderRoom + maxPayload);
    }

    public IpAddress LocalAddress { get; }

    /// <summary>
    /// Takes the endpoint's next segment, if any, and encodes it for the address it names. The span stays valid
    /// until the next call.
    /// </summary>
    public bool TryPoll(IPolledEndpoint endpoint, Instant now, out IpAddress destination, out ReadOnlySpan<byte> segment)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!endpoint.PollTransmit(now, _buffer.AsSpan(HeaderRoom), out destination, out var header, out var payloadLength))
        {
            segment = default;
            return false;
        }

        var start = HeaderRoom - header.HeaderLength;
        var written = header.Emit(_buffer.AsSpan(start), _buffer.AsSpan(HeaderRoom, payloadLength), LocalAddress, destination);
        segment = _buffer.AsSpan(start, written);
        return true;
    }

    /// <summary>Encodes a header built outside an engine (a RST answering a stray segment, a MIGRATE_TRIGGER).</summary>
    public ReadOnlySpan<byte> Encode(in TcpSegmentRepr header, IpAddress remoteAddress)
    {
        var written = header.Emit(_buffer, default, LocalAddress, remoteAddress);
        return _buffer.AsSpan(0, written);
    }
}

using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// Drains one engine's <see cref="TcpConnection.PollTransmit"/> into wire segments ready for a transport: the
/// engine copies the payload straight to where it belongs behind the header, and the codec writes the header
/// and the checksum over the pseudo-header in front of it, so each segment is built in place in one reusable
/// buffer. Owned by one driver; not thread-safe.
/// </summary>
public sealed class SegmentEncoder
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
    /// Takes the engine's next segment, if any, and encodes it for <paramref name="remoteAddress"/>. The span
    /// stays valid until the next call.
    /// </summary>
    public bool TryPoll(TcpConnection connection, Instant now, IpAddress remoteAddress, out ReadOnlySpan<byte> segment) =>
        TryPoll(connection, now, remoteAddress, rewrite: null, out segment);

    /// <summary>
    /// As <see cref="TryPoll(TcpConnection, Instant, IpAddress, out ReadOnlySpan{byte})"/>, with the header and the
    /// payload length passed through <paramref name="rewrite"/> first (a server adds its MTCP options to a SYN+ACK).
    /// </summary>
    public bool TryPoll(TcpConnection connection, Instant now, IpAddress remoteAddress, Func<TcpSegmentRepr, int, TcpSegmentRepr>? rewrite, out ReadOnlySpan<byte> segment)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (!connection.PollTransmit(now, _buffer.AsSpan(HeaderRoom), out var header, out var payloadLength))
        {
            segment = default;
            return false;
        }

        if (rewrite is not null)
        {
            header = rewrite(header, payloadLength);
        }

        var start = HeaderRoom - header.HeaderLength;
        var written = header.Emit(_buffer.AsSpan(start), _buffer.AsSpan(HeaderRoom, payloadLength), LocalAddress, remoteAddress);
        segment = _buffer.AsSpan(start, written);
        return true;
    }

    /// <summary>A migrating client's next segment and the server it goes to (<see cref="MtcpClientConnection.PollTransmit"/>).</summary>
    public bool TryPoll(MtcpClientConnection connection, Instant now, out ServerEndpoint destination, out ReadOnlySpan<byte> segment)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (!connection.PollTransmit(now, _buffer.AsSpan(HeaderRoom), out destination, out var header, out var payloadLength))
        {
            segment = default;
            return false;
        }

        var start = HeaderRoom - header.HeaderLength;
        var written = header.Emit(_buffer.AsSpan(start), _buffer.AsSpan(HeaderRoom, payloadLength), LocalAddress, destination.Address);
        segment = _buffer.AsSpan(start, written);
        return true;
    }

    /// <summary>Encodes a header built outside an engine (a RST answering a stray segment).</summary>
    public ReadOnlySpan<byte> Encode(in TcpSegmentRepr header, IpAddress remoteAddress)
    {
        var written = header.Emit(_buffer, default, LocalAddress, remoteAddress);
        return _buffer.AsSpan(0, written);
    }
}

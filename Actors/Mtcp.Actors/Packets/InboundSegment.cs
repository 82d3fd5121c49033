using System.Buffers;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// One decoded segment on its way from the packet actor's receive thread to the endpoint (or listener) that
/// owns its 4-tuple. The payload sits in a buffer rented from the packet actor's payload pool
/// (<see cref="CreatePayloadPool"/>); whoever consumes the segment calls <see cref="Release"/> once, after the engine
/// copied the payload. A segment without payload (a pure ACK) rents nothing.
/// </summary>
internal sealed class InboundSegment
{
    /// <summary>Every payload fits: the largest a raw IPv4 packet holds is 65,515 bytes.</summary>
    private const int LargestPayload = 64 * 1024;

    private readonly ArrayPool<byte>? _pool;
    private byte[]? _payload;

    private InboundSegment(ConnectionKey key, in TcpSegmentRepr header, ArrayPool<byte>? pool, byte[]? payload, int payloadLength)
    {
        Key = key;
        Header = header;
        _pool = pool;
        _payload = payload;
        PayloadLength = payloadLength;
    }

    /// <summary>The peer's address and port and our port.</summary>
    public ConnectionKey Key { get; }

    public TcpSegmentRepr Header { get; }

    public int PayloadLength { get; }

    /// <summary>The payload; empty once released.</summary>
    public ReadOnlySpan<byte> Payload => _payload is null ? default : _payload.AsSpan(0, PayloadLength);

    /// <summary>
    /// A pool of payload buffers that keeps at most <paramref name="buffersPerSizeClass"/> of each size class
    /// (<c>mtcp.runtime.inbound-payload-buffers</c>). The receive thread rents and the endpoint actors, on other threads,
    /// return, with a whole window of segments in their mailboxes in between: 185 at 1,420 bytes for one connection's
    /// 256 KiB. <see cref="ArrayPool{T}.Shared"/> keeps a few dozen per size class (per-thread and per-core caches), so
    /// past those each rent allocated a new array: 5.3 MB allocated per 8 MB moved in the loss benchmark, and a gen-0
    /// collection that paused both ends for 6-9 ms every other run. Arrays stay in the pool once returned, so the bound
    /// is what it keeps: at most this many of each size class that were in use at one time.
    /// </summary>
    public static ArrayPool<byte> CreatePayloadPool(int buffersPerSizeClass) => ArrayPool<byte>.Create(LargestPayload, buffersPerSizeClass);

    /// <summary>Copies <paramref name="payload"/> into a buffer rented from <paramref name="pool"/>.</summary>
    public static InboundSegment Create(ArrayPool<byte> pool, ConnectionKey key, in TcpSegmentRepr header, ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty)
        {
            return new InboundSegment(key, header, null, null, 0);
        }

        var buffer = pool.Rent(payload.Length);
        payload.CopyTo(buffer);
        return new InboundSegment(key, header, pool, buffer, payload.Length);
    }

    /// <summary>Returns the payload buffer to its pool. Only the segment's single consumer calls it.</summary>
    public void Release()
    {
        var payload = _payload;
        _payload = null;
        if (payload is not null)
        {
            _pool!.Return(payload);
        }
    }

    public override string ToString() => $"segment {Key} {Header.Flags} seq {Header.SequenceNumber} ack {Header.AcknowledgmentNumber} len {PayloadLength}";
}

/// <summary>
/// The segments of one 4-tuple's endpoint that the receive thread read in one go (<c>mtcp.runtime.receive-burst</c>), in
/// arrival order: one message for all, so the endpoint handles them as one burst (one ACK for their in-order data,
/// <see cref="Mtcp.Stack.TcpConnection.BeginBurst"/>) and sends what became sendable once. The endpoint releases each.
/// </summary>
internal sealed class InboundBurst(InboundSegment[] segments)
{
    public IReadOnlyList<InboundSegment> Segments => segments;

    public override string ToString() => $"burst of {segments.Length} segments, the first {segments[0]}";
}

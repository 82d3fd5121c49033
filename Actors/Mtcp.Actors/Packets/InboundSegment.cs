using System.Buffers;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// One decoded segment on its way from the packet actor's receive thread to the endpoint (or listener) that
/// owns its 4-tuple. The payload sits in a buffer rented from <see cref="Payloads"/>; whoever consumes the segment
/// calls <see cref="Release"/> once, after the engine copied the payload. This message is the only per-segment
/// allocation of the receive path; a segment without payload (a pure ACK) rents nothing.
/// </summary>
internal sealed class InboundSegment
{
    /// <summary>Every payload fits: the largest a raw IPv4 packet holds is 65,515 bytes.</summary>
    private const int LargestPayload = 64 * 1024;

    /// <summary>
    /// Payload buffers kept per size class. The receive thread rents and the endpoint actors, on other threads, return,
    /// with a whole window of segments in their mailboxes in between: 185 at 1,420 bytes for one connection's 256 KiB.
    /// <see cref="ArrayPool{T}.Shared"/> keeps a few dozen per size class (per-thread and per-core caches), so past those
    /// each rent allocated a new array: 5.3 MB allocated per 8 MB moved in the loss benchmark, and a gen-0 collection
    /// that paused both ends for 6-9 ms every other run. Arrays stay in the pool once returned, so this bounds what it
    /// keeps: at most this many of each size class that were in use at one time.
    /// </summary>
    private const int PayloadsPerSizeClass = 512;

    /// <summary>The pool of payload buffers, shared by every packet actor of the process.</summary>
    internal static ArrayPool<byte> Payloads { get; } = ArrayPool<byte>.Create(LargestPayload, PayloadsPerSizeClass);

    private byte[]? _payload;

    private InboundSegment(ConnectionKey key, in TcpSegmentRepr header, byte[]? payload, int payloadLength)
    {
        Key = key;
        Header = header;
        _payload = payload;
        PayloadLength = payloadLength;
    }

    /// <summary>The peer's address and port and our port.</summary>
    public ConnectionKey Key { get; }

    public TcpSegmentRepr Header { get; }

    public int PayloadLength { get; }

    /// <summary>The payload; empty once released.</summary>
    public ReadOnlySpan<byte> Payload => _payload is null ? default : _payload.AsSpan(0, PayloadLength);

    /// <summary>Copies <paramref name="payload"/> into a pooled buffer.</summary>
    public static InboundSegment Create(ConnectionKey key, in TcpSegmentRepr header, ReadOnlySpan<byte> payload)
    {
        byte[]? buffer = null;
        if (!payload.IsEmpty)
        {
            buffer = Payloads.Rent(payload.Length);
            payload.CopyTo(buffer);
        }

        return new InboundSegment(key, header, buffer, payload.Length);
    }

    /// <summary>Returns the payload buffer to the pool. Only the segment's single consumer calls it.</summary>
    public void Release()
    {
        var payload = _payload;
        _payload = null;
        if (payload is not null)
        {
            Payloads.Return(payload);
        }
    }

    public override string ToString() => $"segment {Key} {Header.Flags} seq {Header.SequenceNumber} ack {Header.AcknowledgmentNumber} len {PayloadLength}";
}

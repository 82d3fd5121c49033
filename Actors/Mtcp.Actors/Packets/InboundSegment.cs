using System.Buffers;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// One decoded segment on its way from the packet actor's receive thread to the endpoint (or listener) that
/// owns its 4-tuple. The payload sits in a buffer rented from <see cref="ArrayPool{T}.Shared"/>; whoever
/// consumes the segment calls <see cref="Release"/> once, after the engine copied the payload. This message is
/// the only per-segment allocation of the receive path; a segment without payload (a pure ACK) rents nothing.
/// </summary>
internal sealed class InboundSegment
{
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
            buffer = ArrayPool<byte>.Shared.Rent(payload.Length);
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
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    public override string ToString() => $"segment {Key} {Header.Flags} seq {Header.SequenceNumber} ack {Header.AcknowledgmentNumber} len {PayloadLength}";
}

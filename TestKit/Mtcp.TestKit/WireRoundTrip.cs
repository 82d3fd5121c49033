using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>
/// Sends a segment through the real codec before it enters the simulated network: emitted with its checksum, then
/// parsed and verified, so every MTCP option the migration nodes produce is proven to fit in 40 bytes and to
/// survive the wire format.
/// </summary>
public sealed class WireRoundTrip
{
    private readonly byte[] _segment = new byte[TcpSegmentRepr.MaxSegmentLength];

    public SimPacket Packet(IpAddress source, IpAddress destination, in TcpSegmentRepr header, ReadOnlySpan<byte> payload)
    {
        var length = header.Emit(_segment, payload, source, destination);
        if (!TcpSegmentRepr.TryParse(_segment.AsSpan(0, length), source, destination, ChecksumPolicy.Verify, out var parsed, out var payloadOffset, out var error))
        {
            throw new InvalidOperationException($"a segment did not survive its own encoding: {error}");
        }

        return new SimPacket(source, destination, parsed, _segment.AsSpan(payloadOffset, length - payloadOffset).ToArray());
    }
}

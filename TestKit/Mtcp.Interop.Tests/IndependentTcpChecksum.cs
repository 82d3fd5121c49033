using System.Buffers.Binary;
using Mtcp.Wire;

namespace Mtcp.Interop.Tests;

/// <summary>
/// The TCP checksum over the IPv4 pseudo-header (RFC 9293 §3.1, RFC 1071), written out independently of
/// the codec so that the capture check is tested against a checksum known to be right or wrong.
/// </summary>
internal static class IndependentTcpChecksum
{
    public const int ChecksumOffset = 16;

    public static ushort TcpOverIPv4(IpAddress source, IpAddress destination, ReadOnlySpan<byte> segment)
    {
        Span<byte> pseudoHeader = stackalloc byte[12];
        source.WriteTo(pseudoHeader);
        destination.WriteTo(pseudoHeader[4..]);
        pseudoHeader[8] = 0;
        pseudoHeader[9] = 6;
        BinaryPrimitives.WriteUInt16BigEndian(pseudoHeader[10..], (ushort)segment.Length);
        var sum = Add(0, pseudoHeader);
        sum = Add(sum, segment[..ChecksumOffset]);
        sum = Add(sum, segment[(ChecksumOffset + 2)..]);
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    private static uint Add(uint sum, ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        for (; i + 1 < bytes.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(bytes[i..]);
        }

        if (i < bytes.Length)
        {
            sum += (uint)(bytes[i] << 8);
        }

        return sum;
    }
}

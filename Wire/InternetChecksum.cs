using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mtcp.Wire;

/// <summary>
/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
/// big-endian words. Sums are carried in 64 bits so that the end-around carries are folded once at the
/// end (RFC 1071 §2(C) "deferred carries"): adding 32-bit words into a 64-bit accumulator cannot overflow
/// below 2^32 words, far beyond any IP packet.
/// </summary>
public static class InternetChecksum
{
    /// <summary>The IP protocol number of TCP, used in every pseudo-header whatever carries the segment.</summary>
    public const byte TcpProtocolNumber = 6;

    /// <summary>
    /// Adds <paramref name="data"/> to a running sum. When summing a message in pieces, every piece but
    /// the last must have even length so that words stay aligned.
    /// </summary>
    public static ulong Accumulate(ReadOnlySpan<byte> data, ulong sum = 0)
    {
        if (data.Length >= Vector128<byte>.Count && Vector128.IsHardwareAccelerated)
        {
            var consumed = AccumulateVectorised(data, out var littleEndianSum);

            // The ones' complement sum is byte-order independent (RFC 1071 §2(B)): the sum of the
            // little-endian words, folded, is the byte swap of the folded sum of the big-endian words.
            sum += BinaryPrimitives.ReverseEndianness(Fold(littleEndianSum));
            data = data[consumed..];
        }

        // 32 bytes a round into two accumulators, so the adds of one word do not wait on the previous.
        ulong other = 0;
        while (data.Length >= 32)
        {
            var a = BinaryPrimitives.ReadUInt64BigEndian(data);
            var b = BinaryPrimitives.ReadUInt64BigEndian(data[8..]);
            var c = BinaryPrimitives.ReadUInt64BigEndian(data[16..]);
            var d = BinaryPrimitives.ReadUInt64BigEndian(data[24..]);
            sum += (a >> 32) + (a & 0xFFFF_FFFF) + (b >> 32) + (b & 0xFFFF_FFFF);
            other += (c >> 32) + (c & 0xFFFF_FFFF) + (d >> 32) + (d & 0xFFFF_FFFF);
            data = data[32..];
        }

        sum += other;
        while (data.Length >= 4)
        {
            sum += BinaryPrimitives.ReadUInt32BigEndian(data);
            data = data[4..];
        }

        if (data.Length >= 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data);
            data = data[2..];
        }

        if (data.Length == 1)
        {
            // An odd final byte is padded with a zero byte on the right (RFC 1071 §4.1).
            sum += (ulong)data[0] << 8;
        }

        return sum;
    }

    /// <summary>
    /// Sums the leading whole 16-byte blocks of <paramref name="data"/> as native little-endian 32-bit words
    /// widened into 64-bit lanes (no carry is lost below 2^32 words a lane), 64 bytes a round into four
    /// independent accumulators where 256-bit vectors are fast. Returns how many bytes it consumed, always a
    /// multiple of 16, so the caller's word alignment is kept.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int AccumulateVectorised(ReadOnlySpan<byte> data, out ulong littleEndianSum)
    {
        ref var start = ref MemoryMarshal.GetReference(data);
        var length = (nuint)data.Length;
        nuint offset = 0;
        ulong total = 0;
        if (Vector256.IsHardwareAccelerated && length >= 64)
        {
            var sum0 = Vector256<ulong>.Zero;
            var sum1 = Vector256<ulong>.Zero;
            var sum2 = Vector256<ulong>.Zero;
            var sum3 = Vector256<ulong>.Zero;
            for (; offset + 64 <= length; offset += 64)
            {
                var (low0, high0) = Vector256.Widen(Vector256.LoadUnsafe(ref start, offset).AsUInt32());
                var (low1, high1) = Vector256.Widen(Vector256.LoadUnsafe(ref start, offset + 32).AsUInt32());
                sum0 += low0;
                sum1 += high0;
                sum2 += low1;
                sum3 += high1;
            }

            total = Vector256.Sum((sum0 + sum1) + (sum2 + sum3));
        }

        var sum128 = Vector128<ulong>.Zero;
        for (; offset + 16 <= length; offset += 16)
        {
            var (low, high) = Vector128.Widen(Vector128.LoadUnsafe(ref start, offset).AsUInt32());
            sum128 += low + high;
        }

        littleEndianSum = total + Vector128.Sum(sum128);
        return (int)offset;
    }

    /// <summary>Folds a 64-bit running sum to the 16-bit ones' complement sum (not yet complemented).</summary>
    public static ushort Fold(ulong sum)
    {
        sum = (sum >> 32) + (sum & 0xFFFF_FFFF);
        sum = (sum >> 32) + (sum & 0xFFFF_FFFF);
        sum = (sum >> 16) + (sum & 0xFFFF);
        sum = (sum >> 16) + (sum & 0xFFFF);
        return (ushort)sum;
    }

    /// <summary>The checksum field value for a running sum: the complement of the folded sum.</summary>
    public static ushort Finish(ulong sum) => (ushort)~Fold(sum);

    /// <summary>The checksum of one buffer, e.g. an IPv4 header with its checksum field zeroed.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Accumulate(data));

    /// <summary>
    /// The sum of the TCP pseudo-header: for IPv4 (RFC 9293 §3.1) source, destination, zero, protocol and
    /// TCP length; for IPv6 (RFC 8200 §8.1) source, destination, 32-bit upper-layer length, three zero
    /// bytes and next header. The protocol is always 6, so that standard dissectors validate our segments
    /// whatever IP protocol carries them. Both addresses must be of the same family.
    /// </summary>
    public static ulong PseudoHeaderSum(IpAddress source, IpAddress destination, int tcpLength)
    {
        // In 16-bit word arithmetic the IPv4 layout (0, 6, length16) and the IPv6 layout
        // (length32, 0, 0, 0, 6) sum to the same words when the length fits 16 bits.
        return source.SumOfWords() + destination.SumOfWords() + TcpProtocolNumber
            + ((uint)tcpLength >> 16) + ((uint)tcpLength & 0xFFFF);
    }
}

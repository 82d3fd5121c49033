using System.Buffers.Binary;

namespace Mtcp.TestKit;

/// <summary>
/// A reproducible byte stream: the byte at any offset is a pure function of (key, offset), so a receiver can
/// check what it got without the sender keeping a copy, and a mismatch names its exact offset.
/// </summary>
public static class StreamPattern
{
    /// <summary>Writes the stream bytes [offset, offset + destination.Length) into <paramref name="destination"/>.</summary>
    public static void Fill(ulong key, long offset, Span<byte> destination)
    {
        Span<byte> word = stackalloc byte[8];
        var position = 0;
        while (position < destination.Length)
        {
            var absolute = offset + position;
            var block = absolute >> 3;
            var within = (int)(absolute & 7);
            BinaryPrimitives.WriteUInt64LittleEndian(word, Mix(key, (ulong)block));
            var count = Math.Min(8 - within, destination.Length - position);
            word.Slice(within, count).CopyTo(destination[position..]);
            position += count;
        }
    }

    /// <summary>Offset of the first byte of <paramref name="actual"/> that differs from the stream, or -1.</summary>
    public static long FirstMismatch(ulong key, long offset, ReadOnlySpan<byte> actual)
    {
        Span<byte> expected = stackalloc byte[1024];
        for (var start = 0; start < actual.Length; start += expected.Length)
        {
            var chunk = actual.Slice(start, Math.Min(expected.Length, actual.Length - start));
            Fill(key, offset + start, expected[..chunk.Length]);
            var differ = chunk.CommonPrefixLength(expected[..chunk.Length]);
            if (differ < chunk.Length)
            {
                return offset + start + differ;
            }
        }

        return -1;
    }

    /// <summary>SplitMix64 finaliser over key and block index.</summary>
    private static ulong Mix(ulong key, ulong block)
    {
        var z = unchecked(key + (block * 0x9E3779B97F4A7C15UL));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}

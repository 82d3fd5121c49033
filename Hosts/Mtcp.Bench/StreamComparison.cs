namespace Mtcp.Bench;

/// <summary>What a received byte stream lacks, repeats and garbles against what was sent.</summary>
internal sealed record StreamDifference(long Lost, long Duplicated, long Corrupted)
{
    public bool Exact => Lost == 0 && Duplicated == 0 && Corrupted == 0;
}

/// <summary>
/// Compares a received stream with the sent one, where the sent bytes are random (no 16-byte run recurs): the two are
/// walked in step while they agree; where they part, the next received bytes are looked up in the sent ones. Found
/// further on, the bytes between were lost; found earlier, the received ones repeat bytes already delivered; not found,
/// one received byte is garbled. Bytes of the sent stream never reached count as lost.
/// </summary>
internal static class StreamComparison
{
    private const int Probe = 16;

    public static StreamDifference Compare(ReadOnlySpan<byte> sent, ReadOnlySpan<byte> received)
    {
        long lost = 0, duplicated = 0, corrupted = 0;
        var s = 0;
        var r = 0;
        while (r < received.Length)
        {
            var common = sent[s..].CommonPrefixLength(received[r..]);
            s += common;
            r += common;
            if (r == received.Length)
            {
                break;
            }

            var at = sent.IndexOf(received.Slice(r, Math.Min(Probe, received.Length - r)));
            if (at < 0)
            {
                corrupted++;
                r++;
                s = Math.Min(s + 1, sent.Length);
                continue;
            }

            if (at > s)
            {
                lost += at - s;
            }
            else
            {
                duplicated += s - at;
            }

            s = at;
        }

        return new StreamDifference(lost + (sent.Length - s), duplicated, corrupted);
    }
}

using System.Buffers.Binary;

namespace Mtcp.Wire.Tests;

[Trait("Category", "Wire")]
public sealed class InternetChecksumTests
{
    /// <summary>Word by word with the end-around carry applied at every step, as RFC 1071 §1 describes it.</summary>
    private static ushort ReferenceSum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i < data.Length; i += 2)
        {
            var word = (uint)(data[i] << 8) | (i + 1 < data.Length ? data[i + 1] : 0u);
            sum += word;
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)sum;
    }

    [Fact]
    public void Checksum_must_match_the_worked_example_of_RFC_1071()
    {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (ones' complement), checksum 220d.
        var data = Golden.Bytes("0001 f203 f4f5 f6f7");

        Assert.Equal(0xDDF2, InternetChecksum.Fold(InternetChecksum.Accumulate(data)));
        Assert.Equal(0x220D, InternetChecksum.Compute(data));
    }

    [Fact]
    public void Checksum_must_match_a_known_IPv4_header()
    {
        // A widely published IPv4 header (192.168.0.1 -> 192.168.0.199, UDP) whose checksum is b861.
        var header = Golden.Bytes("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");

        Assert.Equal(0xB861, InternetChecksum.Compute(header));
    }

    [Fact]
    public void Checksum_must_agree_with_the_reference_for_every_length_and_alignment()
    {
        const int Seed = 1071;
        var random = new Random(Seed);
        var buffer = new byte[1600];
        random.NextBytes(buffer);
        for (var start = 0; start < 8; start++)
        {
            for (var length = 0; length < 300; length++)
            {
                var data = buffer.AsSpan(start, length);
                Assert.True(
                    ReferenceSum(data) == InternetChecksum.Fold(InternetChecksum.Accumulate(data)),
                    $"seed {Seed} start {start} length {length}");
            }
        }

        Assert.Equal(ReferenceSum(buffer), InternetChecksum.Fold(InternetChecksum.Accumulate(buffer)));
    }

    [Fact]
    public void Checksum_must_agree_with_the_reference_on_segment_sized_buffers_at_every_alignment()
    {
        // Past the vector blocks' sizes (16, 64 bytes), up to the largest raw segment: the bulk of a
        // loopback segment is summed by the vectorised path, its tail by the scalar one.
        const int Seed = 9293;
        var random = new Random(Seed);
        var buffer = new byte[65515 + 16];
        random.NextBytes(buffer);
        foreach (var length in new[] { 63, 64, 65, 79, 80, 127, 128, 1460, 8191, 65000, 65507, 65515 })
        {
            for (var start = 0; start < 16; start++)
            {
                var data = buffer.AsSpan(start, length);
                Assert.True(
                    ReferenceSum(data) == InternetChecksum.Fold(InternetChecksum.Accumulate(data)),
                    $"seed {Seed} start {start} length {length}");
            }
        }
    }

    [Fact]
    public void Checksum_must_not_lose_carries_on_all_ones_input()
    {
        var data = new byte[65535];
        data.AsSpan().Fill(0xFF);

        Assert.Equal(ReferenceSum(data), InternetChecksum.Fold(InternetChecksum.Accumulate(data)));
    }

    [Fact]
    public void Accumulate_must_compose_over_even_length_pieces()
    {
        var random = new Random(7);
        var data = new byte[999];
        random.NextBytes(data);

        var whole = InternetChecksum.Accumulate(data);
        var pieces = InternetChecksum.Accumulate(data.AsSpan(100), InternetChecksum.Accumulate(data.AsSpan(0, 100)));

        Assert.Equal(InternetChecksum.Fold(whole), InternetChecksum.Fold(pieces));
    }

    [Fact]
    public void Pseudo_header_must_follow_RFC_9293_for_IPv4_with_protocol_6()
    {
        Span<byte> pseudo = stackalloc byte[12];
        Golden.V4Client.WriteTo(pseudo);
        Golden.V4Server.WriteTo(pseudo[4..]);
        pseudo[8] = 0;
        pseudo[9] = 6;
        BinaryPrimitives.WriteUInt16BigEndian(pseudo[10..], 1234);

        Assert.Equal(
            ReferenceSum(pseudo),
            InternetChecksum.Fold(InternetChecksum.PseudoHeaderSum(Golden.V4Client, Golden.V4Server, 1234)));
    }

    [Fact]
    public void Pseudo_header_must_follow_RFC_8200_for_IPv6_with_next_header_6()
    {
        Span<byte> pseudo = stackalloc byte[40];
        Golden.V6Client.WriteTo(pseudo);
        Golden.V6Server.WriteTo(pseudo[16..]);
        BinaryPrimitives.WriteUInt32BigEndian(pseudo[32..], 70000);
        pseudo[36..39].Clear();
        pseudo[39] = 6;

        Assert.Equal(
            ReferenceSum(pseudo),
            InternetChecksum.Fold(InternetChecksum.PseudoHeaderSum(Golden.V6Client, Golden.V6Server, 70000)));
    }
}

namespace Mtcp.Wire.Tests;

/// <summary>The migration-secret option and the 40-byte budget of the origin server's SYN+ACK.</summary>
[Trait("Category", "Wire")]
public sealed class MigrationSecretOptionTests
{
    private static readonly byte[] SecretBytes = Golden.Bytes("000102030405060708090a0b0c0d0e0f");
    private static readonly MtcpMigrationSecret Secret = MtcpMigrationSecret.FromBytes(SecretBytes);

    private static readonly TcpOptions SynAckStandard = new()
    {
        MaxSegmentSize = 1460,
        WindowScale = 7,
        SackPermitted = true,
        Timestamps = new TcpTimestamps(100, 200),
    };

    private static readonly ServerEndpoint[] EightV4 =
        Enumerable.Range(10, 8).Select(i => new ServerEndpoint(IpAddress.Parse($"192.0.2.{i}"), 80)).ToArray();

    private static readonly ServerEndpoint[] ThreeV6 =
        Enumerable.Range(1, 3).Select(i => new ServerEndpoint(IpAddress.Parse($"2001:db8::{i}"), 443)).ToArray();

    /// <summary>Other options of a SYN+ACK, their bytes, and how many IPv4 alternates fit beside the secret.</summary>
    public static TheoryData<string, int, int> SynAckBudget() => new()
    {
        { "mss ws sackok ts", 19, 0 },
        { "mss ws ts", 17, 0 },
        { "mss ts", 14, 0 },
        { "mss ws sackok", 9, 0 },
        { "mss ws", 7, 1 },
        { "mss", 4, 1 },
        { "", 0, 2 },
    };

    private static TcpOptions Options(string names) => new()
    {
        MaxSegmentSize = names.Contains("mss", StringComparison.Ordinal) ? (ushort)1460 : null,
        WindowScale = names.Contains("ws", StringComparison.Ordinal) ? (byte)7 : null,
        SackPermitted = names.Contains("sackok", StringComparison.Ordinal),
        Timestamps = names.Contains("ts", StringComparison.Ordinal) ? new TcpTimestamps(100, 200) : null,
    };

    private static TcpOptions RoundTrip(TcpOptions options)
    {
        var buffer = Golden.MarkedBuffer(TcpSegment.MaxOptionsLength + 4);
        Assert.True(options.TryWrite(buffer, out var written, out var error), error.ToString());
        Assert.All(buffer.Skip(written), b => Assert.Equal(Golden.Marker, b));
        Assert.True(TcpOptions.TryParse(buffer.AsSpan(0, written), out var parsed, out error), error.ToString());
        return parsed;
    }

    [Fact]
    public void Secret_must_fill_a_full_standard_syn_ack_to_exactly_40_bytes()
    {
        var options = SynAckStandard.WithMigrationSecret(Secret, EightV4, out var dropped);

        var buffer = Golden.MarkedBuffer(TcpSegment.MaxOptionsLength + 4);
        Assert.True(options.TryWrite(buffer, out var written, out var error), error.ToString());
        Assert.Equal(
            "020405b4" + "030307" + "0402" + "080a00000064000000c8" + "fd154d5406" + "000102030405060708090a0b0c0d0e0f",
            Convert.ToHexString(buffer, 0, written).ToLowerInvariant());
        Assert.Equal(TcpSegment.MaxOptionsLength, written);
        Assert.Null(options.AlternateServers);
        Assert.Equal(8, dropped);
        Assert.Equal(Secret, RoundTrip(options).MigrationSecret);
    }

    [Theory]
    [MemberData(nameof(SynAckBudget))]
    public void Alternates_must_give_way_to_the_secret_on_the_syn_ack(string others, int othersLength, int keptV4)
    {
        var baseOptions = Options(others);
        Assert.Equal(othersLength, baseOptions.BufferLength);

        var options = baseOptions.WithMigrationSecret(Secret, EightV4, out var dropped);

        Assert.Equal(Secret, options.MigrationSecret);
        Assert.Equal(keptV4, options.AlternateServers?.Servers.Count ?? 0);
        Assert.Equal(EightV4.Length - keptV4, dropped);
        Assert.Equal(EightV4.Take(keptV4), options.AlternateServers?.Servers ?? []);
        Assert.Equal(othersLength + MtcpMigrationSecret.BufferLength + (keptV4 == 0 ? 0 : 6 + (6 * keptV4)), options.BufferLength);
        Assert.True(options.BufferLength <= TcpSegment.MaxOptionsLength);
        Assert.Equal(options, RoundTrip(options));
    }

    [Theory]
    [InlineData("mss ws sackok ts")]
    [InlineData("mss")]
    [InlineData("")]
    public void No_IPv6_alternate_must_fit_beside_the_secret_on_a_syn_ack(string others)
    {
        var options = Options(others).WithMigrationSecret(Secret, ThreeV6, out var dropped);

        Assert.Equal(Secret, options.MigrationSecret);
        Assert.Null(options.AlternateServers);
        Assert.Equal(ThreeV6.Length, dropped);
    }

    [Fact]
    public void Alternates_fitted_before_the_secret_must_not_survive_it()
    {
        var fittedFirst = SynAckStandard.WithAlternateServers(EightV4, out var droppedFirst);
        Assert.Equal(2, fittedFirst.AlternateServers!.Servers.Count);
        Assert.Equal(6, droppedFirst);

        var options = fittedFirst.WithMigrationSecret(Secret, EightV4, out var dropped);

        Assert.Equal(Secret, options.MigrationSecret);
        Assert.Null(options.AlternateServers);
        Assert.Equal(8, dropped);
    }

    [Fact]
    public void Dropped_alternates_must_fit_on_the_first_segment_after_the_handshake()
    {
        // The fallback: TCP_MIGRATE again, on a segment without SYN-only options, from the most preferred server.
        var withTimestamps = new TcpOptions { Timestamps = new TcpTimestamps(101, 201) }.WithAlternateServers(EightV4, out var droppedBesideTimestamps);
        Assert.Equal(EightV4.Take(4), withTimestamps.AlternateServers!.Servers);
        Assert.Equal(4, droppedBesideTimestamps);
        Assert.Equal(40, withTimestamps.BufferLength);
        Assert.Equal(withTimestamps, RoundTrip(withTimestamps));

        var v6BesideTimestamps = new TcpOptions { Timestamps = new TcpTimestamps(101, 201) }.WithAlternateServers(ThreeV6, out var droppedV6);
        Assert.Equal(ThreeV6.Take(1), v6BesideTimestamps.AlternateServers!.Servers);
        Assert.Equal(2, droppedV6);

        var bare = new TcpOptions().WithAlternateServers(EightV4, out var droppedBare);
        Assert.Equal(EightV4.Take(5), bare.AlternateServers!.Servers);
        Assert.Equal(3, droppedBare);
        Assert.Equal(bare, RoundTrip(bare));
    }

    [Fact]
    public void Syn_ack_with_the_secret_and_the_next_data_segment_with_the_list_must_survive_the_segment_codec()
    {
        var synAck = new TcpSegmentRepr
        {
            SourcePort = 80,
            DestinationPort = 49152,
            SequenceNumber = new SeqNumber(0xFFFF_FFF0),
            AcknowledgmentNumber = new SeqNumber(1),
            Flags = TcpFlags.Syn | TcpFlags.Ack,
            Window = 0xFFFF,
            Options = SynAckStandard.WithMigrationSecret(Secret, EightV4, out var droppedOnSynAck),
        };
        var firstData = synAck with
        {
            SequenceNumber = new SeqNumber(0xFFFF_FFF1),
            Flags = TcpFlags.Ack | TcpFlags.Psh,
            Options = new TcpOptions { Timestamps = new TcpTimestamps(101, 201) }.WithAlternateServers(EightV4, out var droppedOnData),
        };

        Assert.Equal(8, droppedOnSynAck);
        Assert.Equal(4, droppedOnData);
        Assert.Equal(TcpSegment.MaxHeaderLength, synAck.HeaderLength);
        Assert.Equal(TcpSegment.MaxHeaderLength, firstData.HeaderLength);
        foreach (var (segment, payload) in new[] { (synAck, Array.Empty<byte>()), (firstData, "reply"u8.ToArray()) })
        {
            var buffer = new byte[TcpSegment.MaxHeaderLength + payload.Length];
            Assert.True(segment.TryEmit(buffer, payload, Golden.V4Server, Golden.V4Client, out var written, out var error), error.ToString());
            Assert.True(TcpSegmentRepr.TryParse(buffer.AsSpan(0, written), Golden.V4Server, Golden.V4Client, ChecksumPolicy.Verify, out var parsed, out var offset, out error), error.ToString());
            Assert.Equal(segment, parsed);
            Assert.Equal(payload, buffer[offset..written]);
        }
    }

    [Fact]
    public void Secret_that_cannot_fit_must_fail_the_write_rather_than_vanish()
    {
        // 20 bytes of options this codec does not know leave 20: one short of the secret option.
        var unknown = Golden.Bytes("1e14" + "000102030405060708090a0b0c0d0e0f1011");
        var options = new TcpOptions { Unknown = unknown }.WithMigrationSecret(Secret, EightV4, out var dropped);

        Assert.Equal(8, dropped);
        Assert.Equal(Secret, options.MigrationSecret);
        Assert.False(options.TryWrite(new byte[64], out _, out var error));
        Assert.Equal(WireError.OptionsTooLong, error);
    }

    [Fact]
    public void Secret_must_keep_its_bytes_in_network_order_and_refuse_other_lengths()
    {
        var written = new byte[MtcpMigrationSecret.SecretLength];
        Assert.Equal(MtcpMigrationSecret.SecretLength, Secret.WriteTo(written));
        Assert.Equal(SecretBytes, written);
        Assert.NotEqual(Secret, MtcpMigrationSecret.FromBytes(new byte[16]));
        Assert.Throws<ArgumentException>(() => MtcpMigrationSecret.FromBytes(new byte[15]));
        Assert.Throws<ArgumentException>(() => MtcpMigrationSecret.FromBytes(new byte[17]));
    }

    [Fact]
    public void Secret_must_not_appear_in_text()
    {
        var options = new TcpOptions { MigrationSecret = Secret };

        Assert.Contains("MigrationSecret(redacted)", options.ToString(), StringComparison.Ordinal);
        Assert.Equal("MigrationSecret(redacted)", Secret.ToString());
        Assert.True(options.HasMtcp);
    }
}

namespace Mtcp.Wire.Tests;

[Trait("Category", "Wire")]
public sealed class MtcpOptionsTests
{
    private static readonly ServerEndpoint OriginV4 = new(IpAddress.Parse("192.0.2.2"), 80);
    private static readonly ServerEndpoint DestinationV4 = new(IpAddress.Parse("192.0.2.3"), 80);
    private static readonly ServerEndpoint OriginV6 = new(IpAddress.Parse("2001:db8::2"), 443);
    private static readonly ServerEndpoint DestinationV6 = new(IpAddress.Parse("2001:db8::3"), 443);

    private static readonly TcpOptions SynAckStandard = new()
    {
        MaxSegmentSize = 1460,
        WindowScale = 7,
        SackPermitted = true,
        Timestamps = new TcpTimestamps(100, 200),
    };

    /// <summary>Each MTCP option alone, as hand-laid bytes (padding included) and as the value they decode to.</summary>
    public static TheoryData<string, string> Vectors() => new()
    {
        {
            "alternate servers v4, v6, v4",
            "fd24 4d54 01" + "02" + "c000020a 0050" + "20010db8000000000000000000000010 1f90" + "c000020b 0050"
        },
        { "alternate servers empty", "fd06 4d54 01 00" + "0000" },
        { "migrated conn v4, implied client port", "fd18 4d54 02" + "00" + "c0000202 0050" + "fffffffe" + "0123456789abcdef" },
        {
            "migrated conn v6, explicit client port",
            "fd26 4d54 02" + "03" + "20010db8000000000000000000000002 01bb" + "c350" + "00000001" + "0123456789abcdef" + "0000"
        },
        {
            "trigger v4, origin and destination explicit",
            "fd22 4d54 03" + "0d" + "1111111111111111" + "c0000202 0050" + "c0000203 0050" + "2222222222222222" + "0000"
        },
        { "trigger v6, destination is the sender", "fd28 4d54 03" + "07" + "1111111111111111" + "20010db8000000000000000000000002 01bb" + "2222222222222222" },
        { "trigger, cid implied, no destination", "fd0e 4d54 03" + "00" + "1111111111111111" + "0000" },
        { "orig connection info", "fd0d 4d54 04" + "7ffffff0" + "80000010" + "000000" },
        { "beta", "fd09 4d54 05" + "000005dc" + "000000" },
        { "migration secret", "fd15 4d54 06" + "000102030405060708090a0b0c0d0e0f" + "000000" },
        { "client state", "fd05 4d54 07" + "000000" },
    };

    private static TcpOptions Parse(string hex)
    {
        Assert.True(TcpOptions.TryParse(Golden.Bytes(hex), out var options, out var error), error.ToString());
        return options;
    }

    private static string Emit(TcpOptions options)
    {
        var buffer = Golden.MarkedBuffer(TcpSegment.MaxOptionsLength + 4);
        Assert.True(options.TryWrite(buffer, out var written, out var error), error.ToString());
        Assert.All(buffer.Skip(written), b => Assert.Equal(Golden.Marker, b));
        return Convert.ToHexString(buffer, 0, written).ToLowerInvariant();
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Each_mtcp_option_must_round_trip_byte_for_byte(string name, string hex)
    {
        var options = Parse(hex);

        Assert.True(options.HasMtcp, name);
        Assert.True(Emit(options) == hex.Replace(" ", string.Empty, StringComparison.Ordinal), name);
        Assert.Equal(options, Parse(Emit(options)));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Every_truncation_of_an_mtcp_option_must_give_a_typed_error(string name, string hex)
    {
        var bytes = Golden.Bytes(hex);
        var optionLength = bytes[1];
        for (var length = 0; length < optionLength; length++)
        {
            // Cut the option area, and separately shrink the length byte so the option ends early.
            var parsed = TcpOptions.TryParse(bytes.AsSpan(0, length), out _, out var cut);
            Assert.True(length == 0 || !parsed, $"{name}: cut at {length}");
            Assert.True(length == 0 || cut is WireError.OptionOverrun or WireError.BadOptionLength, $"{name}: {cut}");

            if (length >= 2)
            {
                var shrunk = (byte[])bytes.Clone();
                shrunk[1] = (byte)length;
                var shrunkParsed = TcpOptions.TryParse(shrunk.AsSpan(0, length), out var options, out var error);
                Assert.True(shrunkParsed || error != WireError.None, name);

                // Only a list, cut at an entry boundary, is still a (shorter) valid option.
                var original = Parse(hex);
                Assert.True(
                    !shrunkParsed || !options.HasMtcp
                        || (original.AlternateServers is { } all && options.AlternateServers is { } prefix
                            && prefix.Servers.Count < all.Servers.Count && all.Servers.Take(prefix.Servers.Count).SequenceEqual(prefix.Servers)),
                    $"{name}: length byte {length} decoded as {options}");
            }
        }
    }

    [Fact]
    public void A_client_state_blob_header_must_read_back_its_fields_and_refuse_a_short_or_unknown_one()
    {
        var nonce = Golden.Bytes("a0a1a2a3a4a5a6a7a8a9aaab");
        var blob = Golden.MarkedBuffer(ClientStateBlob.Overhead + 3);
        new ClientStateBlob(KeyGeneration: 9, Sequence: 0x0102030405060708, Covers: new SeqNumber(0xFFFF_FFF0)).WriteHeader(blob, nonce);

        Assert.Equal("01" + "09" + "0102030405060708" + "fffffff0" + "a0a1a2a3a4a5a6a7a8a9aaab", Convert.ToHexString(blob, 0, ClientStateBlob.HeaderLength).ToLowerInvariant());
        Assert.True(ClientStateBlob.TryReadHeader(blob, out var header));
        Assert.Equal(new ClientStateBlob(9, 0x0102030405060708, new SeqNumber(0xFFFF_FFF0)), header);
        Assert.Equal(nonce, ClientStateBlob.NonceOf(blob).ToArray());
        Assert.False(ClientStateBlob.TryReadHeader(blob.AsSpan(0, ClientStateBlob.Overhead - 1), out _));
        blob[0] = 2;
        Assert.False(ClientStateBlob.TryReadHeader(blob, out _));
    }

    [Fact]
    public void Options_must_decode_to_the_thesis_fields()
    {
        var alternates = Parse(Vectors().Select(v => (string)v[1]).First()).AlternateServers!;
        Assert.Equal(
            [new ServerEndpoint(IpAddress.Parse("192.0.2.10"), 80), new ServerEndpoint(IpAddress.Parse("2001:db8::10"), 8080), new ServerEndpoint(IpAddress.Parse("192.0.2.11"), 80)],
            alternates.Servers);

        var migrated = Parse("fd18 4d54 02 00 c0000202 0050 fffffffe 0123456789abcdef").MigratedConnection!.Value;
        Assert.Equal(OriginV4, migrated.OriginServer);
        Assert.Null(migrated.ClientPort);
        Assert.Equal(0xFFFF_FFFEu, migrated.RcvNxt.Value);
        Assert.Equal(0x0123_4567_89AB_CDEFul, migrated.Authenticator);
        Assert.Equal(
            new ConnectionId(Golden.V4Client, 49153, OriginV4.Address, 80),
            migrated.ToConnectionId(Golden.V4Client, 49153, Golden.V4Server));

        var trigger = Parse("fd22 4d54 03 0d 1111111111111111 c0000202 0050 c0000203 0050 2222222222222222").MigrateTrigger!.Value;
        Assert.Equal(0x1111_1111_1111_1111ul, trigger.AuthTrig);
        Assert.Equal(OriginV4, trigger.OriginServer);
        Assert.Equal(new MtcpTriggerDestination(DestinationV4, 0x2222_2222_2222_2222), trigger.Destination);

        var info = Parse("fd0d 4d54 04 7ffffff0 80000010").OrigConnectionInfo!.Value;
        Assert.Equal(0x7FFF_FFF0u, info.LastAckSent.Value);
        Assert.Equal(0x8000_0010u, info.SndMaxSeen.Value);

        Assert.Equal(1500u, Parse("fd09 4d54 05 000005dc").Beta);
    }

    [Fact]
    public void Trigger_without_origin_must_name_the_connection_by_the_segment_source()
    {
        var trigger = new MtcpMigrateTrigger(1, null, null);

        Assert.Equal(
            new ConnectionId(Golden.V4Client, 49153, OriginV4.Address, 80),
            trigger.ToConnectionId(OriginV4, Golden.V4Client, 49153));
    }

    [Fact]
    public void Kind_254_with_our_exid_must_be_accepted_and_re_emitted_as_253()
    {
        var options = Parse("fe09 4d54 05 000005dc");

        Assert.Equal(1500u, options.Beta);
        Assert.StartsWith("fd09", Emit(options), StringComparison.Ordinal);
    }

    [Fact]
    public void Another_experiment_or_an_unknown_subtype_must_round_trip_as_unknown()
    {
        var other = Parse("fd06 f989 0102");
        Assert.False(other.HasMtcp);
        Assert.Equal("fd06f9890102", Convert.ToHexString(other.Unknown.Span).ToLowerInvariant());

        var future = Parse("fd07 4d54 63 aabb");
        Assert.False(future.HasMtcp);
        Assert.Equal("fd074d5463aabb" + "00", Emit(future));
    }

    [Theory]
    [InlineData("fd04 4d54")] // our ExID without a subtype
    [InlineData("fd05 4d54 01")] // alternate servers without the families byte
    [InlineData("fd0b 4d54 01 00 c0000202 00")] // a server cut short
    [InlineData("fd0c 4d54 01 01 c0000202 0050")] // IPv6 bit on a 6-byte entry
    [InlineData("fd0c 4d54 01 02 c0000202 0050")] // family bit for a server that is not there
    [InlineData("fd18 4d54 02 08 c0000202 0050 fffffffe 0123456789abcdef")] // reserved flag
    [InlineData("fd1c 4d54 02 04 0000000000000002 01bb fffffffe 0123456789abcdef")] // compact origin without the IPv6 flag
    [InlineData("fd1b 4d54 02 05 00000000000002 01bb fffffffe 0123456789abcdef")] // compact origin a byte short
    [InlineData("fd18 4d54 02 02 c0000202 0050 fffffffe 0123456789abcdef")] // client port flag without the port
    [InlineData("fd19 4d54 02 00 c0000202 0050 fffffffe 0123456789abcdef 00")] // a byte too many
    [InlineData("fd0e 4d54 03 02 1111111111111111")] // origin IPv6 without origin
    [InlineData("fd0e 4d54 03 08 1111111111111111")] // destination address without destination
    [InlineData("fd0e 4d54 03 20 1111111111111111")] // reserved flag
    [InlineData("fd0e 4d54 03 04 1111111111111111")] // destination without its authenticator
    [InlineData("fd0c 4d54 04 7ffffff0 800000")] // orig connection info too short
    [InlineData("fd0a 4d54 05 000005dc 00")] // beta too long
    [InlineData("fd14 4d54 06 000102030405060708090a0b0c0d0e")] // secret a byte short
    [InlineData("fd16 4d54 06 000102030405060708090a0b0c0d0e0f 10")] // secret a byte long
    [InlineData("fd05 4d54 06")] // secret missing
    [InlineData("fd06 4d54 07 00")] // client state marker with a body
    public void Malformed_mtcp_options_must_be_rejected(string hex)
    {
        Assert.False(TcpOptions.TryParse(Golden.Bytes(hex), out _, out var error));
        Assert.Equal(WireError.BadMtcpOption, error);
    }

    [Fact]
    public void Migrated_conn_must_fit_with_mss_except_an_IPv6_cid_with_explicit_client_port()
    {
        static TcpOptions Syn(ServerEndpoint origin, ushort? clientPort) => new()
        {
            MaxSegmentSize = 1460,
            MigratedConnection = new MtcpMigratedConnection(origin, clientPort, new SeqNumber(7), 42),
        };

        Assert.Equal(28, Syn(OriginV4, null).BufferLength);
        Assert.Equal(30, Syn(OriginV4, 50000).BufferLength);
        Assert.Equal(40, Syn(OriginV6, null).BufferLength);
        foreach (var fits in new[] { Syn(OriginV4, null), Syn(OriginV4, 50000), Syn(OriginV6, null) })
        {
            Assert.Equal(fits, Parse(Emit(fits)));
        }

        Assert.Equal(42, Syn(OriginV6, 50000).BufferLength);
        Assert.False(Syn(OriginV6, 50000).TryWrite(new byte[64], out _, out var error));
        Assert.Equal(WireError.OptionsTooLong, error);
    }

    [Fact]
    public void Special_syn_must_fit_40_bytes_with_mss_window_scale_and_sack_for_an_IPv6_origin_on_the_destinations_subnet()
    {
        var destination = IpAddress.Parse("2001:db8::3");
        foreach (var clientPort in new ushort?[] { null, 50000 })
        {
            var option = MtcpMigratedConnection.ForDestination(destination, OriginV6, clientPort, new SeqNumber(7), 42);
            Assert.True(option.OriginOnSynDestinationSubnet);
            var syn = new TcpOptions { MaxSegmentSize = 65476, WindowScale = 7, SackPermitted = true, MigratedConnection = option };
            Assert.Equal(clientPort is null ? 37 : 39, syn.BufferLength);

            var parsed = Parse(Emit(syn)).MigratedConnection!.Value;
            Assert.Equal(option.RcvNxt, parsed.RcvNxt);
            Assert.Equal(option.Authenticator, parsed.Authenticator);
            Assert.Equal(clientPort, parsed.ClientPort);
            Assert.Equal(OriginV6, parsed.OriginOn(destination));
            Assert.Equal(
                new ConnectionId(Golden.V6Client, clientPort ?? 49153, OriginV6.Address, OriginV6.Port),
                parsed.ToConnectionId(Golden.V6Client, 49153, destination));
        }
    }

    [Fact]
    public void Special_syn_must_carry_the_whole_origin_when_it_is_on_another_subnet_or_family()
    {
        var otherSubnet = MtcpMigratedConnection.ForDestination(IpAddress.Parse("2001:db8:1::3"), OriginV6, null, new SeqNumber(7), 42);
        var otherFamily = MtcpMigratedConnection.ForDestination(IpAddress.Parse("192.0.2.3"), OriginV6, null, new SeqNumber(7), 42);
        var ipv4 = MtcpMigratedConnection.ForDestination(IpAddress.Parse("192.0.2.3"), OriginV4, null, new SeqNumber(7), 42);
        foreach (var option in new[] { otherSubnet, otherFamily, ipv4 })
        {
            Assert.False(option.OriginOnSynDestinationSubnet);
            var parsed = Parse(Emit(new TcpOptions { MaxSegmentSize = 1460, MigratedConnection = option })).MigratedConnection!.Value;
            Assert.Equal(option, parsed);
            Assert.Equal(option.OriginServer, parsed.OriginOn(IpAddress.Parse("2001:db8:2::9")));
        }
    }

    [Fact]
    public void Trigger_must_fit_40_bytes_unless_both_IPv6_endpoints_are_explicit()
    {
        var fitting = new[]
        {
            new TcpOptions
            {
                MaxSegmentSize = 1460,
                MigrateTrigger = new MtcpMigrateTrigger(1, OriginV4, new MtcpTriggerDestination(DestinationV4, 2)),
            },
            new TcpOptions { MigrateTrigger = new MtcpMigrateTrigger(1, null, new MtcpTriggerDestination(DestinationV6, 2)) },
            new TcpOptions { MigrateTrigger = new MtcpMigrateTrigger(1, OriginV6, new MtcpTriggerDestination(null, 2)) },
        };
        Assert.Equal([38, 40, 40], fitting.Select(o => o.BufferLength));
        foreach (var options in fitting)
        {
            Assert.Equal(options, Parse(Emit(options)));
        }

        var tooLong = new TcpOptions { MigrateTrigger = new MtcpMigrateTrigger(1, OriginV6, new MtcpTriggerDestination(DestinationV6, 2)) };
        Assert.Equal(58, tooLong.BufferLength);
        Assert.False(tooLong.TryWrite(new byte[64], out _, out var error));
        Assert.Equal(WireError.OptionsTooLong, error);
    }

    [Fact]
    public void Orig_connection_info_must_fit_with_every_standard_syn_ack_option()
    {
        var options = SynAckStandard with { OrigConnectionInfo = new MtcpOrigConnectionInfo(new SeqNumber(1), new SeqNumber(2)) };

        Assert.Equal(32, options.BufferLength);
        Assert.Equal(options, Parse(Emit(options)));
    }

    [Fact]
    public void Beta_must_fit_with_timestamps_and_three_sack_blocks()
    {
        var sack = default(SackBlockList)
            .Add(new SackBlock(new SeqNumber(1), new SeqNumber(2)))
            .Add(new SackBlock(new SeqNumber(3), new SeqNumber(4)));
        var options = new TcpOptions { Timestamps = new TcpTimestamps(1, 2), Sack = sack, Beta = uint.MaxValue };

        Assert.Equal(10 + 18 + 9, options.BufferLength);
        Assert.Equal(options, Parse(Emit(options)));
    }

    [Fact]
    public void Alternate_servers_must_keep_the_preferred_prefix_that_fits_beside_the_other_options()
    {
        var five = Enumerable.Range(10, 5).Select(i => new ServerEndpoint(IpAddress.Parse($"192.0.2.{i}"), 80)).ToArray();

        // MSS, window scale, SACK-permitted and timestamps take 19 bytes: 21 remain, room for 2 IPv4 servers.
        var full = SynAckStandard.WithAlternateServers(five, out var dropped);
        Assert.Equal(five.Take(2), full.AlternateServers!.Servers);
        Assert.Equal(3, dropped);
        Assert.True(full.BufferLength <= TcpSegment.MaxOptionsLength);
        Assert.Equal(full, Parse(Emit(full)));

        // With MSS alone 36 bytes remain: 6 + 5 * 6 = 36, all five fit.
        var mssOnly = new TcpOptions { MaxSegmentSize = 1460 }.WithAlternateServers(five, out var none);
        Assert.Equal(five, mssOnly.AlternateServers!.Servers);
        Assert.Equal(0, none);
        Assert.Equal(40, mssOnly.BufferLength);
        Assert.Equal(mssOnly, Parse(Emit(mssOnly)));
    }

    [Fact]
    public void Alternate_servers_must_not_skip_a_preferred_IPv6_server_to_fit_later_ones()
    {
        var preferred = new[] { OriginV6, OriginV4, DestinationV4 };

        var full = SynAckStandard.WithAlternateServers(preferred, out var dropped);
        Assert.Null(full.AlternateServers);
        Assert.Equal(3, dropped);

        // MSS and timestamps leave 26 bytes: the IPv6 server (6 + 18) fits, the next IPv4 one (6) does not.
        var mssAndTimestamps = new TcpOptions { MaxSegmentSize = 1460, Timestamps = new TcpTimestamps(1, 2) }
            .WithAlternateServers(preferred, out var droppedBeside);
        Assert.Equal(preferred.Take(1), mssAndTimestamps.AlternateServers!.Servers);
        Assert.Equal(2, droppedBeside);
    }

    [Fact]
    public void Alternate_servers_must_refuse_more_than_fit_one_option_or_a_missing_address()
    {
        var nine = Enumerable.Range(1, 9).Select(i => new ServerEndpoint(IpAddress.Parse($"192.0.2.{i}"), 80));

        Assert.Throws<ArgumentException>(() => new MtcpAlternateServers(nine));
        Assert.Throws<ArgumentException>(() => new MtcpAlternateServers([new ServerEndpoint(default, 80)]));
    }

    [Fact]
    public void Emit_must_refuse_an_mtcp_option_without_addresses()
    {
        var options = new TcpOptions { MigratedConnection = new MtcpMigratedConnection(default, null, default, 0) };

        Assert.False(options.TryWrite(new byte[40], out _, out var error));
        Assert.Equal(WireError.MissingAddress, error);
    }

    [Fact]
    public void Every_mtcp_subtype_at_once_must_round_trip_when_it_fits()
    {
        var options = new TcpOptions
        {
            AlternateServers = new MtcpAlternateServers([OriginV4]),
            OrigConnectionInfo = new MtcpOrigConnectionInfo(new SeqNumber(5), new SeqNumber(6)),
            Beta = 9,
        };

        Assert.Equal(12 + 13 + 9, options.BufferLength);
        Assert.Equal(options, Parse(Emit(options)));
    }

    [Fact]
    public void Copies_of_options_must_not_share_changes_to_mtcp_values()
    {
        var first = new TcpOptions { Beta = 1, MaxSegmentSize = 1000 };
        var second = first with { Beta = 2 };

        Assert.Equal(1u, first.Beta);
        Assert.Equal(2u, second.Beta);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Options_with_mtcp_values_cleared_must_equal_options_that_never_had_them()
    {
        var cleared = new TcpOptions { Beta = 5 } with { Beta = null };

        Assert.False(cleared.HasMtcp);
        Assert.Equal(default(TcpOptions), cleared);
        Assert.Equal(default(TcpOptions).GetHashCode(), cleared.GetHashCode());
        Assert.Equal(0, cleared.BufferLength);
    }
}

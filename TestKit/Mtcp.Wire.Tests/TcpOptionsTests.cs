namespace Mtcp.Wire.Tests;

[Trait("Category", "Wire")]
public sealed class TcpOptionsTests
{
    private static TcpOptions Parse(string hex)
    {
        Assert.True(TcpOptions.TryParse(Golden.Bytes(hex), out var options, out var error), error.ToString());
        return options;
    }

    private static WireError ParseError(string hex)
    {
        Assert.False(TcpOptions.TryParse(Golden.Bytes(hex), out _, out var error));
        return error;
    }

    private static string Emit(TcpOptions options)
    {
        var buffer = Golden.MarkedBuffer(TcpSegment.MaxOptionsLength + 4);
        Assert.True(options.TryWrite(buffer, out var written, out var error), error.ToString());
        Assert.Equal(options.PaddedLength, written);
        Assert.All(buffer.Skip(written), b => Assert.Equal(Golden.Marker, b));
        return Convert.ToHexString(buffer, 0, written).ToLowerInvariant();
    }

    public static TheoryData<string, string> SingleOptions() => new()
    {
        { "mss", "020405b4" },
        { "window scale", "03030e00" },
        { "sack permitted", "04020000" },
        { "timestamps", "080affffffff0000000100" + "00" },
        { "one sack block", "050afffffff0000000100000" },
        { "four sack blocks", "0522" + "0000000100000002" + "0000000300000004" + "0000000500000006" + "0000000700000008" + "0000" },
        { "unknown", "fe0601020304" + "0000" },
        { "unknown empty", "1e02" + "0000" },
    };

    [Theory]
    [MemberData(nameof(SingleOptions))]
    public void Each_option_must_round_trip_byte_for_byte(string name, string hex)
    {
        var options = Parse(hex);

        Assert.True(Emit(options) == hex, name);
        Assert.Equal(options, Parse(Emit(options)));
    }

    [Fact]
    public void Options_must_decode_to_their_values()
    {
        var options = Parse("020405b4 0303 0e 0402 080a 0000 0001 0000 0002 01 01 0000");

        Assert.Equal((ushort)1460, options.MaxSegmentSize);
        Assert.Equal((byte)14, options.WindowScale);
        Assert.True(options.SackPermitted);
        Assert.Equal(new TcpTimestamps(1, 2), options.Timestamps);
        Assert.Equal(0, options.Sack.Count);
        Assert.True(options.Unknown.IsEmpty);
    }

    [Fact]
    public void Nop_padding_must_be_skipped_and_eol_must_end_the_list()
    {
        var options = Parse("0101 080a 0000 0001 0000 0002 00 ff ff ff");

        Assert.Equal(new TcpTimestamps(1, 2), options.Timestamps);
        Assert.True(options.Unknown.IsEmpty);
    }

    [Fact]
    public void Unknown_options_must_keep_their_bytes_and_order()
    {
        var options = Parse("1e04 1001 0204 05b4 2203 aa");

        Assert.Equal("1e041001" + "2203aa", Convert.ToHexString(options.Unknown.Span).ToLowerInvariant());
        Assert.Equal("020405b4" + "1e041001" + "2203aa" + "00", Emit(options));
    }

    [Fact]
    public void Window_scale_above_14_must_be_kept_for_the_engine_to_clamp()
    {
        Assert.Equal((byte)200, Parse("0303 c8 00").WindowScale);
    }

    [Theory]
    [InlineData("0200", WireError.BadOptionLength)] // length 0
    [InlineData("0201", WireError.BadOptionLength)] // length 1
    [InlineData("fe00", WireError.BadOptionLength)] // unknown kind, length 0
    [InlineData("020305", WireError.BadOptionLength)] // MSS of length 3
    [InlineData("0205050505", WireError.BadOptionLength)] // MSS of length 5
    [InlineData("030200", WireError.BadOptionLength)] // window scale of length 2
    [InlineData("04030000", WireError.BadOptionLength)] // SACK-permitted of length 3
    [InlineData("080900000000000000000000", WireError.BadOptionLength)] // timestamps of length 9
    [InlineData("0502", WireError.BadOptionLength)] // SACK without blocks
    [InlineData("050a00000000000000", WireError.OptionOverrun)] // SACK runs one past the end
    [InlineData("050c00000000000000000000", WireError.BadOptionLength)] // SACK of 1.25 blocks
    [InlineData("02", WireError.OptionOverrun)] // kind without length
    [InlineData("0101 02", WireError.OptionOverrun)]
    [InlineData("020405", WireError.OptionOverrun)] // MSS cut short
    [InlineData("fe0a0102", WireError.OptionOverrun)] // unknown kind overruns
    public void Impossible_lengths_must_give_typed_errors(string hex, WireError expected)
    {
        Assert.Equal(expected, ParseError(hex));
    }

    [Fact]
    public void Five_sack_blocks_cannot_exist_because_they_overrun_40_bytes()
    {
        // 2 + 5 * 8 = 42 bytes cannot be announced inside a 40-byte area.
        var hex = "052a" + string.Concat(Enumerable.Repeat("0000000000000000", 4)) + "000000";
        Assert.Equal(WireError.OptionOverrun, ParseError(hex));
    }

    [Fact]
    public void A_repeated_kind_must_keep_the_last_value()
    {
        Assert.Equal((ushort)1400, Parse("020405b4 02040578").MaxSegmentSize);
    }

    [Fact]
    public void Writing_more_than_40_bytes_must_fail_with_OptionsTooLong()
    {
        var sack = default(SackBlockList);
        for (var i = 0; i < SackBlockList.Capacity; i++)
        {
            sack = sack.Add(new SackBlock(new SeqNumber((uint)i), new SeqNumber((uint)i + 1)));
        }

        var options = new TcpOptions { Timestamps = new TcpTimestamps(1, 2), Sack = sack };

        Assert.Equal(10 + 34, options.BufferLength);
        Assert.False(options.TryWrite(new byte[64], out _, out var error));
        Assert.Equal(WireError.OptionsTooLong, error);
        var repr = Golden.SynV4Repr with { Options = options };
        Assert.False(repr.TryEmit(new byte[128], default, Golden.V4Client, Golden.V4Server, out _, out var emitError));
        Assert.Equal(WireError.OptionsTooLong, emitError);
    }

    [Fact]
    public void Exactly_40_bytes_of_options_must_be_accepted()
    {
        var sack = default(SackBlockList);
        for (var i = 0; i < 3; i++)
        {
            sack = sack.Add(new SackBlock(new SeqNumber((uint)i), new SeqNumber((uint)i + 1)));
        }

        // Timestamps (10) + three SACK blocks (26) + MSS (4) = 40, the whole option space.
        var options = new TcpOptions { MaxSegmentSize = 536, Timestamps = new TcpTimestamps(1, 2), Sack = sack };

        Assert.Equal(40, options.BufferLength);
        Assert.Equal(options, Parse(Emit(options)));
    }

    [Fact]
    public void Padding_must_be_an_eol_then_zeros_to_a_32_bit_boundary()
    {
        Assert.Equal("030307" + "00", Emit(new TcpOptions { WindowScale = 7 }));
        Assert.Equal("0402" + "0000", Emit(new TcpOptions { SackPermitted = true }));
        Assert.Equal(string.Empty, Emit(default));
    }

    [Fact]
    public void Options_equality_must_compare_unknown_bytes_by_content()
    {
        var a = new TcpOptions { Unknown = Golden.Bytes("1e041001") };
        var b = new TcpOptions { Unknown = Golden.Bytes("1e041001") };
        var c = new TcpOptions { Unknown = Golden.Bytes("1e041002") };

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, c);
    }
}

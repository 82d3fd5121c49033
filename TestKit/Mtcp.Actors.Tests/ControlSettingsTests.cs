using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class ControlSettingsTests
{
    private static ControlSettings Parse(string overrides) =>
        ControlSettings.Create(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(overrides)));

    [Fact]
    public void Reference_config_must_yield_the_documented_defaults()
    {
        var settings = ControlSettings.Create(MtcpConfig.Reference);

        Assert.Equal(TimeSpan.FromSeconds(2), settings.StateRequestTimeout);
        Assert.Equal(128 * 1024, settings.ReplyChunkSize);
        Assert.Equal(4 * 1024, settings.RemoteEnvelopeReserve);
        Assert.Equal(16 * 1024 * 1024, settings.MaxStateReplySize);
        Assert.Equal(64L * 1024 * 1024, settings.MaxReassemblyBytes);
        Assert.Equal(256_000, settings.MaximumFrameSize);
    }

    [Fact]
    public void Reference_config_must_raise_the_remote_frame_and_buffer_sizes_above_akka_defaults()
    {
        var tcp = MtcpConfig.Reference.GetConfig("akka.remote.dot-netty.tcp");

        Assert.True(tcp.GetByteSize("maximum-frame-size") > 128_000);
        Assert.True(tcp.GetByteSize("send-buffer-size") >= tcp.GetByteSize("maximum-frame-size"));
        Assert.True(tcp.GetByteSize("receive-buffer-size") >= tcp.GetByteSize("maximum-frame-size"));
    }

    [Fact]
    public void Takeover_from_a_silent_origin_must_be_on_in_the_reference_under_the_special_SYN_timeout_and_off_when_a_node_says_so()
    {
        var reference = Parse("");
        Assert.True(reference.TakesOverSilentOrigins);
        Assert.Equal(TimeSpan.FromMilliseconds(500), reference.SilentOriginTakeover);
        var failover = MtcpConfig.Reference.GetTimeSpan("mtcp.migration.failover.special-syn-timeout");
        Assert.True(reference.SilentOriginTakeover < failover, $"silent-origin-takeover {reference.SilentOriginTakeover} must leave a failing-over client time to get the SYN+ACK within special-syn-timeout {failover}");

        Assert.False(Parse("mtcp.control.silent-origin-takeover = off").TakesOverSilentOrigins);
    }

    [Fact]
    public void Node_config_must_win_over_the_reference()
    {
        var settings = Parse("mtcp.control.state-request-timeout = 250ms\nmtcp.control.reply-chunk-size = 64000b");

        Assert.Equal(TimeSpan.FromMilliseconds(250), settings.StateRequestTimeout);
        Assert.Equal(64_000, settings.ReplyChunkSize);
        Assert.Equal(16 * 1024 * 1024, settings.MaxStateReplySize);
    }

    [Theory]
    [InlineData("mtcp.control.state-request-timeout = -1s", "mtcp.control.state-request-timeout must be positive, got -1s")]
    [InlineData("mtcp.control.state-request-timeout = 0s", "mtcp.control.state-request-timeout must be positive, got 0s")]
    [InlineData("mtcp.control.reply-chunk-size = 0b", "mtcp.control.reply-chunk-size must be a size of 1 to 2147483647 bytes, got 0b")]
    [InlineData("mtcp.control.remote-envelope-reserve = 0b", "mtcp.control.remote-envelope-reserve must be a size of 1 to 2147483647 bytes, got 0b")]
    [InlineData("mtcp.control.max-state-reply-size = 3GiB", "mtcp.control.max-state-reply-size must be a size of 1 to 2147483647 bytes, got 3GiB")]
    [InlineData("mtcp.control.reply-chunk-size = lots", "mtcp.control.reply-chunk-size must be a size in bytes such as 65536b or 256KiB, got lots")]
    [InlineData("mtcp.control.state-request-timeout = soon", "mtcp.control.state-request-timeout must be a duration such as 2s or 500ms, got soon")]
    public void Invalid_value_must_fail_naming_the_key_and_the_value(string overrides, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => Parse(overrides));

        Assert.Equal(expected, error.Message);
    }

    [Fact]
    public void Chunk_that_cannot_fit_a_remote_frame_must_be_refused()
    {
        var error = Assert.Throws<ConfigurationException>(() => Parse("akka.remote.dot-netty.tcp.maximum-frame-size = 128000b"));

        Assert.Contains("mtcp.control.reply-chunk-size (131072 bytes)", error.Message);
        Assert.Contains("mtcp.control.remote-envelope-reserve (4096 bytes)", error.Message);
        Assert.Contains("akka.remote.dot-netty.tcp.maximum-frame-size (128000 bytes)", error.Message);
    }

    [Fact]
    public void Limits_that_exclude_each_other_must_be_refused()
    {
        var tooSmallReply = Assert.Throws<ConfigurationException>(() => Parse("mtcp.control.max-state-reply-size = 1000b"));
        var tooSmallBudget = Assert.Throws<ConfigurationException>(() => Parse("mtcp.control.max-reassembly-bytes = 1MiB"));

        Assert.StartsWith("mtcp.control.max-state-reply-size (1000 bytes) must be at least mtcp.control.reply-chunk-size", tooSmallReply.Message);
        Assert.StartsWith("mtcp.control.max-reassembly-bytes (1048576 bytes) must be at least mtcp.control.max-state-reply-size", tooSmallBudget.Message);
    }

    [Fact]
    public void Missing_key_must_be_named()
    {
        var withoutReference = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.maximum-frame-size = 256000b");

        var error = Assert.Throws<ConfigurationException>(() => ControlSettings.Create(withoutReference));

        Assert.StartsWith("mtcp.control.state-request-timeout is missing", error.Message);
    }
}

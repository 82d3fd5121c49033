namespace Mtcp.Stack.Tests;

[Trait("Category", "Stack")]
public sealed class TcpConfigTests
{
    public static TheoryData<string, TcpConfig> InvalidConfigs => new()
    {
        { nameof(TcpConfig.MaxSegmentSize), TcpConfig.Default with { MaxSegmentSize = 10 } },
        { nameof(TcpConfig.SendBufferSize), TcpConfig.Default with { SendBufferSize = 100 } },
        { nameof(TcpConfig.ReceiveBufferSize), TcpConfig.Default with { ReceiveBufferSize = 100 } },
        { nameof(TcpConfig.WindowScaleShift), TcpConfig.Default with { WindowScaleShift = 15 } },
        { nameof(TcpConfig.MinRto), TcpConfig.Default with { MinRto = TimeSpan.Zero } },
        { nameof(TcpConfig.MaxRto), TcpConfig.Default with { MaxRto = TimeSpan.FromMilliseconds(100) } },
        { nameof(TcpConfig.InitialRto), TcpConfig.Default with { InitialRto = TimeSpan.FromMinutes(5) } },
        { nameof(TcpConfig.DelayedAckTimeout), TcpConfig.Default with { DelayedAckTimeout = TimeSpan.FromSeconds(1) } },
        { nameof(TcpConfig.MaximumSegmentLifetime), TcpConfig.Default with { MaximumSegmentLifetime = TimeSpan.FromSeconds(-1) } },
        { nameof(TcpConfig.ConnectTimeout), TcpConfig.Default with { ConnectTimeout = TimeSpan.Zero } },
        { nameof(TcpConfig.MaxSynRetransmissions), TcpConfig.Default with { MaxSynRetransmissions = -1 } },
        { nameof(TcpConfig.MaxRetransmissions), TcpConfig.Default with { MaxRetransmissions = 0 } },
        { nameof(TcpConfig.InitialWindowSegments), TcpConfig.Default with { InitialWindowSegments = 0 } },
        { nameof(TcpConfig.BlackHoleTimeouts), TcpConfig.Default with { BlackHoleTimeouts = 0 } },
        { nameof(TcpConfig.BaseSegmentSize), TcpConfig.Default with { BaseSegmentSize = 10 } },
        { nameof(TcpConfig.PathMtuRaiseInterval), TcpConfig.Default with { PathMtuRaiseInterval = TimeSpan.Zero } },
        { nameof(TcpConfig.PathMtuSearchStep), TcpConfig.Default with { PathMtuSearchStep = 0 } },
    };

    [Theory]
    [MemberData(nameof(InvalidConfigs))]
    public void Validation_must_name_the_bad_field(string field, TcpConfig config)
    {
        var error = Assert.Throws<ArgumentException>(() => config.Validate());
        Assert.Equal(field, error.ParamName);
        Assert.Contains($"TcpConfig.{field}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Creating_a_connection_must_validate_its_config()
    {
        Assert.Throws<ArgumentException>(() => TcpConnection.Listen(TcpConfig.Default with { MaxSegmentSize = 0 }, 80, default));
    }

    [Fact]
    public void Defaults_must_follow_the_rfcs()
    {
        var config = TcpConfig.Default.Validate();
        Assert.Equal(TimeSpan.FromSeconds(1), config.InitialRto); // RFC 6298 §2.1
        Assert.True(config.MaxRto >= TimeSpan.FromSeconds(60)); // RFC 6298 §2.5
        Assert.Equal(10, config.InitialWindowSegments); // RFC 6928
        Assert.True(config.DelayedAckTimeout < TimeSpan.FromMilliseconds(500)); // RFC 9293 §3.8.6.3
        Assert.Equal(TimeSpan.FromSeconds(600), config.PathMtuRaiseInterval); // RFC 8899 §5.1.1 PMTU_RAISE_TIMER
        Assert.True(config.BaseSegmentSize + 20 + 40 + 40 <= 1200); // RFC 8899 §5.1.2 BASE_PLPMTU, IPv6 headers and option room
    }
}

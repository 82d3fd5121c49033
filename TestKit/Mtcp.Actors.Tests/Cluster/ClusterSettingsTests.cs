using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class ClusterSettingsTests
{
    private static ClusterSettings Parse(string overrides) =>
        ClusterSettings.Create(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(overrides)));

    [Fact]
    public void Reference_config_must_yield_the_documented_defaults()
    {
        var settings = ClusterSettings.Create(MtcpConfig.Reference);

        Assert.Empty(settings.ServiceEndpoints);
        Assert.Equal(TimeSpan.FromMilliseconds(500), settings.AnnounceRetryInterval);
    }

    [Fact]
    public void Reference_config_must_tune_cluster_formation_and_downing()
    {
        var cluster = MtcpConfig.Reference.GetConfig("akka.cluster");

        Assert.Equal(TimeSpan.FromMilliseconds(500), cluster.GetTimeSpan("seed-node-timeout"));
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.GetTimeSpan("retry-unsuccessful-join-after"));
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.GetTimeSpan("gossip-interval"));
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.GetTimeSpan("leader-actions-interval"));
        Assert.Equal("Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster", cluster.GetString("downing-provider-class"));
        Assert.Equal("keep-majority", cluster.GetString("split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(2), cluster.GetTimeSpan("split-brain-resolver.stable-after"));
    }

    [Fact]
    public void Service_endpoints_must_parse_ipv4_and_ipv6_in_order()
    {
        var settings = Parse("""mtcp.cluster.service-endpoints = ["10.0.0.2:80", "[2001:db8::2]:8080"]""");

        Assert.Equal(
            [new ServerEndpoint(IpAddress.Parse("10.0.0.2"), 80), new ServerEndpoint(IpAddress.Parse("2001:db8::2"), 8080)],
            settings.ServiceEndpoints);
    }

    [Theory]
    [InlineData("""mtcp.cluster.service-endpoints = ["10.0.0.2"]""", "mtcp.cluster.service-endpoints entry 10.0.0.2 must be \"address:port\", e.g. 10.0.0.2:80 or [2001:db8::2]:80")]
    [InlineData("""mtcp.cluster.service-endpoints = ["server:80"]""", "mtcp.cluster.service-endpoints entry server:80 must be \"address:port\", e.g. 10.0.0.2:80 or [2001:db8::2]:80")]
    [InlineData("""mtcp.cluster.service-endpoints = ["10.0.0.2:0"]""", "mtcp.cluster.service-endpoints entry 10.0.0.2:0 must have a port from 1 to 65535")]
    [InlineData("""mtcp.cluster.service-endpoints = ["0.0.0.0:80"]""", "mtcp.cluster.service-endpoints entry 0.0.0.0:80 must name a concrete address: clients cannot connect to 0.0.0.0")]
    [InlineData("""mtcp.cluster.service-endpoints = ["10.0.0.2:80", "10.0.0.2:80"]""", "mtcp.cluster.service-endpoints lists 10.0.0.2:80 twice")]
    [InlineData("mtcp.cluster.announce-retry-interval = 0s", "mtcp.cluster.announce-retry-interval must be positive, got 0s")]
    [InlineData("mtcp.cluster.announce-retry-interval = -1s", "mtcp.cluster.announce-retry-interval must be positive, got -1s")]
    [InlineData("mtcp.cluster.announce-retry-interval = often", "mtcp.cluster.announce-retry-interval must be a duration such as 2s or 500ms, got often")]
    public void Invalid_value_must_fail_naming_the_key(string overrides, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => Parse(overrides));

        Assert.Equal(expected, error.Message);
    }

    [Fact]
    public void Missing_section_must_fail_naming_the_key()
    {
        var error = Assert.Throws<ConfigurationException>(() => ClusterSettings.Create(ConfigurationFactory.ParseString("a = 1")));

        Assert.StartsWith("mtcp.cluster.service-endpoints is missing", error.Message);
    }
}

using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

[Trait("Category", "Actors")]
public sealed class RuntimeSettingsTests
{
    private static Config Layered(string overrides) => MtcpConfig.WithFallback(ConfigurationFactory.ParseString(overrides));

    [Fact]
    public void Reference_config_must_yield_the_documented_runtime_defaults()
    {
        var settings = RuntimeSettings.Create(MtcpConfig.Reference);

        Assert.Equal(TransportKind.Auto, settings.Transport);
        Assert.Equal(IpAddress.Parse("127.0.0.1"), settings.LocalAddress);
        Assert.Equal(5253, settings.UdpPort);
        Assert.Equal(5253, settings.UdpPeerPort);
        Assert.Equal(8 * 1024 * 1024, settings.RawReceiveBufferSize);
        Assert.Equal(TimeSpan.FromMilliseconds(100), settings.ReceivePollInterval);
        Assert.Equal(1024, settings.SynBacklog);
        Assert.Equal(4096, settings.AcceptBacklog);
        Assert.Equal(SynCookieMode.On, settings.SynCookies);
        Assert.Equal(49152, settings.EphemeralPortFirst);
        Assert.Equal(65535, settings.EphemeralPortLast);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.RouteMtuCache);
    }

    [Fact]
    public void Reference_config_must_map_onto_the_engine_defaults()
    {
        var tcp = TcpSettings.Create(MtcpConfig.Reference);

        // Two deliberate differences: the runtime's MSS is an upper bound that the route to each peer lowers (the
        // engine alone has no route, so its default is Ethernet-sized), and the runtime turns Nagle on, as Linux
        // does by default, where the engine's fixtures keep TCP_NODELAY.
        Assert.Equal(Stack.TcpConfig.Default with { MaxSegmentSize = 65495, Nagle = true }, tcp);
    }

    [Fact]
    public void Window_scale_off_must_disable_the_option()
    {
        Assert.Null(TcpSettings.Create(Layered("mtcp.tcp.window-scale = off")).WindowScaleShift);
    }

    [Fact]
    public void Sack_off_must_disable_selective_acknowledgments()
    {
        Assert.True(TcpSettings.Create(MtcpConfig.Reference).SelectiveAcknowledgment);
        Assert.False(TcpSettings.Create(Layered("mtcp.tcp.sack = off")).SelectiveAcknowledgment);
    }

    [Fact]
    public void Path_mtu_probing_keys_must_map_onto_the_engine()
    {
        var tcp = TcpSettings.Create(Layered(
            "mtcp.tcp.path-mtu-probing { enabled = off, black-hole-timeouts = 5, base-segment-size = 1200, raise-interval = 30s, search-step = 64 }"));

        Assert.False(tcp.PathMtuProbing);
        Assert.Equal(5, tcp.BlackHoleTimeouts);
        Assert.Equal(1200, tcp.BaseSegmentSize);
        Assert.Equal(TimeSpan.FromSeconds(30), tcp.PathMtuRaiseInterval);
        Assert.Equal(64, tcp.PathMtuSearchStep);
        var error = Assert.Throws<Akka.Configuration.ConfigurationException>(() => TcpSettings.Create(Layered("mtcp.tcp.path-mtu-probing.raise-interval = 0s")));
        Assert.Contains("mtcp.tcp.path-mtu-probing.raise-interval", error.Message);
    }

    [Fact]
    public void Congestion_control_must_default_to_cubic_and_accept_newreno()
    {
        Assert.Equal(Stack.CongestionControlAlgorithm.Cubic, TcpSettings.Create(MtcpConfig.Reference).CongestionControl);
        Assert.Equal(Stack.CongestionControlAlgorithm.NewReno, TcpSettings.Create(Layered("mtcp.tcp.congestion-control = newreno")).CongestionControl);
        var error = Assert.Throws<Akka.Configuration.ConfigurationException>(() => TcpSettings.Create(Layered("mtcp.tcp.congestion-control = bbr")));
        Assert.Contains("mtcp.tcp.congestion-control", error.Message);
    }

    [Theory]
    [InlineData("mtcp.runtime.transport = carrier-pigeon", "mtcp.runtime.transport must be one of auto, raw, udp, memory, got carrier-pigeon")]
    [InlineData("mtcp.runtime.local-address = \"0.0.0.0\"", "mtcp.runtime.local-address must be a specific address, not the wildcard (segments are filtered by destination), got 0.0.0.0")]
    [InlineData("mtcp.runtime.local-address = \"fe80::1\"", "mtcp.runtime.local-address must be an IPv4 address or a global, unique local or loopback IPv6 address, not a link-local or IPv4-mapped one, got fe80::1")]
    [InlineData("mtcp.runtime.local-address = \"::ffff:127.0.0.2\"", "mtcp.runtime.local-address must be an IPv4 address or a global, unique local or loopback IPv6 address, not a link-local or IPv4-mapped one, got ::ffff:127.0.0.2")]
    [InlineData("mtcp.runtime.udp.port = 70000", "mtcp.runtime.udp.port must be an integer from 1 to 65535, got 70000")]
    [InlineData("mtcp.runtime.accept-backlog = 0", "mtcp.runtime.accept-backlog must be an integer from 1 to 2147483647, got 0")]
    [InlineData("mtcp.runtime.syn-backlog = 0", "mtcp.runtime.syn-backlog must be an integer from 1 to 2147483647, got 0")]
    [InlineData("mtcp.runtime.syn-cookies = sometimes", "mtcp.runtime.syn-cookies must be one of on, off, always, got sometimes")]
    [InlineData("mtcp.runtime.receive-poll-interval = 0s", "mtcp.runtime.receive-poll-interval must be positive, got 0s")]
    public void Invalid_runtime_value_must_fail_naming_the_key_and_the_value(string overrides, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => RuntimeSettings.Create(Layered(overrides)));

        Assert.Equal(expected, error.Message);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("raw")]
    [InlineData("udp")]
    public void IPv6_local_address_must_be_accepted_with_every_transport(string transport)
    {
        var settings = RuntimeSettings.Create(Layered($"mtcp.runtime.transport = {transport}\nmtcp.runtime.local-address = \"fd00:51::2\""));

        Assert.Equal(IpAddress.Parse("fd00:51::2"), settings.LocalAddress);
    }

    [Fact]
    public void Inverted_ephemeral_range_must_be_refused()
    {
        var error = Assert.Throws<ConfigurationException>(() => RuntimeSettings.Create(Layered("mtcp.runtime.ephemeral-port-first = 60000\nmtcp.runtime.ephemeral-port-last = 50000")));

        Assert.Contains("ephemeral-port-first (60000) must not exceed", error.Message);
    }

    [Theory]
    [InlineData("mtcp.tcp.max-segment-size = 10", "mtcp.tcp.max-segment-size must be an integer from 64 to 65495, got 10")]
    [InlineData("mtcp.tcp.nagle = maybe", "mtcp.tcp.nagle must be on or off, got maybe")]
    [InlineData("mtcp.tcp.delayed-ack = -5ms", "mtcp.tcp.delayed-ack must not be negative, got -5ms")]
    public void Invalid_tcp_value_must_fail_naming_the_key_and_the_value(string overrides, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => TcpSettings.Create(Layered(overrides)));

        Assert.Equal(expected, error.Message);
    }

    [Fact]
    public void Rule_across_keys_must_name_the_keys_involved()
    {
        var error = Assert.Throws<ConfigurationException>(() => TcpSettings.Create(Layered("mtcp.tcp.min-rto = 2s")));

        Assert.Contains("mtcp.tcp.initial-rto, min-rto, max-rto", error.Message);
    }
}

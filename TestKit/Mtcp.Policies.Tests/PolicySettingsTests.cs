using Akka.Configuration;
using Akka.Configuration.Hocon;
using Mtcp.Actors.Api;
using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

[Trait("Category", "Policy")]
public sealed class PolicySettingsTests
{
    [Fact]
    public void Reference_config_must_yield_the_thesis_throughput_policy()
    {
        var client = PolicySettings.Create(MtcpConfig.Reference).Client;

        Assert.Equal([PolicyKind.Throughput], client.Triggers);
        Assert.Equal(DestinationChoice.RoundRobin, client.DestinationChoice);
        Assert.Equal(0.4, client.Throughput.Alpha);
        Assert.Equal(0.7, client.Throughput.TriggerRatio);
        Assert.Equal(TimeSpan.Zero, client.Throughput.SampleInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(500), client.Throughput.MinObservationWindow);
        Assert.Equal(1, client.Throughput.ConsecutiveSamples);
        Assert.Equal(new GuardSettings(TimeSpan.FromSeconds(1), 10, 20, TimeSpan.Zero), client.Guard);
    }

    [Fact]
    public void Reference_config_must_yield_the_documented_server_defaults()
    {
        var server = PolicySettings.Create(MtcpConfig.Reference).Server;

        Assert.Equal(LoadSource.Connections, server.LoadSource);
        Assert.Equal(TimeSpan.FromSeconds(1), server.EvaluationInterval);
        Assert.Equal(TimeSpan.FromSeconds(5), server.PeerReportExpiry);
        Assert.True(server.Push);
        Assert.False(server.Pull);
        Assert.Equal(4, server.ImbalanceThreshold);
        Assert.Equal(4, server.MaxMovesPerEvaluation);
        Assert.Equal(0, server.OverloadThreshold);
        Assert.Equal(0.1, server.ShedFraction);
        Assert.Equal(new GuardSettings(TimeSpan.FromSeconds(10), 5, 10, TimeSpan.FromSeconds(30)), server.Guard);
        Assert.Equal(new DrainSettings(20, 20, TimeSpan.FromSeconds(5)), server.Drain);
    }

    [Fact]
    public void Node_config_must_win_over_the_reference()
    {
        var settings = Settings("""
            mtcp.policies.client.triggers = [latency, response-time]
            mtcp.policies.client.destination-choice = best-known
            mtcp.policies.client.latency.fixed-bound = 250ms
            mtcp.policies.server.load-source = bytes-per-second
            mtcp.policies.server.pull = on
            """);

        Assert.Equal([PolicyKind.Latency, PolicyKind.ResponseTime], settings.Client.Triggers);
        Assert.Equal(DestinationChoice.BestKnown, settings.Client.DestinationChoice);
        Assert.Equal(TimeSpan.FromMilliseconds(250), settings.Client.Latency.FixedBound);
        Assert.Equal(LoadSource.BytesPerSecond, settings.Server.LoadSource);
        Assert.True(settings.Server.Pull);
    }

    [Fact]
    public void Empty_trigger_list_must_turn_client_triggering_off()
    {
        Assert.Empty(Client("mtcp.policies.client.triggers = []").Triggers);
    }

    [Theory]
    [InlineData("mtcp.policies.client.throughput.alpha = 0", "mtcp.policies.client.throughput.alpha must be greater than 0 and at most 1, got 0")]
    [InlineData("mtcp.policies.client.throughput.trigger-ratio = 1.5", "mtcp.policies.client.throughput.trigger-ratio must be greater than 0 and at most 1, got 1.5")]
    [InlineData("mtcp.policies.client.throughput.alpha = fast", "mtcp.policies.client.throughput.alpha must be a number, got fast")]
    [InlineData("mtcp.policies.client.throughput.min-observation-window = -1s", "mtcp.policies.client.throughput.min-observation-window must not be negative, got -1s")]
    [InlineData("mtcp.policies.client.destination-choice = random", "mtcp.policies.client.destination-choice must be one of round-robin, best-known, got random")]
    [InlineData("mtcp.policies.client.triggers = [throughput, luck]", "mtcp.policies.client.triggers must list only throughput, latency, response-time, got luck")]
    [InlineData("mtcp.policies.client.triggers = latency", "mtcp.policies.client.triggers must be a list such as [throughput], got latency")]
    [InlineData("mtcp.policies.client.throughput.consecutive-samples = 0", "mtcp.policies.client.throughput.consecutive-samples must be an integer from 1 to 2147483647, got 0")]
    [InlineData("mtcp.policies.client.latency.consecutive-segments = 0", "mtcp.policies.client.latency.consecutive-segments must be an integer from 1 to 2147483647, got 0")]
    [InlineData("mtcp.policies.client.guard.migrations-per-second = 0", "mtcp.policies.client.guard.migrations-per-second must be greater than 0, got 0")]
    [InlineData("mtcp.policies.server.push = maybe", "mtcp.policies.server.push must be on or off, got maybe")]
    [InlineData("mtcp.policies.server.peer-report-expiry = 0s", "mtcp.policies.server.peer-report-expiry must be positive, got 0s")]
    [InlineData("mtcp.policies.server.load-source = gpu", "mtcp.policies.server.load-source must be one of connections, bytes-per-second, application, cpu, got gpu")]
    public void Invalid_value_must_fail_naming_the_key_and_the_value(string overrides, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => Settings(overrides));

        Assert.Equal(expected, error.Message);
    }

    public static TheoryData<string> ReferenceKeys()
    {
        var keys = new TheoryData<string>();
        AddLeaves(MtcpConfig.Reference.GetConfig(PolicySettings.Root).Root.GetObject(), PolicySettings.Root, keys);
        return keys;

        static void AddLeaves(HoconObject node, string prefix, TheoryData<string> keys)
        {
            foreach (var (name, value) in node.Items)
            {
                if (value.IsObject())
                {
                    AddLeaves(value.GetObject(), $"{prefix}.{name}", keys);
                }
                else
                {
                    keys.Add($"{prefix}.{name}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(ReferenceKeys))]
    public void Every_reference_key_must_be_read_and_validated(string path)
    {
        var error = Assert.Throws<ConfigurationException>(() => Settings($"{path} = \"not a valid value\""));

        Assert.StartsWith(path, error.Message);
    }

    [Fact]
    public void Reference_section_must_hold_every_key_the_settings_read()
    {
        // 22 client keys (2 + throughput 6 + latency 4 + response-time 6 + guard 4) and 16 server keys
        // (9 + guard 4 + drain 3): the walk above reaches every one of them.
        Assert.Equal(38, ReferenceKeys().Count);
    }

    [Fact]
    public void Triggers_that_could_never_fire_must_be_refused()
    {
        var latency = Assert.Throws<ConfigurationException>(() => Settings("mtcp.policies.client.latency.srtt-multiplier = 0"));
        var responseTime = Assert.Throws<ConfigurationException>(() => Settings("mtcp.policies.client.response-time.baseline-multiplier = 1"));

        Assert.Contains("could never fire", latency.Message);
        Assert.Contains("baseline-multiplier must be 0 (off) or greater than 1", responseTime.Message);
    }

    [Fact]
    public void Missing_key_must_be_named()
    {
        var error = Assert.Throws<ConfigurationException>(() => PolicySettings.Create(ConfigurationFactory.ParseString("mtcp.policies.client.triggers = []")));

        Assert.StartsWith("mtcp.policies.client.destination-choice is missing", error.Message);
    }
}

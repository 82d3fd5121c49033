using System.Net;
using System.Text.Json;
using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// A node alone in its service (buddy replication on, the default, but no other member serves the port) cannot keep
/// its connections anywhere else: a crash of it resets them. It says so in its log and its metrics, and the agent's
/// <c>status</c> shows the relay unreplicated, from what the server told the client: no alternate serves its port.
/// </summary>
[Trait("Category", "Failover")]
[Collection(ProcessCollection.Name)]
public sealed class UnreplicatedTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_connection_to_a_node_alone_in_its_service_must_show_unreplicated_in_the_node_s_log_and_metrics_and_the_agent_s_status()
    {
        var metrics = new IPEndPoint(IPAddress.Loopback, ListenPorts.PickUnused(IPAddress.Loopback));
        var server = await _testbed.StartServerAsync("server", extraConfig: $"{ProcessTestbed.MigrationConfig}\nmtcp.hosts.server.metrics.prometheus-endpoint = \"{metrics}\"");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)], $"{ProcessTestbed.MigrationConfig}\nmtcp.agent.policy = off");
        using var client = new RespClient();
        await client.ConnectAsync(agent.Listen);
        Assert.Equal("+PONG", await client.CommandAsync("PING"));
        var relay = await agent.OpenRelayAsync(Bound);

        await server.Process.WaitForLineAsync("no other member serves port(s)", Bound);
        var scrape = await PrometheusScrape.GetAsync(metrics, Bound);
        Assert.True(scrape.Sum("mtcp_replication_unreplicated") == 1, scrape.Text);

        using (var status = JsonDocument.Parse(await agent.AskAsync("status", Bound)))
        {
            var open = Assert.Single(status.RootElement.GetProperty("connections").EnumerateArray());
            Assert.Equal(0, open.GetProperty("alternates").GetInt32());
        }

        var (exitCode, view) = await _testbed.RunAgentAsync("status", Bound, "--control", agent.Control.ToString(), "status");
        Assert.Equal(0, exitCode);
        Assert.Contains(view.Lines, line => line == $"relay {relay}: unreplicated (no other server of port {ProcessTestbed.RequestPort}): dies with its server");
        Assert.All(view.Lines, line => Assert.True(line.Length <= 80, $"{line.Length} columns: {line}"));
    }

    public void Dispose() => _testbed.Dispose();
}

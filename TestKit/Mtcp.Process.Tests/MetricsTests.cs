using System.Net;
using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The hosts' Prometheus endpoints (docs/metrics.md): a download through the agent that the operator migrates once,
/// then a scrape of both nodes and of the agent over HTTP.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class MetricsTests(ITestOutputHelper output) : IDisposable
{
    private const int FileBytes = 20 * 1000 * 1000;
    private static readonly string Paced = "\n" + ProcessTestbed.PacedFileServer("8MiB");
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Scrapes_of_the_nodes_and_the_agent_must_count_a_download_s_migration_and_its_relay()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, seed: 15_004);
        var firstMetrics = MetricsEndPoint();
        var secondMetrics = MetricsEndPoint();
        var agentMetrics = MetricsEndPoint();
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + ServerEndpointConfig(firstMetrics) + Paced);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + ServerEndpointConfig(secondMetrics) + Paced);
        await first.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        await second.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        var agent = await _testbed.StartAgentAsync(
            "agent",
            [first.Service(ProcessTestbed.FilePort), second.Service(ProcessTestbed.FilePort)],
            $"{ProcessTestbed.MigrationConfig}\nmtcp.agent.policy = off\nmtcp.agent.metrics.prometheus-endpoint = \"{agentMetrics}\"");
        Assert.Contains(agent.Process.Lines, line => line.Contains($"metrics: Prometheus scrape endpoint on http://{agentMetrics}/metrics", StringComparison.Ordinal));
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");

        // Paced, so that the download is still running when the operator migrates it.
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "10M", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        var relay = await agent.OpenRelayAsync(Bound);
        var migrate = await agent.AskAsync($"migrate {relay} *", Bound);
        var (curlExit, curlOutput) = await curl;

        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.Contains("\"completed\":true", migrate, StringComparison.Ordinal);

        // The client counts the migration and its relay's bytes; the origin counts the connection that left, the
        // destination the state it received and the application that resumed from it.
        var agentScrape = await ScrapeAsync(agentMetrics);
        Assert.True(agentScrape.Sum("mtcp_migration_completed_total") == 1, agentScrape.Text);
        Assert.True(agentScrape.Sum("mtcp_migration_duration_seconds_count") == 1, agentScrape.Text);
        Assert.True(agentScrape.Sum("mtcp_agent_relay_migrations_total", "cause=\"operator\"", "outcome=\"completed\"") == 1, agentScrape.Text);
        Assert.True(agentScrape.Sum("mtcp_agent_relay_io_bytes_total", "direction=\"receive\"") >= FileBytes, agentScrape.Text);
        Assert.True(agentScrape.Sum("mtcp_agent_relay_io_bytes_total", "direction=\"transmit\"") > 0, agentScrape.Text);
        Assert.True(agentScrape.Sum("mtcp_agent_relay_accepted_total") == 1, agentScrape.Text);
        Assert.True(agentScrape.Has("mtcp_agent_relay_active"), agentScrape.Text);

        var origin = await ScrapeAsync(firstMetrics);
        Assert.True(origin.Sum("mtcp_migration_migrated_away_total") == 1, origin.Text);
        Assert.True(origin.Sum("mtcp_server_connection_accepted_total", "application=\"file\"") == 1, origin.Text);
        Assert.True(origin.Sum("mtcp_server_io_bytes_total", "direction=\"transmit\"") > 0, origin.Text);

        var destination = await ScrapeAsync(secondMetrics);
        Assert.True(destination.Sum("mtcp_migration_state_request_duration_seconds_count") == 1, destination.Text);
        Assert.True(destination.Sum("mtcp_migration_state_size_bytes_count") == 1, destination.Text);
        Assert.True(destination.Sum("mtcp_server_migration_resumed_total", "application=\"file\"") == 1, destination.Text);
        Assert.True(
            origin.Sum("mtcp_server_io_bytes_total", "direction=\"transmit\"") + destination.Sum("mtcp_server_io_bytes_total", "direction=\"transmit\"") >= FileBytes,
            origin.Text + destination.Text);
    }

    public void Dispose() => _testbed.Dispose();

    private static IPEndPoint MetricsEndPoint() => new(IPAddress.Loopback, ListenPorts.PickUnused(IPAddress.Loopback));

    private static string ServerEndpointConfig(IPEndPoint metrics) => $"\nmtcp.hosts.server.metrics.prometheus-endpoint = \"{metrics}\"";

    private async Task<PrometheusScrape> ScrapeAsync(IPEndPoint endPoint)
    {
        var scrape = await PrometheusScrape.GetAsync(endPoint, Bound);
        output.WriteLine($"scrape of {endPoint}: {scrape.Text.Split('\n').Length} lines");
        return scrape;
    }
}

using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The agent's throughput policy (thesis 5.3.2, on by default) tells a slow reader from a slow server: a curl that reads
/// at a limited rate blocks the relay's writes to it, the MTCP window closes and the service's rate falls, which is not
/// the service's doing, so the connection stays; a server that degrades on its own is still left.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class SlowReaderTests(ITestOutputHelper output) : IDisposable
{
    private const int FileBytes = 16 * 1000 * 1000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Rate_limited_curl_through_the_agent_must_not_be_migrated_by_the_policy()
    {
        var (expected, agent) = await StartAsync(degradingFirst: false);

        var (relay, elapsed) = await DownloadAsync(agent, "--limit-rate", "1M");

        var policyMigrations = relay.GetProperty("migrations").EnumerateArray().Count(migration => migration.GetProperty("cause").GetString() == "policy");
        output.WriteLine($"curl --limit-rate 1M: {FileBytes} bytes in {elapsed.TotalSeconds:0.0} s, {policyMigrations} policy migrations");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(DownloadPath));
        Assert.True(elapsed > TimeSpan.FromSeconds(5), $"the download took {elapsed.TotalSeconds:0.0} s: the rate limit did not hold it back");
        Assert.Equal(0, policyMigrations);
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("the client policy migrates", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Degrading_server_must_still_be_left_by_the_policy()
    {
        var (expected, agent) = await StartAsync(degradingFirst: true);

        var (relay, elapsed) = await DownloadAsync(agent);

        var policyMigrations = relay.GetProperty("migrations").EnumerateArray()
            .Where(migration => migration.GetProperty("cause").GetString() == "policy" && migration.GetProperty("completed").GetBoolean())
            .ToList();
        output.WriteLine($"curl from a degrading server: {FileBytes} bytes in {elapsed.TotalSeconds:0.0} s, {policyMigrations.Count} policy migrations");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(DownloadPath));
        Assert.NotEmpty(policyMigrations);
        Assert.StartsWith("ThroughputDrop", policyMigrations[0].GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    private string DownloadPath => Path.Combine(_testbed.Directory.FullName, "downloaded.bin");

    /// <summary>Two file servers in one cluster (the first degrading when asked) and an agent with its default policy.</summary>
    private async Task<(string Expected, AgentHandle Agent)> StartAsync(bool degradingFirst)
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, seed: 2);

        // As the demo's degrading node: 12 MiB/s for 4 MiB of each visit, then each 64 KiB chunk slower, down to 1/20.
        var degrading = degradingFirst
            ? "\nmtcp.hosts.server.file.pace { best-rate = 12MiB, degrade-after = 4MiB, slowdown-per-chunk = 0.05, max-slowdown = 20 }"
            : string.Empty;
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + degrading);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig);
        foreach (var server in new[] { first, second })
        {
            await server.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort), second.Service(ProcessTestbed.FilePort)]);
        return (expected, agent);
    }

    /// <summary>curl through the agent; the agent's record of the closed relay and the download's duration.</summary>
    private async Task<(JsonElement Relay, TimeSpan Elapsed)> DownloadAsync(AgentHandle agent, params string[] curlOptions)
    {
        var started = Stopwatch.StartNew();
        var (exitCode, curlOutput) = await Curl.RunAsync(["-sS", "--max-time", "120", .. curlOptions, "-o", DownloadPath, $"http://{agent.Listen}/big.bin"]);
        var elapsed = started.Elapsed;
        Assert.True(exitCode == 0, $"curl exited with {exitCode}: {curlOutput}");
        return (await agent.ClosedRelayAsync(Bound), elapsed);
    }

    public void Dispose() => _testbed.Dispose();
}

using System.Diagnostics;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// Client-stored state (<c>mtcp.migration.replication = client</c>) with real processes: the node serving a curl
/// download through the agent seals the connection's state for the agent at every change; SIGKILL of that node
/// (no drain, no FIN); the agent's failover presents the state it holds to the other node, which resumes from it. No
/// node holds a replica of another's connections.
/// </summary>
[Trait("Category", "Failover")]
[Collection(ProcessCollection.Name)]
public sealed class ClientStoredStateCrashTests(ITestOutputHelper output) : IDisposable
{
    private const string ClientStoredState = "mtcp.migration.replication = client";

    // As in ServerCrashTests: at 2 MiB/s the 16 MiB transfer surely runs at the kill, 1 s after it started.
    private const string PacedFiles = "mtcp.hosts.server.file.pace { best-rate = 2MiB, degrade-after = 1GiB }";
    private const int DownloadBytes = 16 << 20;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_download_whose_server_was_killed_midway_must_complete_intact_from_the_state_the_agent_holds()
    {
        var expected = _testbed.WriteRandomFile("client-state.bin", DownloadBytes, seed: 12);
        var serverConfig = ProcessTestbed.MigrationConfig + "\n" + PacedFiles + "\n" + ClientStoredState;
        var server1 = await _testbed.StartServerAsync("server1", extraConfig: serverConfig);
        var server2 = await _testbed.StartServerAsync("server2", server1, serverConfig);
        foreach (var node in new[] { server1, server2 })
        {
            await node.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
            await node.Process.WaitForLineAsync("replication: client-stored state", Bound);
        }

        var agent = await _testbed.StartAgentAsync("agent", [server1.Service(ProcessTestbed.FilePort)], ProcessTestbed.MigrationConfig);
        var downloaded = Path.Combine(_testbed.Directory.FullName, "client-state-downloaded.bin");
        var started = Stopwatch.GetTimestamp();
        var curl = Curl.RunAsync("-sS", "--max-time", "50", "-o", downloaded, "-w", "%{http_code} %{size_download}", $"http://{agent.Listen}/client-state.bin");
        await agent.Process.WaitForLineAsync("relay 1:", Bound);
        await Task.Delay(1000);

        server1.Process.Kill();
        var killed = Stopwatch.GetTimestamp();
        var (exitCode, curlOutput) = await curl;
        var doneAfterKill = Stopwatch.GetElapsedTime(killed);

        Assert.True(exitCode == 0, $"curl exited with {exitCode}: {curlOutput}");
        Assert.Equal($"200 {DownloadBytes}", curlOutput.Trim());
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("relay 1", StringComparison.Ordinal) && line.Contains("reset", StringComparison.Ordinal));
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("without the held client-stored state", StringComparison.Ordinal));

        // No buddy took it over: the other node resumed it from the state the agent presented.
        Assert.DoesNotContain(server2.Process.Lines, line => line.Contains("took over", StringComparison.Ordinal));
        Assert.DoesNotContain(server2.Process.Lines, line => line.Contains("client-state-refused", StringComparison.Ordinal));
        await agent.Process.WaitForLineAsync($"server {server1.Service(ProcessTestbed.FilePort)} fell silent", TimeSpan.FromSeconds(5));
        output.WriteLine($"curl's {DownloadBytes} bytes at 2 MiB/s: SHA-256 verified, done {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s after it started and {doneAfterKill.TotalSeconds:0.0} s after the kill of the serving node");
    }

    public void Dispose() => _testbed.Dispose();
}

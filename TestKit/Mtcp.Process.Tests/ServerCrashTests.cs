using System.Diagnostics;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// A node killed under a live relay (SIGKILL: no drain, no FIN). With buddy replication (the default) the other node
/// holds the connection's state and takes it over: the download completes intact. Without replicated state no other
/// node can take the connection over, so the guarantee there is the bound: the agent notices the silence, tries the
/// alternates, and resets its client within <c>mtcp.migration.failover</c>'s time, long before any idle timeout; so
/// it is when the serving node and its buddy die together.
/// </summary>
[Trait("Category", "Failover")]
[Collection(ProcessCollection.Name)]
public sealed class ServerCrashTests(ITestOutputHelper output) : IDisposable
{
    private const string SlowStream = """
        mtcp.hosts.server.stream { enabled = on, stream-length = 64MiB, degrade-after-chunks = 0, delay-step = 20ms, max-delay = 20ms }
        """;

    private const string Unreplicated = "mtcp.migration.replication = off";

    // The file server sends at 2 MiB/s, so the 16 MiB transfer surely runs at the kill (1 s after it started) whatever
    // the machine's speed; the agent and curl cannot have buffered it all.
    private const string PacedFiles = "mtcp.hosts.server.file.pace { best-rate = 2MiB, degrade-after = 1GiB }";
    private const int DownloadBytes = 16 << 20;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public Task A_download_whose_server_was_killed_midway_must_complete_intact_on_its_buddy() => DownloadSurvivesTheCrashAsync("");

    /// <summary>The same with the replica's updates and acks on the direct replication channel (docs/failover.md).</summary>
    [Fact]
    public async Task A_download_replicated_over_the_direct_channel_must_complete_intact_on_its_buddy()
    {
        var server1 = await DownloadSurvivesTheCrashAsync("mtcp.migration.buddy-channel.transport = direct");

        Assert.Contains(server1.Process.Lines, line => line.Contains("replication channel to ", StringComparison.Ordinal) && line.Contains(" is open", StringComparison.Ordinal));
        Assert.DoesNotContain(server1.Process.Lines, line => line.Contains("go over the control connection", StringComparison.Ordinal));
        Assert.DoesNotContain(server1.Process.Lines, line => line.Contains("replication-channel-refused", StringComparison.Ordinal));
    }

    /// <returns>the node that served the download and was killed.</returns>
    private async Task<ServerHandle> DownloadSurvivesTheCrashAsync(string replicationConfig)
    {
        var expected = _testbed.WriteRandomFile("crash.bin", DownloadBytes, seed: 11);
        var server1 = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + PacedFiles + "\n" + replicationConfig);
        var server2 = await _testbed.StartServerAsync("server2", server1, ProcessTestbed.MigrationConfig + "\n" + PacedFiles + "\n" + replicationConfig);
        foreach (var node in new[] { server1, server2 })
        {
            await node.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        var agent = await _testbed.StartAgentAsync("agent", [server1.Service(ProcessTestbed.FilePort)], ProcessTestbed.MigrationConfig);
        var downloaded = Path.Combine(_testbed.Directory.FullName, "crash-downloaded.bin");
        var started = Stopwatch.GetTimestamp();
        var curl = Curl.RunAsync("-sS", "--max-time", "50", "-o", downloaded, "-w", "%{http_code} %{size_download}", $"http://{agent.Listen}/crash.bin");
        await agent.Process.WaitForLineAsync("relay 1:", Bound);
        await Task.Delay(1000);

        server1.Process.Kill();
        var killed = Stopwatch.GetTimestamp();
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("relay 1", StringComparison.Ordinal) && line.Contains("closed", StringComparison.Ordinal));
        var (exitCode, curlOutput) = await curl;
        var doneAfterKill = Stopwatch.GetElapsedTime(killed);

        Assert.True(exitCode == 0, $"curl exited with {exitCode}: {curlOutput}");
        Assert.Equal($"200 {DownloadBytes}", curlOutput.Trim());
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        await server2.Process.WaitForLineAsync("took over", TimeSpan.FromSeconds(5));

        // The buddy names the connection as the agent and the crashed node did: by its first Cid.
        var opened = Assert.Single(agent.Process.Lines, line => line.Contains("relay 1: ", StringComparison.Ordinal) && line.Contains(" over MTCP from ", StringComparison.Ordinal));
        var cid = opened[(opened.IndexOf("(cid ", StringComparison.Ordinal) + 5)..opened.LastIndexOf(')')];
        Assert.Contains(server2.Process.Lines, line => line.Contains($"took over cid {cid} ", StringComparison.Ordinal));
        Assert.Contains(server2.Process.Lines, line => line.Contains($"migration in: cid {cid}, {server1.Service(ProcessTestbed.FilePort)} -> {server2.Service(ProcessTestbed.FilePort)}: ", StringComparison.Ordinal));

        // Two nodes are an even split for the split-brain resolver, which would down the survivor if its address is
        // not the lowest; the survivor instead found the crashed node's control port refusing and downed it.
        await server2.Process.WaitForLineAsync("refuses connections: its process is gone", TimeSpan.FromSeconds(5));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(server2.Process.HasExited, "the surviving node exited after the crash of its peer");
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("relay 1", StringComparison.Ordinal) && line.Contains("reset", StringComparison.Ordinal));
        output.WriteLine($"curl's {DownloadBytes} bytes at 2 MiB/s: SHA-256 verified, done {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s after it started and {doneAfterKill.TotalSeconds:0.0} s after the kill of the serving node");
        return server1;
    }

    [Fact]
    public Task A_relay_whose_unreplicated_server_was_killed_must_be_reset_within_the_failover_bound_after_trying_the_alternates() =>
        ResetWithinTheBoundAsync(Unreplicated, killBuddyToo: false);

    /// <summary>
    /// Two faults at once: the serving node and its buddy (with two nodes, the other one) die together. Nobody holds the
    /// connection's state, so the guarantee is the bound: the agent resets its client within the failover's time and
    /// says why in its log.
    /// </summary>
    [Fact]
    public Task A_relay_whose_server_and_buddy_were_killed_together_must_be_reset_within_the_failover_bound_with_a_log_line() =>
        ResetWithinTheBoundAsync(extraConfig: "", killBuddyToo: true);

    public void Dispose() => _testbed.Dispose();

    private async Task ResetWithinTheBoundAsync(string extraConfig, bool killBuddyToo)
    {
        var server1 = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + SlowStream + "\n" + extraConfig);
        var server2 = await _testbed.StartServerAsync("server2", server1, ProcessTestbed.MigrationConfig + "\n" + SlowStream + "\n" + extraConfig);
        foreach (var node in new[] { server1, server2 })
        {
            await node.Process.WaitForLineAsync("cluster view: 6 service endpoints", Bound);
        }

        // The idle timeout is far away: only failover can end the relay in time.
        var agent = await _testbed.StartAgentAsync("agent", [server1.Service(ProcessTestbed.StreamPort)], ProcessTestbed.MigrationConfig + "\nmtcp.agent.serve.idle-timeout = 5m");
        using var client = new TcpClient();
        await client.ConnectAsync(agent.Listen);
        var stream = client.GetStream();
        await stream.WriteAsync("STREAM\n"u8.ToArray());
        var buffer = new byte[4096];
        using (var first = new CancellationTokenSource(Bound))
        {
            Assert.True(await stream.ReadAsync(buffer, first.Token) > 0);
        }

        if (killBuddyToo)
        {
            HostProcess.KillTogether(server1.Process, server2.Process);
        }
        else
        {
            server1.Process.Kill();
        }

        var killed = Stopwatch.GetTimestamp();
        using var cancellation = new CancellationTokenSource(Bound);
        var failure = await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            while (await stream.ReadAsync(buffer, cancellation.Token) > 0)
            {
            }
        });
        var resetAfter = Stopwatch.GetElapsedTime(killed);

        output.WriteLine($"the client saw {failure.Message} {resetAfter.TotalSeconds:0.0} s after the kill");
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(failure.InnerException).SocketErrorCode);

        // Defaults: 2 s quiet, 3 probes at most 1 s apart, then the one alternate: its special SYN cannot be answered
        // (the origin is gone, and so is the buddy when it was killed too), so the failover ends when its 1 s runs
        // out (about 4-5 s in all; 10 s at worst).
        Assert.True(resetAfter < TimeSpan.FromSeconds(12), $"reset only {resetAfter.TotalSeconds:0.0} s after the kill");
        await agent.Process.WaitForLineAsync($"server {server1.Service(ProcessTestbed.StreamPort)} fell silent", TimeSpan.FromSeconds(5));
        await agent.Process.WaitForLineAsync($"failover from silent server {server1.Service(ProcessTestbed.StreamPort)} gave up", TimeSpan.FromSeconds(5));

        // The attempts were the client's own failover, not a server's MIGRATE_TRIGGER: the log says so.
        Assert.Contains(agent.Process.Lines, line => line.Contains($"(failover: {server1.Service(ProcessTestbed.StreamPort)} fell silent; the client moved on its own) failed", StringComparison.Ordinal));
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("MIGRATE_TRIGGER from", StringComparison.Ordinal));
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("mtcp.agent.serve.idle-timeout", StringComparison.Ordinal));
    }
}

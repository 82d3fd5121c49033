using System.Diagnostics;
using System.Text.Json;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// Migration across real server node processes: the demo end to end, curl through the agent while the operator
/// migrates its connection, and a migration away from a node that was killed.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class MigrationTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20012;
    private const int FileBytes = 50 * 1000 * 1000;
    private const int Migrations = 5;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Demo_must_verify_its_scenario_end_to_end()
    {
        // Its own addresses (127.0.7.x), away from the testbed's and from 127.0.0.x that a developer's demo may use.
        var demo = _testbed.Track(HostProcess.Start("demo", ProcessTestbed.DemoDll, ["--network", "127.0.7"], output, _testbed.Directory.FullName));

        var exitCode = await demo.WaitForExitAsync(TimeSpan.FromSeconds(180));

        AssertDemoVerified(demo, exitCode);
    }

    [Fact]
    public async Task Demo_with_ipv6_must_verify_its_scenario_over_IPv6_and_remove_its_addresses()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException($"The demo over IPv6 adds addresses to the loopback interface and {NetnsPrerequisites.RootRequiredMessage}.");
        }

        // A /64 of its own, away from the demo's default fd00:6d74:6370::/64 that a developer's demo may use.
        const string Network = "fd00:6d74:6370:7::";
        var demo = _testbed.Track(HostProcess.Start("demo", ProcessTestbed.DemoDll, ["--ipv6", "--network", Network], output, _testbed.Directory.FullName));

        var exitCode = await demo.WaitForExitAsync(TimeSpan.FromSeconds(180));

        AssertDemoVerified(demo, exitCode);
        // Every node and agent ran on an address of its /64, in raw next header 253 (the test runs as root): the scenario's
        // three nodes and agent, and the rate comparison's node and agent; every hop of the timeline named IPv6 endpoints.
        Assert.Equal(6, demo.Lines.Count(line => line.Contains($"transport: raw IPv6 next header 253 at {Network}", StringComparison.Ordinal)));
        var hops = demo.Lines.Where(line => line.StartsWith("    migration ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(hops);
        Assert.All(hops, line => Assert.Contains($": [{Network}", line, StringComparison.Ordinal));
        // The addresses it added to the loopback interface for the run are gone.
        var (_, addresses, _) = await CommandLineTool.RunAsync("ip", "iproute2", Bound, null, "-6", "addr", "show", "dev", "lo");
        Assert.DoesNotContain(Network, System.Text.Encoding.ASCII.GetString(addresses), StringComparison.Ordinal);
    }

    /// <summary>What the demo's scenario must show whatever its address family: the checks the README promises.</summary>
    private static void AssertDemoVerified(HostProcess demo, int exitCode)
    {
        Assert.True(exitCode == 0, $"the demo exited with {exitCode}:\n{demo.Output}");
        Assert.Contains(demo.Lines, line => line.StartsWith("SHA-256 verified", StringComparison.Ordinal));
        // The stopped node leaves every live node's view (the crash may have shrunk it further by then: a crashed node is
        // downed within a second).
        Assert.Contains(demo.Lines, line => line.Contains(" follows: cluster view: ", StringComparison.Ordinal));
        var timeline = demo.Lines.Where(line => line.Contains("    migration ", StringComparison.Ordinal) && line.Contains("client wait", StringComparison.Ordinal)).ToList();
        // The six planned migrations, and one more when the connection had to leave a node whose buddy was draining
        // before the crash (the demo says so on a "before the crash" line).
        var moveBeforeCrash = demo.Lines.Any(line => line.Contains("before the crash: relay ", StringComparison.Ordinal)) ? 1 : 0;
        Assert.Equal(6 + moveBeforeCrash, timeline.Count(line => line.Contains(" by operator (", StringComparison.Ordinal)));

        // The crash: the buddy took the connection over from its replica, and the file still arrived intact.
        // Whichever came first: the buddy's MIGRATE_TRIGGER, or the client's own failover after silence.
        Assert.Contains(timeline, line => (line.Contains(" by server (MIGRATE_TRIGGER", StringComparison.Ordinal) || line.Contains(" by failover (", StringComparison.Ordinal))
            && line.Contains("state from its replica", StringComparison.Ordinal));

        // The degrading node's throughput falls, and the agent's throughput policy (thesis 5.3.2) leaves it on its own.
        Assert.Contains(timeline, line => line.Contains(" by policy (ThroughputDrop: smoothed throughput", StringComparison.Ordinal));

        // The nodes' load-balancing policy (thesis 6.2.3) pushed at least one companion download off the loaded node, and
        // the loaded node's log names the move by the connection's first Cid, as the agent's status does.
        var pushed = demo.Lines.Where(line => line.StartsWith("  relay ", StringComparison.Ordinal) && line.Contains(" by server (MIGRATE_TRIGGER from ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(pushed);
        var cid = pushed[0][(pushed[0].IndexOf("(cid ", StringComparison.Ordinal) + 5)..pushed[0].IndexOf(')', StringComparison.Ordinal)];
        Assert.Contains(demo.Lines, line => line.Contains($"policy: cid {cid}, ", StringComparison.Ordinal) && line.Contains("asked the client", StringComparison.Ordinal));
        Assert.Contains(demo.Lines, line => line.StartsWith("  ratio MTCP / kernel TCP: ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_migrate_without_a_destination_must_pick_an_endpoint_of_the_same_service()
    {
        WriteRandomFile("big.bin");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("5MiB"));
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("5MiB"));
        await AwaitClusterAsync([first, second]);

        // The pool lists the second node's request server before its file server: the next endpoint of the pool is not the
        // next endpoint of the service. The servers' TCP_MIGRATE list, too, announces both applications of every node.
        var agent = await _testbed.StartAgentAsync(
            "agent",
            [first.Service(ProcessTestbed.FilePort), second.Service(ProcessTestbed.RequestPort), second.Service(ProcessTestbed.FilePort)],
            ProcessTestbed.MigrationConfig + "\nmtcp.agent.policy = off");
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "5M", "-o", Path.Combine(_testbed.Directory.FullName, "downloaded.bin"), $"http://{agent.Listen}/big.bin");
        await agent.Process.WaitForLineAsync("relay 1:", Bound);

        var (exitCode, migrate) = await _testbed.RunAgentAsync("migrate", Bound, "--control", agent.Control.ToString(), "migrate");
        var (curlExit, curlOutput) = await curl;

        Assert.True(exitCode == 0, $"migrate exited with {exitCode}:\n{migrate.Output}");
        Assert.Contains(migrate.Lines, line => line.Contains($"-> {second.Service(ProcessTestbed.FilePort)} completed", StringComparison.Ordinal));
        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
        Assert.Contains(agent.Process.Lines, line => line.Contains("(operator: migrate (next endpoint of the service))", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_migrate_without_a_destination_must_pick_a_node_the_server_announced_not_one_only_the_pool_lists()
    {
        WriteRandomFile("big.bin");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("5MiB"));
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("5MiB"));
        await AwaitClusterAsync([first, second]);

        // The pool names a node that is gone (nothing runs at its address) and not the one that joined: the server's
        // TCP_MIGRATE list, made from the cluster's view, names the live one.
        var gone = $"{ProcessTestbed.NextAddress()}:{ProcessTestbed.FilePort}";
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort), gone], ProcessTestbed.MigrationConfig + "\nmtcp.agent.policy = off");
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "5M", "-o", Path.Combine(_testbed.Directory.FullName, "downloaded.bin"), $"http://{agent.Listen}/big.bin");
        await agent.Process.WaitForLineAsync("relay 1:", Bound);

        var (exitCode, migrate) = await _testbed.RunAgentAsync("migrate", Bound, "--control", agent.Control.ToString(), "migrate");
        var (curlExit, curlOutput) = await curl;

        Assert.True(exitCode == 0, $"migrate exited with {exitCode}:\n{migrate.Output}");
        Assert.Contains(migrate.Lines, line => line.Contains($"-> {second.Service(ProcessTestbed.FilePort)} completed", StringComparison.Ordinal));
        Assert.DoesNotContain(migrate.Lines, line => line.Contains(gone, StringComparison.Ordinal));
        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
    }

    [Fact]
    public async Task Curl_through_the_agent_must_download_50MB_intact_across_at_least_5_migrations()
    {
        var expected = WriteRandomFile("big.bin");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("5MiB"));
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("5MiB"));
        var third = await _testbed.StartServerAsync("server3", first, ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("5MiB"));
        ServerHandle[] servers = [first, second, third];
        await AwaitClusterAsync(servers);
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort)], ProcessTestbed.MigrationConfig);
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");

        // Paced file servers keep the download longer than the migrations take (about 10 s: at full speed it could end
        // first, and curl's --limit-rate alone does not slow the sender); curl's limit still makes it migrate with the
        // agent's receive window closed at times, as a slow reader would.
        var curl = Curl.RunAsync("-sS", "--max-time", "120", "--limit-rate", "20M", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        var completed = 0;
        var failures = new List<string>();
        while (!curl.IsCompleted && completed + failures.Count < Migrations)
        {
            using var progress = JsonDocument.Parse(await agent.AskAsync("status", Bound));
            if (progress.RootElement.GetProperty("connections").EnumerateArray().FirstOrDefault() is not { ValueKind: JsonValueKind.Object } open
                || open.GetProperty("bytesFromService").GetInt64() < (completed + failures.Count + 1L) * FileBytes / (Migrations + 1))
            {
                await Task.Delay(5);
                continue;
            }

            var destination = servers[(completed + failures.Count + 1) % servers.Length].Service(ProcessTestbed.FilePort);
            using var result = JsonDocument.Parse(await agent.AskAsync($"migrate {open.GetProperty("id").GetInt64()} {destination}", Bound));
            var outcome = result.RootElement.GetProperty("outcomes").EnumerateArray().Single();
            if (outcome.GetProperty("completed").GetBoolean())
            {
                completed++;
            }
            else
            {
                failures.Add($"to {destination}: {outcome.GetProperty("failureReason").GetString()}");
            }
        }

        var (curlExit, curlOutput) = await curl;
        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.True(completed >= Migrations, $"{completed} migrations completed before the download ended; failed: {string.Join("; ", failures)}");

        // The agent's record of the closed relay and the nodes' logs agree with what the operator saw.
        var (statusExit, status) = await _testbed.RunAgentAsync("status", Bound, "--control", agent.Control.ToString(), "status", "--json");
        Assert.Equal(0, statusExit);
        using var document = JsonDocument.Parse(string.Join('\n', status.Lines.Where(line => line.StartsWith('{'))));
        var relay = document.RootElement.GetProperty("recentlyClosed").EnumerateArray().Single();
        Assert.Equal(completed, relay.GetProperty("migrations").EnumerateArray().Count(migration => migration.GetProperty("completed").GetBoolean()));

        // The pool names one endpoint, so the client policy has nowhere to go: every migration is the operator's, and says so.
        Assert.All(relay.GetProperty("migrations").EnumerateArray(), migration => Assert.Equal("operator", migration.GetProperty("cause").GetString()));
        Assert.All(relay.GetProperty("migrations").EnumerateArray(), migration => Assert.StartsWith("migrate --to ", migration.GetProperty("reason").GetString(), StringComparison.Ordinal));

        // Every migration line on every node names the connection by its first Cid (the client port changes every hop),
        // with the migration's origin and destination: the destination's "migration in", the origin's "migration out",
        // the agent's "migrated", one each per completed migration and in the agent's order.
        var cid = relay.GetProperty("cid").GetString();
        Assert.False(string.IsNullOrEmpty(cid), "status names no cid for the relay");
        var hops = relay.GetProperty("migrations").EnumerateArray().Where(migration => migration.GetProperty("completed").GetBoolean())
            .Select(migration => $"cid {cid}, {migration.GetProperty("from").GetString()} -> {migration.GetProperty("to").GetString()}: ").ToList();
        var nodeLines = servers.SelectMany(server => server.Process.Lines).ToList();
        foreach (var hop in hops.CountBy(hop => hop))
        {
            Assert.Equal(hop.Value, nodeLines.Count(line => line.Contains("migration in: " + hop.Key, StringComparison.Ordinal) && line.Contains("file connection resumes", StringComparison.Ordinal)));
            Assert.Equal(hop.Value, nodeLines.Count(line => line.Contains("migration out: " + hop.Key, StringComparison.Ordinal)));
        }

        Assert.Equal(completed, servers.Sum(server => server.Process.Lines.Count(line => line.Contains("migration in: cid ", StringComparison.Ordinal))));
        Assert.Equal(completed, servers.Sum(server => server.Process.Lines.Count(line => line.Contains("migration out: cid ", StringComparison.Ordinal))));
        var agentHops = agent.Process.Lines.Where(line => line.Contains("relay 1: migrated", StringComparison.Ordinal)).ToList();
        Assert.Equal(completed, agentHops.Count);
        Assert.All(agentHops, line => Assert.Contains($"(cid {cid})", line, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_fetch_must_migrate_between_the_service_endpoints_and_report_each_migration()
    {
        var expected = WriteRandomFile("big.bin");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig);
        await AwaitClusterAsync([first, second]);
        var config = _testbed.WriteConfig("fetch.conf", ProcessTestbed.MigrationConfig);

        var (exitCode, fetch) = await _testbed.RunAgentAsync(
            "fetch", TimeSpan.FromSeconds(60), "--config", config, "fetch", "/big.bin", "-o", "fetched.bin", "--no-progress", "--migrate-every-mib", "8",
            "--service", first.Service(ProcessTestbed.FilePort), "--service", second.Service(ProcessTestbed.FilePort));

        Assert.True(exitCode == 0, $"fetch exited with {exitCode}:\n{fetch.Output}");
        Assert.Contains(fetch.Lines, line => line.StartsWith(expected, StringComparison.OrdinalIgnoreCase));
        Assert.Equal(expected, ProcessTestbed.Sha256Of(Path.Combine(_testbed.Directory.FullName, "fetched.bin")));
        var migrations = fetch.Lines.Count(line => line.Contains("INFO  Mtcp.Agent: migrated ", StringComparison.Ordinal));
        Assert.True(migrations >= 3, $"{migrations} migrations reported:\n{fetch.Output}");
        Assert.Contains(fetch.Lines, line => line.Contains($"across {migrations} migrations", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_fetch_must_leave_a_degrading_server_by_its_throughput_policy()
    {
        var expected = WriteRandomFile("big.bin");

        // Thesis 5.3.2: the first node serves each visit at 16 MiB/s for 4 MiB, then slower with every chunk.
        var degrading = await _testbed.StartServerAsync(
            "degrading",
            extraConfig: ProcessTestbed.MigrationConfig + "\nmtcp.hosts.server.file.pace { best-rate = 16MiB, degrade-after = 4MiB, slowdown-per-chunk = 0.05, max-slowdown = 20 }");
        var healthy = await _testbed.StartServerAsync("healthy", degrading, ProcessTestbed.MigrationConfig);
        await AwaitClusterAsync([degrading, healthy]);
        var config = _testbed.WriteConfig("fetch.conf", ProcessTestbed.MigrationConfig + "\nmtcp.agent.policy = throughput");

        var (exitCode, fetch) = await _testbed.RunAgentAsync(
            "fetch", TimeSpan.FromSeconds(60), "--config", config, "fetch", "/big.bin", "-o", "fetched.bin", "--no-progress",
            "--service", degrading.Service(ProcessTestbed.FilePort), "--service", healthy.Service(ProcessTestbed.FilePort));

        Assert.True(exitCode == 0, $"fetch exited with {exitCode}:\n{fetch.Output}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(Path.Combine(_testbed.Directory.FullName, "fetched.bin")));
        Assert.Contains(fetch.Lines, line => line.Contains($"migrated {degrading.Service(ProcessTestbed.FilePort)} -> {healthy.Service(ProcessTestbed.FilePort)}", StringComparison.Ordinal)
            && line.Contains("(policy: ThroughputDrop: smoothed throughput", StringComparison.Ordinal));
        Assert.DoesNotContain(fetch.Lines, line => line.Contains("(0 by the client policy)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_migrate_to_an_absent_node_must_fail_within_seconds_with_the_reason_and_the_download_go_on()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes / 5, Seed);
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("1MiB"));
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort)], "mtcp.agent.policy = off");
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "1M", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        var relay = await agent.OpenRelayAsync(Bound);

        // Nothing runs at this address: the special SYN goes unanswered.
        var absent = $"{ProcessTestbed.NextAddress()}:{ProcessTestbed.FilePort}";
        var started = Stopwatch.GetTimestamp();
        var (migrateExit, migrate) = await _testbed.RunAgentAsync(
            "migrate", Bound, "--control", agent.Control.ToString(), "migrate", "--connection", relay.ToString(System.Globalization.CultureInfo.InvariantCulture), "--to", absent);
        var answeredAfter = Stopwatch.GetElapsedTime(started);

        Assert.Equal(1, migrateExit);
        Assert.Contains(migrate.Lines, line => line.Contains("no SYN+ACK from the destination within 5 s", StringComparison.Ordinal));
        Assert.True(answeredAfter < TimeSpan.FromSeconds(10), $"migrate answered only after {answeredAfter.TotalSeconds:0.0} s");
        var (curlExit, curlOutput) = await curl;
        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
    }

    [Fact]
    public async Task Agent_must_fail_a_migration_away_from_a_killed_server_clearly_and_reset_its_client()
    {
        // Unreplicated: with a buddy (ServerCrashTests), the second node would take the connection over.
        WriteRandomFile("big.bin");
        var unreplicated = "mtcp.migration.replication = off\n" + ProcessTestbed.PacedFileServer("1MiB");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + unreplicated);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + "\n" + unreplicated);
        await AwaitClusterAsync([first, second]);
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort)], ProcessTestbed.MigrationConfig + "\nmtcp.agent.serve.idle-timeout = 3s");
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "1M", "-o", Path.Combine(_testbed.Directory.FullName, "partial.bin"), $"http://{agent.Listen}/big.bin");
        await agent.Process.WaitForLineAsync("relay 1:", Bound);
        await Task.Delay(500);

        first.Process.Kill();
        var killed = Stopwatch.GetTimestamp();
        var (migrateExit, migrate) = await _testbed.RunAgentAsync("migrate", Bound, "--control", agent.Control.ToString(), "migrate", "--to", second.Service(ProcessTestbed.FilePort));
        var (curlExit, curlOutput) = await curl;
        var curlFailedAfter = Stopwatch.GetElapsedTime(killed);

        // The state lives on the killed origin (thesis 4.2.3): the migration cannot complete, and must say so.
        Assert.Equal(1, migrateExit);
        Assert.Contains(migrate.Lines, line => line.Contains("failed", StringComparison.Ordinal));
        Assert.NotEqual(0, curlExit);
        Assert.True(curlFailedAfter < TimeSpan.FromSeconds(20), $"curl failed only {curlFailedAfter.TotalSeconds:0.0} s after the kill: {curlOutput}");
        Assert.Contains(agent.Process.Lines, line => line.Contains("relay 1", StringComparison.Ordinal) && line.Contains("reset", StringComparison.Ordinal));
    }

    public void Dispose() => _testbed.Dispose();

    /// <summary>A destination refuses a migration from an origin it has no control mapping for: wait until every node sees every other.</summary>
    private static async Task AwaitClusterAsync(ServerHandle[] servers)
    {
        // Each node announces its file and request endpoints.
        foreach (var server in servers)
        {
            await server.Process.WaitForLineAsync($"cluster view: {2 * servers.Length} service endpoints", Bound);
        }
    }

    private string WriteRandomFile(string name) => _testbed.WriteRandomFile(name, FileBytes, Seed);
}

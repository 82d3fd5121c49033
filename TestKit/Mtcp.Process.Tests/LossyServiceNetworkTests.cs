using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// Real loss on real sockets: the test-bed of thesis fig. 5.1 (<see cref="ControlNetworkTopology"/>) with the agent and
/// two server nodes as processes, and nftables dropping packets at random on the service network in every host's
/// namespace, on the way out (the sender's sendmsg fails: a local drop, which must be a loss and not an abort) and on
/// the way in (the packet silently vanishes, as on a lossy wire). Ten concurrent curl downloads through the agent are
/// each migrated at least three times while they run, for the raw and for the UDP transport, and must all arrive
/// intact: no byte lost, duplicated or reordered, no connection reset.
/// </summary>
[Trait("Category", "Netns")]
[Collection(ProcessCollection.Name)]
public sealed partial class LossyServiceNetworkTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20090;
    private const int FileBytes = 16 * 1024 * 1024;
    private const int Downloads = 10;
    private const int RequiredMigrations = 3;
    private const int MaxMigrationAttempts = 8;

    // A packet between two hosts crosses the sender's output hook and the receiver's input hook: 1% at each loses
    // 1 - 0.99^2 = 2% of the packets in each direction, half of them as failed sends and half as silent losses.
    private const int LossPercentPerHook = 1;
    private const int CurlMaxTimeSeconds = 300;

    // curl limits each download to 2 MiB/s, 20 MiB/s in all, about what the three processes reach together on two
    // cores: it spreads the downloads evenly (5 to 8 s each here), so none ends before its migrations are asked for
    // under load, and the agent reads as a slow reader would, with its receive window closed at times. Unthrottled,
    // downloads took 4 to 10 s here, and the last migration of a fast one could miss it.
    private const string RateLimit = "2M";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Theory]
    [InlineData("raw")]
    [InlineData("udp")]
    public async Task Ten_downloads_through_the_agent_must_arrive_intact_across_migrations_with_2_percent_loss_each_way(string transport)
    {
        NetnsPrerequisites.RequireRoot();
        var setup = Stopwatch.StartNew();
        var topology = Own(ControlNetworkTopology.Create());
        var hostsWithLoss = new[] { ("client", topology.Client), ("server1", topology.Server1.Namespace), ("server2", topology.Server2.Namespace) };
        var losses = hostsWithLoss.Select(host => (Host: host.Item1, Loss: Own(PacketLoss.InstallOnInterface(host.Item2, ControlNetworkTopology.ServiceInterface, LossPercentPerHook)))).ToList();
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, Seed);
        var hosts = new TopologyProcesses(_testbed, topology, output, Own);
        var server1 = await hosts.StartServerAsync("server1", topology.Server1, seed: topology.Server1, transport);
        var server2 = await hosts.StartServerAsync("server2", topology.Server2, seed: topology.Server1, transport);
        foreach (var server in new[] { server1, server2 })
        {
            await server.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        var agent = await hosts.StartAgentAsync(transport);
        setup.Stop();

        var transfer = Stopwatch.StartNew();
        var curls = Enumerable.Range(0, Downloads).Select(i => Own(topology.Client.StartBackground(
            "curl", "-sS", "--max-time", CurlMaxTimeSeconds.ToString(CultureInfo.InvariantCulture), "--limit-rate", RateLimit, "-o", DownloadPath(i),
            "-w", "%{http_code} %{size_download} %{time_total}", $"http://{TopologyProcesses.AgentListen}/big.bin"))).ToList();
        var migrations = await MigrateEveryDownloadAsync(topology, hosts, curls);
        var results = await Task.WhenAll(curls.Select(curl => curl.WaitForExitAsync(TimeSpan.FromSeconds(CurlMaxTimeSeconds + 30))));
        transfer.Stop();

        using var status = JsonDocument.Parse(await hosts.AskAgentAsync("status"));
        var closed = status.RootElement.GetProperty("recentlyClosed").EnumerateArray()
            .ToDictionary(relay => relay.GetProperty("id").GetInt64(), relay => relay.GetProperty("migrations").EnumerateArray().Count(m => m.GetProperty("completed").GetBoolean()));
        HostProcess[] processes = [agent, server1, server2];
        // Closing connections may still lose a packet or two while the reports catch up: count the drops up to now.
        var droppedOutgoing = losses.Select(host => host.Loss.DroppedOutgoing).ToArray();
        var reported = await WaitForSendDropReportsAsync(processes, droppedOutgoing);
        Report(transport, setup.Elapsed, transfer.Elapsed, results, migrations, closed, losses, reported);

        for (var i = 0; i < Downloads; i++)
        {
            Assert.True(results[i].Succeeded, $"download {i} (curl exit {results[i].ExitCode}, 56 or 18 is a reset or cut transfer): {results[i].StandardError.Trim()}");
            Assert.StartsWith($"200 {FileBytes} ", results[i].StandardOutput.Trim(), StringComparison.Ordinal);
            Assert.True(expected == ProcessTestbed.Sha256Of(DownloadPath(i)), $"download {i} arrived altered");
        }

        Assert.Equal(0, status.RootElement.GetProperty("failed").GetInt64());
        Assert.Equal(Downloads, closed.Count);
        Assert.All(closed, relay => Assert.True(
            relay.Value >= RequiredMigrations,
            $"relay {relay.Key} completed {relay.Value} migrations; attempts: {string.Join("; ", migrations.GetValueOrDefault(relay.Key)?.Outcomes ?? [])}"));
        Assert.All(losses, host => Assert.True(host.Loss.DroppedOutgoing > 0 && host.Loss.DroppedIncoming > 0, $"no packet dropped in {host.Host}: {host.Loss}"));

        // Every packet the output rules dropped was a send the host's transport counted as a loss, and nothing else failed:
        // the rule's EPERM, or, for a segment after the first of a sendmmsg, the kernel stopping the call there.
        for (var i = 0; i < processes.Length; i++)
        {
            var droppedSince = losses[i].Loss.DroppedOutgoing;
            Assert.True(
                reported[i].Total >= droppedOutgoing[i] && reported[i].Total <= droppedSince && OnlyFilteredOrStopped(reported[i]),
                $"{losses[i].Host}'s transport last reported {reported[i].Total} local send drops ({reported[i].Reasons}); nftables dropped {droppedOutgoing[i]}-{droppedSince} of its packets on the way out");
        }
    }

    // In reverse: the processes, then the loss rules and the namespaces they ran in; the scratch directory last.
    public void Dispose() => _testbed.Dispose();

    /// <summary>The operator's migrations of one download (one relay of the agent).</summary>
    private sealed class RelayMigrations
    {
        public int Completed { get; set; }

        public int Attempts { get; set; }

        public List<string> Outcomes { get; } = [];

        public Task? InFlight { get; set; }
    }

    /// <summary>
    /// Migrates every open download to the other server each time another 1/(RequiredMigrations + 1) of the file has
    /// arrived through it (so <see cref="RequiredMigrations"/> times, none near the end), all downloads concurrently,
    /// one migration in flight per download and at most <see cref="MaxMigrationAttempts"/> each, until every curl has exited.
    /// </summary>
    private async Task<Dictionary<long, RelayMigrations>> MigrateEveryDownloadAsync(ControlNetworkTopology topology, TopologyProcesses hosts, List<BackgroundCommand> curls)
    {
        var relays = new Dictionary<long, RelayMigrations>();
        while (curls.Any(curl => !curl.HasExited))
        {
            using var status = JsonDocument.Parse(await hosts.AskAgentAsync("status"));
            foreach (var open in status.RootElement.GetProperty("connections").EnumerateArray())
            {
                var id = open.GetProperty("id").GetInt64();
                if (!relays.TryGetValue(id, out var relay))
                {
                    relays[id] = relay = new RelayMigrations();
                }

                if (relay.InFlight is { IsCompleted: false }
                    || relay.Completed >= RequiredMigrations
                    || relay.Attempts >= MaxMigrationAttempts
                    || open.GetProperty("bytesFromService").GetInt64() < (relay.Completed + 1L) * FileBytes / (RequiredMigrations + 1))
                {
                    continue;
                }

                var onServer1 = open.GetProperty("service").GetString()!.StartsWith($"{topology.Server1.ServiceAddress}:", StringComparison.Ordinal);
                var destination = TopologyProcesses.FileService(onServer1 ? topology.Server2 : topology.Server1);
                relay.Attempts++;
                relay.InFlight = MigrateAsync(hosts, id, destination, relay);
            }

            await Task.Delay(50);
        }

        await Task.WhenAll(relays.Values.Select(relay => relay.InFlight ?? Task.CompletedTask));
        return relays;
    }

    private static async Task MigrateAsync(TopologyProcesses hosts, long id, string destination, RelayMigrations relay)
    {
        var asked = DateTime.Now;
        string answer;
        try
        {
            answer = await hosts.AskAgentAsync($"migrate {id} {destination}");
        }
        catch (OperationCanceledException)
        {
            relay.Outcomes.Add(string.Create(CultureInfo.InvariantCulture, $"to {destination} asked at {asked:HH:mm:ss.fff}: no answer within {Bound.TotalSeconds:0} s"));
            return;
        }

        using var result = JsonDocument.Parse(answer);
        if (result.RootElement.GetProperty("outcomes").EnumerateArray().SingleOrDefault() is not { ValueKind: JsonValueKind.Object } outcome)
        {
            // The relay closed before the request arrived: the download ended.
            relay.Outcomes.Add($"to {destination}: {result.RootElement.GetProperty("error").GetString()}");
            return;
        }

        var completed = outcome.GetProperty("completed").GetBoolean();
        relay.Completed += completed ? 1 : 0;
        relay.Outcomes.Add(completed
            ? string.Create(CultureInfo.InvariantCulture, $"to {destination} in {outcome.GetProperty("durationMs").GetDouble():0.0} ms")
            : $"to {destination} failed: {outcome.GetProperty("failureReason").GetString()}");
    }

    private void Report(
        string transport,
        TimeSpan setup,
        TimeSpan transfer,
        CommandResult[] results,
        Dictionary<long, RelayMigrations> migrations,
        Dictionary<long, int> completedByRelay,
        List<(string Host, PacketLoss Loss)> losses,
        List<(long Total, string Reasons)> reported)
    {
        var seconds = results.Select(result => result.StandardOutput.Trim().Split(' ') is [_, _, var time] ? double.Parse(time, CultureInfo.InvariantCulture) : double.NaN).Order().ToList();
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{transport}: {Downloads} x {FileBytes} bytes (curl --limit-rate {RateLimit}) at {LossPercentPerHook}% loss per hook (~{100 * (1 - Math.Pow(1 - (LossPercentPerHook / 100.0), 2)):0.0}% each way): "
            + $"set-up {setup.TotalSeconds:0.0} s, transfer {transfer.TotalSeconds:0.0} s ({Downloads * (double)FileBytes / transfer.TotalSeconds / 1e6:0.0} MB/s in all); "
            + $"download times min {seconds[0]:0.0} s, median {seconds[seconds.Count / 2]:0.0} s, max {seconds[^1]:0.0} s"));
        output.WriteLine($"{transport}: completed migrations per download (agent's record): [{string.Join(", ", completedByRelay.OrderBy(relay => relay.Key).Select(relay => relay.Value))}], "
            + $"failed attempts: {migrations.Values.Sum(relay => relay.Attempts - relay.Completed)}");
        foreach (var (id, relay) in migrations.OrderBy(relay => relay.Key))
        {
            output.WriteLine($"{transport}: relay {id}: {string.Join("; ", relay.Outcomes)}");
        }

        for (var i = 0; i < losses.Count; i++)
        {
            var (host, loss) = losses[i];
            output.WriteLine(
                $"{transport}: nftables dropped in {host}: {loss.DroppedOutgoing} outgoing, {loss.DroppedIncoming} incoming; "
                + $"its transport counted {reported[i].Total} local send drops ({reported[i].Reasons})");
        }

        output.WriteLine($"{transport}: nftables dropped {losses.Sum(host => host.Loss.DroppedOutgoing + host.Loss.DroppedIncoming)} packets in all");
    }

    /// <summary>
    /// The local send drops each process's packet actor last logged (it logs at most every 10 s), once that count
    /// reaches what the output rule of its namespace dropped, or after 25 s.
    /// </summary>
    private static async Task<List<(long Total, string Reasons)>> WaitForSendDropReportsAsync(HostProcess[] processes, long[] droppedOutgoing)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var reported = processes.Select(LastSendDropReport).ToList();
            if (deadline.Elapsed > TimeSpan.FromSeconds(25) || reported.Select((report, i) => report.Total >= droppedOutgoing[i]).All(reached => reached))
            {
                return reported;
            }

            await Task.Delay(500);
        }
    }

    private static (long Total, string Reasons) LastSendDropReport(HostProcess process) =>
        process.Lines.Select(line => SendDropLine().Match(line)).LastOrDefault(match => match.Success) is { } last
            ? (long.Parse(last.Groups["total"].Value, CultureInfo.InvariantCulture), last.Groups["reasons"].Value)
            : (0, "none reported");

    /// <summary>The reasons name only the output rule's EPERM and batches the kernel stopped at a dropped segment, and they add up to the total.</summary>
    private static bool OnlyFilteredOrStopped((long Total, string Reasons) report)
    {
        var match = DropReasons().Match(report.Reasons);
        return match.Success
            && (match.Groups["filtered"].Success ? long.Parse(match.Groups["filtered"].Value, CultureInfo.InvariantCulture) : 0)
                + (match.Groups["stopped"].Success ? long.Parse(match.Groups["stopped"].Value, CultureInfo.InvariantCulture) : 0) == report.Total;
    }

    [GeneratedRegex(@"^(filtered (?<filtered>\d+) \(EPERM\))?(, )?(stopped_batch (?<stopped>\d+) \(unknown\))?$")]
    private static partial Regex DropReasons();

    [GeneratedRegex(@"segments dropped on the way out by the local host since the last report \((?<total>\d+) since start: (?<reasons>.*)\); each is a loss")]
    private static partial Regex SendDropLine();

    private T Own<T>(T resource)
        where T : IDisposable => _testbed.Own(resource);

    private string DownloadPath(int i) => Path.Combine(_testbed.Directory.FullName, $"downloaded-{i}.bin");

}

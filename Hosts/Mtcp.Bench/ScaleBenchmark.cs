using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mtcp.Actors.Api;
using Mtcp.Hosting;

namespace Mtcp.Bench;

/// <param name="ServerConfig">HOCON appended to each server node's configuration (empty: the shipped configuration).</param>
internal sealed record ScaleOptions(int[] Sizes, TimeSpan Duration, int InFlight, int OpenConcurrency, int EchoBytes, string Network, string ServerConfig = "");

/// <summary>Resident memory in MiB of the three processes at one moment of the migration phase.</summary>
internal sealed record ScaleSample(double Seconds, double Server1MiB, double Server2MiB, double ClientMiB);

/// <summary>
/// One N of the scale benchmark. Memory per connection is the growth over the idle node before the connections
/// opened, divided by N: of the node they were opened to (server 1) and of the client process. Live memory at the start
/// and the end of the migrations: what survived each process's last gen2 collection, summed over the three (RSS and the
/// heap also count garbage the GC has not collected yet). JSON keys as issue 13 names them.
/// </summary>
internal sealed record ScaleRow(
    int Connections,
    string Transport,
    double OpenSeconds,
    int OpenFailed,
    double RssPerConnectionKiB,
    double HeapPerConnectionKiB,
    double RssPerConnectionAfterEchoKiB,
    double HeapPerConnectionAfterEchoKiB,
    double ClientRssPerConnectionKiB,
    double ClientHeapPerConnectionKiB,
    double IdleCpuPercentServer1,
    double IdleCpuPercentServer2,
    double IdleCpuPercentClient,
    double EchoSeconds,
    double EchoServerAllocatedBytesPerSegment,
    double EchoClientAllocatedBytesPerSegment,
    int Migrations,
    int MigrationsFailed,
    Dictionary<string, int> MigrationFailureReasons,
    double MigrationsPerSecond,
    double WaitP50Ms,
    double WaitP99Ms,
    double CpuMsPerMigration,
    double ServersAllocatedBytesPerMigration,
    double ClientAllocatedBytesPerMigration,
    double GcPauseShareServer1,
    double GcPauseShareServer2,
    double GcPauseShareClient,
    double RssAtMigrationStartMiB,
    double RssAtMigrationEndMiB,
    double RssGrowthDuringMigrationsMiB,
    double RssGrowthDuringMigrationsPercent,
    double LiveAtMigrationStartMiB,
    double LiveAtMigrationEndMiB,
    long BytesChecked,
    long BytesLost,
    int[] MigrationsPerSecondSeries,
    ScaleSample[] RssSeries);

/// <summary>
/// The <c>scale</c> benchmark (issue 13): two server nodes (<c>Mtcp.Server</c> processes in one Akka.Cluster, the
/// control plane on mutual TLS with certificates of a CA made per run, raw IPv4 protocol 253 as root, UDP otherwise)
/// serving the request server (RESP; it exports its state after each answer), and one client process
/// (<c>scale-client</c>) with one runtime per local address. All run the shipped configuration (MSL 30 s) but for
/// addresses, keys and the nodes' runtime report. For N in 1k, 10k and --max: the time to open N connections to node
/// 1; memory per connection idle and after --echo-bytes through each (RESP ECHO, every byte checked); idle CPU; then
/// --duration of migrations back and forth between the nodes, --in-flight at a time, started by the client (its
/// runtime's migration API): migrations/s, client wait, GC pause share, memory at the start and the end, allocation per
/// migration; last, a check of every connection's bytes (ECHO of 1 KiB each). Each process's output goes to
/// artifacts/bench/scale-logs/N-process.log.
/// </summary>
internal static class ScaleBenchmark
{
    private const ushort RequestPort = 6379;
    private const int ConnectionsPerClientAddress = 12_000;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan IdleWindow = TimeSpan.FromSeconds(5);

    public static async Task<int> RunAsync(ScaleOptions options, CancellationToken cancellationToken)
    {
        if (options.Sizes.Length == 0 || options.Sizes[0] < 1 || options.Duration <= TimeSpan.Zero || options.InFlight < 1 || options.OpenConcurrency < 1 || options.EchoBytes < 1)
        {
            await Console.Error.WriteLineAsync("--max, --sizes, --duration, --in-flight, --open-concurrency and --echo-bytes must be positive");
            return 2;
        }

        if (options.Network.Count(c => c == '.') != 2 || !IPAddress.TryParse(options.Network + ".2", out var node) || !IPAddress.IsLoopback(node))
        {
            await Console.Error.WriteLineAsync($"--network must be three octets of a loopback address, e.g. 127.0.0, not '{options.Network}'");
            return 2;
        }

        var transport = Environment.IsPrivilegedProcess ? "raw" : "udp";
        var sizes = options.Sizes;
        Console.WriteLine($"scale: N = [{string.Join(", ", sizes)}] over {transport}; {options.Duration.TotalSeconds:0} s of migrations with {options.InFlight} in flight; {options.EchoBytes} bytes echoed through each connection");
        var loadBefore = StreamBenchmark.LoadAverage();
        var rows = new List<ScaleRow>();
        string? failure = null;
        foreach (var n in sizes)
        {
            ScaleRow row;
            try
            {
                row = await MeasureAsync(n, transport, options, cancellationToken);
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
                // A process exited or stopped answering (a node the cluster downed), or the client refused a step (a
                // connection a takeover had already moved): the rows measured so far still count.
                failure = $"N {n}: {e.Message}";
                Console.WriteLine(failure);
                break;
            }

            rows.Add(row);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"N {n}: opened in {row.OpenSeconds:F1} s ({row.OpenFailed} failed); server RSS {row.RssPerConnectionKiB:F1} KiB/connection idle, {row.RssPerConnectionAfterEchoKiB:F1} after echo; heap {row.HeapPerConnectionKiB:F1} / {row.HeapPerConnectionAfterEchoKiB:F1} KiB; idle CPU {row.IdleCpuPercentServer1:F1} % / {row.IdleCpuPercentServer2:F1} % / {row.IdleCpuPercentClient:F1} %"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {row.MigrationsPerSecond:F0} migrations/s ({row.Migrations} completed, {row.MigrationsFailed} failed), wait p50 {row.WaitP50Ms:F2} ms p99 {row.WaitP99Ms:F2} ms, CPU {row.CpuMsPerMigration:F2} ms/migration, GC pause {row.GcPauseShareServer1:P1} / {row.GcPauseShareServer2:P1} / {row.GcPauseShareClient:P1}; RSS {row.RssAtMigrationStartMiB:F0} -> {row.RssAtMigrationEndMiB:F0} MiB ({row.RssGrowthDuringMigrationsPercent:F1} %), live {row.LiveAtMigrationStartMiB:F0} -> {row.LiveAtMigrationEndMiB:F0} MiB; {row.BytesLost} of {row.BytesChecked} bytes lost"));
        }

        await WriteArtifactsAsync(options, rows, $"{loadBefore} before, {StreamBenchmark.LoadAverage()} after", failure);
        return failure is null && rows.All(r => r.BytesLost == 0 && r.OpenFailed == 0) ? 0 : 1;
    }

    private static async Task<ScaleRow> MeasureAsync(int n, string transport, ScaleOptions options, CancellationToken cancellationToken)
    {
        var scratch = Directory.CreateTempSubdirectory("mtcp-bench-scale-");
        var processes = new List<ScaleProcess>();
        try
        {
            var logs = Directory.CreateDirectory(Path.Combine(BenchPaths.RepositoryRoot(), "artifacts", "bench", "scale-logs")).FullName;
            var servers = await StartServersAsync(scratch.FullName, transport, options, processes, n, logs);
            var clientAddresses = Enumerable.Range(0, (n + ConnectionsPerClientAddress - 1) / ConnectionsPerClientAddress).Select(i => $"{options.Network}.{10 + i}").ToArray();
            var client = ScaleProcess.Start("client", typeof(ScaleBenchmark).Assembly.Location,
                ["scale-client", "--transport", transport, "--addresses", string.Join(',', clientAddresses), "--services", $"{options.Network}.2:{RequestPort},{options.Network}.3:{RequestPort}"],
                Path.Combine(logs, $"{n}-client.log"));
            processes.Add(client);
            await client.WaitForLineAsync(ScaleClient.ReadyLine, StartTimeout);
            await Task.Delay(Settle, cancellationToken);
            var all = new[] { servers[0], servers[1], client };

            var (server1Before, _) = await servers[0].NextRuntimeReportAsync();
            var rssBefore = servers[0].ResidentBytes();
            var clientBefore = await client.AskAsync<ScaleProcessStats>("stats", StartTimeout);
            var clientRssBefore = client.ResidentBytes();

            var opened = await client.AskAsync<ScaleOpenResult>($"open {n} {options.OpenConcurrency}", TimeSpan.FromSeconds(60 + (n / 100)));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"N {n}: {opened.Opened} connections opened in {opened.Seconds:F1} s{(opened.FirstError is null ? "" : $"; first failure: {opened.FirstError}")}"));
            await Task.Delay(Settle, cancellationToken);

            var cpuBefore = all.Select(p => p.CpuSeconds()).ToArray();
            var idleStarted = Stopwatch.GetTimestamp();
            await Task.Delay(IdleWindow, cancellationToken);
            var idleCpu = all.Select((p, i) => (p.CpuSeconds() - cpuBefore[i]) / Stopwatch.GetElapsedTime(idleStarted).TotalSeconds * 100).ToArray();
            var (server1Idle, _) = await servers[0].NextRuntimeReportAsync();
            var rssIdle = servers[0].ResidentBytes();
            var clientIdle = await client.AskAsync<ScaleProcessStats>("stats", StartTimeout);
            var clientRssIdle = client.ResidentBytes();

            var (echoStart1, _) = await servers[0].NextRuntimeReportAsync();
            var echo = await client.AskAsync<ScaleEchoResult>($"echo {options.EchoBytes}", TimeSpan.FromSeconds(120 + (n / 50)));
            var (echoEnd1, _) = await servers[0].NextRuntimeReportAsync();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"N {n}: {echo.BytesEchoed} bytes echoed in {echo.Seconds:F1} s, {echo.BytesLost} lost{(echo.FirstError is null ? "" : $"; first failure: {echo.FirstError}")}"));
            await Task.Delay(Settle, cancellationToken);
            var (server1Echoed, _) = await servers[0].NextRuntimeReportAsync();
            var rssEchoed = servers[0].ResidentBytes();

            // The migration phase: reports, CPU and memory just before and just after; memory each second between.
            var reportsStart = await Task.WhenAll(servers.Select(s => s.NextRuntimeReportAsync()));
            var clientStart = await client.AskAsync<ScaleProcessStats>("stats", StartTimeout);
            var clientStartAt = Stopwatch.GetTimestamp();
            var cpuStart = all.Select(p => p.CpuSeconds()).ToArray();
            var rssStart = all.Sum(p => p.ResidentBytes());
            var series = new List<ScaleSample>();
            var migrating = client.AskAsync<ScaleMigrateResult>(string.Create(CultureInfo.InvariantCulture, $"migrate {(int)Math.Ceiling(options.Duration.TotalSeconds)} {options.InFlight}"), options.Duration + TimeSpan.FromSeconds(120));
            var started = Stopwatch.GetTimestamp();
            while (!migrating.IsCompleted)
            {
                series.Add(new ScaleSample(Stopwatch.GetElapsedTime(started).TotalSeconds, MiB(servers[0].ResidentBytes()), MiB(servers[1].ResidentBytes()), MiB(client.ResidentBytes())));
                await Task.WhenAny(migrating, Task.Delay(TimeSpan.FromSeconds(1), cancellationToken));
            }

            var migrated = await migrating;
            var rssEnd = all.Sum(p => p.ResidentBytes());
            var cpuEnd = all.Select(p => p.CpuSeconds()).ToArray();
            var clientEnd = await client.AskAsync<ScaleProcessStats>("stats", StartTimeout);
            var clientSeconds = Stopwatch.GetElapsedTime(clientStartAt).TotalSeconds;
            var reportsEnd = await Task.WhenAll(servers.Select(s => s.NextRuntimeReportAsync()));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"N {n}: {migrated.Completed} migrations in {migrated.Seconds:F1} s, {migrated.Failed} failed{(migrated.FailureReasons.Count == 0 ? "" : $" ({string.Join("; ", migrated.FailureReasons.Select(r => $"{r.Value} x {r.Key}"))})")}"));

            var verified = await client.AskAsync<ScaleEchoResult>("verify", TimeSpan.FromSeconds(60 + (n / 100)));
            client.Send("quit");
            await client.WaitForExitAsync(TimeSpan.FromSeconds(30));

            double PauseShare(int server) => (reportsEnd[server].Stats.GcPauseMs - reportsStart[server].Stats.GcPauseMs) / (reportsEnd[server].At - reportsStart[server].At).TotalMilliseconds;
            var completed = Math.Max(1, migrated.Completed);
            var echoSegments = Math.Max(1, echo.SegmentsReceived);
            return new ScaleRow(
                n,
                transport,
                opened.Seconds,
                opened.Failed,
                KiB(rssIdle - rssBefore) / n,
                KiB(server1Idle.HeapBytes - server1Before.HeapBytes) / n,
                KiB(rssEchoed - rssBefore) / n,
                KiB(server1Echoed.HeapBytes - server1Before.HeapBytes) / n,
                KiB(clientRssIdle - clientRssBefore) / n,
                KiB(clientIdle.HeapBytes - clientBefore.HeapBytes) / n,
                idleCpu[0],
                idleCpu[1],
                idleCpu[2],
                echo.Seconds,
                (double)(echoEnd1.AllocatedBytes - echoStart1.AllocatedBytes) / echoSegments,
                (double)echo.AllocatedBytes / echoSegments,
                migrated.Completed,
                migrated.Failed,
                migrated.FailureReasons,
                migrated.Completed / migrated.Seconds,
                migrated.WaitP50Ms,
                migrated.WaitP99Ms,
                cpuEnd.Zip(cpuStart).Sum(c => c.First - c.Second) * 1000 / completed,
                (double)reportsEnd.Zip(reportsStart).Sum(r => r.First.Stats.AllocatedBytes - r.Second.Stats.AllocatedBytes) / completed,
                (double)(clientEnd.AllocatedBytes - clientStart.AllocatedBytes) / completed,
                PauseShare(0),
                PauseShare(1),
                (clientEnd.GcPauseMs - clientStart.GcPauseMs) / (clientSeconds * 1000),
                MiB(rssStart),
                MiB(rssEnd),
                MiB(rssEnd - rssStart),
                (rssEnd - rssStart) * 100.0 / rssStart,
                MiB(reportsStart.Sum(r => r.Stats.LiveBytesAfterGen2) + clientStart.LiveBytesAfterGen2),
                MiB(reportsEnd.Sum(r => r.Stats.LiveBytesAfterGen2) + clientEnd.LiveBytesAfterGen2),
                echo.BytesEchoed + verified.BytesEchoed,
                echo.BytesLost + verified.BytesLost,
                migrated.CompletedPerSecond,
                [.. series]);
        }
        finally
        {
            foreach (var process in processes)
            {
                process.Dispose();
            }

            scratch.Delete(recursive: true);
        }
    }

    /// <summary>Starts the two server nodes (&lt;network&gt;.2 and .3, the first the seed) and waits until each sees both service endpoints.</summary>
    private static async Task<ScaleProcess[]> StartServersAsync(string scratch, string transport, ScaleOptions options, List<ScaleProcess> processes, int n, string logs)
    {
        var certificates = Directory.CreateDirectory(Path.Combine(scratch, "certificates")).FullName;
        ClusterCertificates.CreateAuthority(certificates, "mtcp-bench-scale-ca", TimeSpan.FromDays(1));
        var key = MigrationKey.Generate();
        var addresses = new[] { $"{options.Network}.2", $"{options.Network}.3" };
        var controls = addresses.Select(address => new IPEndPoint(IPAddress.Parse(address), ListenPorts.PickUnused(IPAddress.Parse(address)))).ToArray();
        var servers = new ScaleProcess[addresses.Length];
        for (var i = 0; i < addresses.Length; i++)
        {
            var certificate = ClusterCertificates.IssueNode(certificates, $"server{i + 1}", [addresses[i]], certificates, TimeSpan.FromDays(1));
            var config = Path.Combine(scratch, $"server{i + 1}.conf");
            await File.WriteAllTextAsync(config, $$"""
                akka.remote.dot-netty.tcp { hostname = "{{addresses[i]}}", port = {{controls[i].Port}} }
                akka.cluster.seed-nodes = ["akka.ssl.tcp://mtcp@{{controls[0]}}"]
                {{ClusterCertificates.SecurityConfig(certificates, certificate)}}
                akka.loglevel = WARNING
                mtcp.runtime { transport = {{transport}}, local-address = "{{addresses[i]}}" }
                mtcp.hosts.server.file.enabled = off
                mtcp.hosts.server.request { enabled = on, port = {{RequestPort}} }
                mtcp.hosts.server.runtime-report-interval = 1s
                mtcp.migration.cluster-key = "{{key}}"
                {{options.ServerConfig}}
                """);
            servers[i] = ScaleProcess.Start($"server{i + 1}", HostDll("Mtcp.Server"), ["--config", config], Path.Combine(logs, $"{n}-server{i + 1}.log"));
            processes.Add(servers[i]);
        }

        await Task.WhenAll(servers.Select(server => server.WaitForLineAsync("cluster view: 2 service endpoints", StartTimeout)));
        return servers;
    }

    /// <summary>The host's build output beside this one: Hosts/&lt;project&gt;/bin/&lt;configuration&gt;/&lt;tfm&gt;/.</summary>
    internal static string HostDll(string project)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var dll = Path.Combine(output.Parent!.Parent!.Parent!.Parent!.FullName, project, "bin", output.Parent.Name, output.Name, $"{project}.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing: build with dotnet run -c Release --project Hosts/Mtcp.Bench");
    }

    private static double KiB(long bytes) => bytes / 1024.0;

    private static double MiB(long bytes) => bytes / 1048576.0;

    private static async Task WriteArtifactsAsync(ScaleOptions options, List<ScaleRow> rows, string loadAverage, string? failure)
    {
        var directory = Path.Combine(BenchPaths.RepositoryRoot(), "artifacts", "bench");
        Directory.CreateDirectory(directory);
        var json = JsonSerializer.Serialize(
            new { loadAverage, failure, serverConfig = options.ServerConfig, durationSeconds = options.Duration.TotalSeconds, inFlight = options.InFlight, openConcurrency = options.OpenConcurrency, echoBytes = options.EchoBytes, rows },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        await File.WriteAllTextAsync(Path.Combine(directory, "scale.json"), json);
        ScalePlot.Save(Path.Combine(directory, "scale"), rows);

        var table = new StringBuilder();
        table.AppendLine("# Scale: connections per node, migrations per second, memory");
        table.AppendLine();
        table.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Two Mtcp.Server nodes (one Akka.Cluster, control plane on mutual TLS) and one client process, the shipped configuration (MSL 30 s){(options.ServerConfig.Length == 0 ? "" : $" with `{options.ServerConfig}` on the nodes")}, transport {rows.FirstOrDefault()?.Transport}; load average (1, 5, 15 min) {loadAverage}."));
        table.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"N connections opened to node 1's request server ({options.OpenConcurrency} handshakes at a time); {options.EchoBytes} bytes echoed through each; {options.Duration.TotalSeconds:0} s of migrations back and forth, {options.InFlight} in flight."));
        table.AppendLine("Per connection: growth of node 1's RSS (/proc) and managed heap over the idle node, divided by N. Idle CPU: % of one core. RSS at start/end: all three processes.");
        table.AppendLine("Live at start/end: the bytes that survived each process's last gen2 collection before that moment, summed over the three (garbage excluded).");
        table.AppendLine("Bytes lost: echoed payload bytes that did not come back as sent, in the echo and in the final check of every connection.");
        table.AppendLine();
        table.AppendLine("| N | open (s) | RSS/conn idle (KiB) | heap/conn idle | RSS/conn after echo | heap/conn after echo | client RSS/conn | idle CPU s1/s2/client (%) | migrations/s | failed | wait p50 (ms) | p99 | CPU/migration (ms) | GC pause s1/s2/client | RSS start → end (MiB) | growth | live start → end (MiB) | bytes lost |");
        table.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Connections} | {r.OpenSeconds:F1} | {r.RssPerConnectionKiB:F1} | {r.HeapPerConnectionKiB:F1} | {r.RssPerConnectionAfterEchoKiB:F1} | {r.HeapPerConnectionAfterEchoKiB:F1} | {r.ClientRssPerConnectionKiB:F1} | {r.IdleCpuPercentServer1:F1}/{r.IdleCpuPercentServer2:F1}/{r.IdleCpuPercentClient:F1} | {r.MigrationsPerSecond:F0} | {r.MigrationsFailed} | {r.WaitP50Ms:F2} | {r.WaitP99Ms:F2} | {r.CpuMsPerMigration:F2} | {r.GcPauseShareServer1:P1}/{r.GcPauseShareServer2:P1}/{r.GcPauseShareClient:P1} | {r.RssAtMigrationStartMiB:F0} → {r.RssAtMigrationEndMiB:F0} | {r.RssGrowthDuringMigrationsPercent:F1} % | {r.LiveAtMigrationStartMiB:F0} → {r.LiveAtMigrationEndMiB:F0} | {r.BytesLost} of {r.BytesChecked} |"));
        }

        if (failure is not null)
        {
            table.AppendLine();
            table.AppendLine($"The run stopped: {failure.Split('\n')[0]}");
        }

        table.AppendLine();
        table.AppendLine("Allocation (item 6): bytes allocated per migration by both nodes together and by the client; per segment in the echo, node 1 and the client (segments counted at the client).");
        table.AppendLine();
        table.AppendLine("| N | nodes B/migration | client B/migration | node 1 B/segment | client B/segment |");
        table.AppendLine("|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Connections} | {r.ServersAllocatedBytesPerMigration:F0} | {r.ClientAllocatedBytesPerMigration:F0} | {r.EchoServerAllocatedBytesPerSegment:F0} | {r.EchoClientAllocatedBytesPerSegment:F0} |"));
        }

        await File.WriteAllTextAsync(Path.Combine(directory, "scale.md"), table.ToString());
        Console.WriteLine();
        Console.Write(table);
        Console.WriteLine($"written to {directory}");
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;

namespace Mtcp.Bench;

internal sealed record FailoverOptions(
    int Kills,
    int FastKills,
    int ClientKills,
    long FileBytes,
    long PaceBytesPerSecond,
    long KillAtBytes,
    long GoodputBytes,
    long EchoBytes,
    int Requests,
    int Repetitions,
    string Network,
    string CostConfig,
    string ClientConfig);

/// <summary>One SIGKILL of the serving node under a paced download: how long the client waited and what it received.</summary>
/// <param name="DetectedMs">From the SIGKILL to the buddy's log line saying the node is unreachable and it takes its connections over (NaN with client-stored state: no node holds the connection to say so).</param>
internal sealed record FailoverKill(int Index, string Killed, string TookOverBy, double FailoverMs, double DetectedMs, double MigrationWaitMs, bool Triggered, long BytesLost, long BytesDuplicated, long BytesCorrupted, bool Survived, string? Failure);

/// <summary>A series of kills under one replication mode and failure detector setting.</summary>
internal sealed record FailoverSeries(string Replication, string Detector, IReadOnlyList<FailoverKill> Kills)
{
    /// <summary>How the series is named in tables and the plot.</summary>
    public string Name => $"{Replication}, {Detector}";

    private double[] Survived => [.. Kills.Where(k => k.Survived).Select(k => k.FailoverMs)];

    public double FailoverP50Ms => Statistics.Percentile(Survived, 0.5);

    public double FailoverP99Ms => Statistics.Percentile(Survived, 0.99);

    public double FailoverMaxMs => Survived.DefaultIfEmpty(double.NaN).Max();

    /// <summary>Median time from the SIGKILL to the buddy's "is unreachable" line: the failure detector's share.</summary>
    public double DetectedP50Ms => Statistics.Percentile([.. Kills.Where(k => !double.IsNaN(k.DetectedMs)).Select(k => k.DetectedMs)], 0.5);

    /// <summary>Median client wait from its special SYN to the buddy's SYN+ACK.</summary>
    public double MigrationWaitP50Ms => Statistics.Percentile([.. Kills.Where(k => k.Survived).Select(k => k.MigrationWaitMs)], 0.5);

    public long BytesLost => Kills.Sum(k => k.BytesLost);

    public long BytesDuplicated => Kills.Sum(k => k.BytesDuplicated);

    public long BytesCorrupted => Kills.Sum(k => k.BytesCorrupted);

    public int KillsSurvived => Kills.Count(k => k.Survived);
}

/// <summary>One replication mode's cost: medians of the repetitions, in bytes per second and microseconds.</summary>
internal sealed record ReplicationCost(string Replication, double DownloadBytesPerSecond, double EchoBytesPerSecond, double RequestP50Us, double RequestP99Us);

/// <summary>
/// The cost of replication: each mode's figures, where buddy replication's time goes (its serving node's instruments,
/// per phase, over every measured repetition), and a control round trip on this host measured in the same run.
/// </summary>
/// <param name="ControlBulkBytesPerSecond">the control connection's rate for an upload's worth of read-log-sized messages, acked one by one: what bounds a replicated upload.</param>
/// <param name="DirectRoundTripP50Us">the same round trip over one kernel TCP connection with mutual TLS and a thread on each side (<see cref="DirectTlsRoundTrip"/>), and below its p99 and bulk rate.</param>
internal sealed record ReplicationCosts(
    ReplicationCost[] Modes,
    ReplicationTrace[] BuddyTrace,
    double ControlRoundTripP50Us,
    double ControlRoundTripP99Us,
    double ControlBulkBytesPerSecond,
    double DirectRoundTripP50Us,
    double DirectRoundTripP99Us,
    double DirectBulkBytesPerSecond);

/// <summary>
/// The <c>failover</c> benchmark (issue 11). Two <c>Mtcp.Server</c> processes per cluster, the client an MTCP runtime
/// of this process (raw IPv4 protocol 253 as root, UDP otherwise), everything on loopback addresses of --network.
/// <list type="number">
/// <item>The cost of replication: a cluster with <c>mtcp.migration.replication = off</c> and one with <c>buddy</c>, both
/// up at once, measured in turn (--repetitions times each, medians): one connection's download (the file server,
/// unpaced), its upload (pipelined RESP ECHOs: the client's bytes go up and come back), and PING round trips.</item>
/// <item>Failover: a <c>buddy</c> cluster whose file server is paced, so that a download surely runs at the kill; the
/// client downloads a random file from one node, which is SIGKILLed once the client has --kill-at bytes of it. The failover time is from the
/// SIGKILL to the first read that completes after the client's migration to the buddy (the stream was quiet since the
/// kill, so that read carries the buddy's first new byte). Every byte received is held against the file: lost,
/// duplicated, garbled. The killed node is started again (a new incarnation, same address) before the next kill, which
/// falls on the other node.</item>
/// <item>The same with a faster failure detector (--fast-kills kills), to show what brings failover under 500 ms.</item>
/// <item>The same with client-stored state (<c>replication = client</c>, --client-kills kills, the reference detector): no
/// node holds the connection, the client's own failover presents the state it holds to the survivor.</item>
/// </list>
/// The cost measurements run a third cluster with <c>client</c> beside <c>off</c> and <c>buddy</c>.
/// </summary>
internal static class FailoverBenchmark
{
    public const int EchoValueBytes = 64 * 1024;
    private const int EchoWindow = 4;
    private const int WarmUpRequests = 200;
    private const string FailoverFile = "failover.bin";
    private const string GoodputFile = "goodput.bin";
    private const int ClientHost = 10;
    private const int ControlRoundTripHost = 11;

    /// <summary>The faster failure detector of the last series, laid over the nodes' configuration.</summary>
    private const string FastDetectorFile = "bench-failover-fast-detector.conf";
    private const string FastDetectorName = "fast (HOCON/" + FastDetectorFile + ": heartbeat-interval 100ms, acceptable-heartbeat-pause 200ms, min-std-deviation 20ms)";

    private const string ReferenceDetectorName = "reference (heartbeat-interval 500ms, acceptable-heartbeat-pause 2s)";

    private static readonly TimeSpan DownloadTimeout = TimeSpan.FromSeconds(90);

    public static async Task<int> RunAsync(FailoverOptions options, CancellationToken cancellationToken)
    {
        if (options.Kills < 0 || options.FastKills < 0 || options.ClientKills < 0 || options.FileBytes < 1 << 20 || options.PaceBytesPerSecond < 1 || options.KillAtBytes < 1 || options.KillAtBytes >= options.FileBytes
            || options.GoodputBytes < 1 << 20 || options.EchoBytes < EchoValueBytes || options.Requests < 1 || options.Repetitions < 1)
        {
            await Console.Error.WriteLineAsync("--rate, --requests and --repetitions must be positive, --kills, --fast-kills and --client-kills not negative, --file-size and --goodput-size at least 1 MiB, --kill-at between 1 and --file-size, --echo-size at least 64 KiB");
            return 2;
        }

        if (options.Network.Count(c => c == '.') != 2 || !IPAddress.TryParse(options.Network + ".2", out var probe) || !IPAddress.IsLoopback(probe))
        {
            await Console.Error.WriteLineAsync($"--network must be three octets of a loopback address, e.g. 127.0.11, not '{options.Network}'");
            return 2;
        }

        var transport = Environment.IsPrivilegedProcess ? "raw" : "udp";
        var loadBefore = StreamBenchmark.LoadAverage();
        var clock = Stopwatch.StartNew();
        var scratch = Directory.CreateTempSubdirectory("mtcp-bench-failover-");
        try
        {
            var files = scratch.CreateSubdirectory("files").FullName;
            var failoverContent = WriteRandomFile(Path.Combine(files, FailoverFile), options.FileBytes, seed: 11);
            var goodputContent = WriteRandomFile(Path.Combine(files, GoodputFile), options.GoodputBytes, seed: 12);
            var system = ActorSystem.Create("failover-client", MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING")));
            var runtime = MtcpRuntime.Start(system, fabric: null, ConfigurationFactory.ParseString($"{options.ClientConfig}\nmtcp.runtime.transport = {transport}\nmtcp.runtime.local-address = \"{options.Network}.{ClientHost}\""), "mtcp");
            try
            {
                await runtime.EnableClientMigrationAsync(cancellationToken);
                Console.WriteLine($"failover: two server processes per cluster over {transport}, the client in this process at {options.Network}.{ClientHost}; load average {loadBefore}");
                var costs = await MeasureCostsAsync(runtime, scratch.FullName, transport, options, files, goodputContent, cancellationToken);
                var (controlRoundTrips, controlBulk) = await ControlRoundTrip.MeasureAsync(
                    scratch.FullName, IPAddress.Parse($"{options.Network}.{ControlRoundTripHost}"), options.Requests, WarmUpRequests, options.EchoBytes, EchoValueBytes, EchoWindow, cancellationToken);
                var (directRoundTrips, directBulk) = await DirectTlsRoundTrip.MeasureAsync(
                    scratch.FullName, IPAddress.Parse($"{options.Network}.{ControlRoundTripHost}"), options.Requests, WarmUpRequests, options.EchoBytes, EchoValueBytes, EchoWindow, cancellationToken);
                costs = costs with
                {
                    ControlRoundTripP50Us = Statistics.Percentile(controlRoundTrips, 0.5),
                    ControlRoundTripP99Us = Statistics.Percentile(controlRoundTrips, 0.99),
                    ControlBulkBytesPerSecond = controlBulk,
                    DirectRoundTripP50Us = Statistics.Percentile(directRoundTrips, 0.5),
                    DirectRoundTripP99Us = Statistics.Percentile(directRoundTrips, 0.99),
                    DirectBulkBytesPerSecond = directBulk,
                };
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"control connection (Akka.Remote over mutual TLS on loopback): round trip of {ControlRoundTrip.MessageBytes} B each way ({options.Requests} after {WarmUpRequests} unmeasured) p50 {costs.ControlRoundTripP50Us:F0} us, p99 {costs.ControlRoundTripP99Us:F0} us; "
                    + $"bulk {controlBulk / 1e6:F1} MB/s ({options.EchoBytes / 1048576} MiB in {EchoValueBytes / 1024} KiB messages, {EchoWindow} unacknowledged at most); "
                    + $"the same over kernel TCP with mutual TLS and a thread each side: p50 {costs.DirectRoundTripP50Us:F0} us, p99 {costs.DirectRoundTripP99Us:F0} us, bulk {directBulk / 1e6:F1} MB/s"));
                var series = new List<FailoverSeries>
                {
                    await KillSeriesAsync(runtime, scratch.FullName, transport, options, files, failoverContent, options.Kills, "buddy", ReferenceDetectorName, "", cancellationToken),
                };
                if (options.FastKills > 0)
                {
                    var fastDetector = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "HOCON", FastDetectorFile), cancellationToken);
                    series.Add(await KillSeriesAsync(runtime, scratch.FullName, transport, options, files, failoverContent, options.FastKills, "buddy", FastDetectorName, fastDetector, cancellationToken));
                }

                if (options.ClientKills > 0)
                {
                    series.Add(await KillSeriesAsync(runtime, scratch.FullName, transport, options, files, failoverContent, options.ClientKills, "client", ReferenceDetectorName, "", cancellationToken));
                }

                await WriteArtifactsAsync(options, transport, $"{loadBefore} before, {StreamBenchmark.LoadAverage()} after", clock.Elapsed, costs, series);
                return series.All(s => s.KillsSurvived == s.Kills.Count && s.BytesLost == 0 && s.BytesDuplicated == 0 && s.BytesCorrupted == 0) ? 0 : 1;
            }
            finally
            {
                await runtime.DisposeAsync();
                await system.Terminate();
            }
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The clusters up at once; each measurement done on one, then the next, --repetitions times; medians. The buddy
    /// cluster's serving node is read before and after each phase for the trace.
    /// </summary>
    /// <summary>The cost row of buddy replication over the direct replication channel.</summary>
    internal const string BuddyDirect = "buddy-direct";

    private static async Task<ReplicationCosts> MeasureCostsAsync(MtcpRuntime runtime, string scratch, string transport, FailoverOptions options, string files, byte[] goodputContent, CancellationToken cancellationToken)
    {
        // Buddy replication twice, its updates and acks over the control connection and over the direct channel
        // (docs/failover.md), whatever the reference configuration's default.
        string[] modes = ["off", "buddy", BuddyDirect, "client"];
        var clusters = new FailoverCluster[modes.Length];
        try
        {
            for (var i = 0; i < modes.Length; i++)
            {
                var directory = Directory.CreateDirectory(Path.Combine(scratch, $"cost-{modes[i]}")).FullName;
                var replication = modes[i] == BuddyDirect ? "buddy" : modes[i];
                var channel = replication == "buddy" ? $"mtcp.migration.buddy-channel.transport = {(modes[i] == BuddyDirect ? "direct" : "control")}\n" : "";
                clusters[i] = await FailoverCluster.StartAsync(directory, transport, options.Network, files, new FailoverClusterSettings(replication, FileBestRate: 0, FirstHost: 2 + (2 * i), channel + options.CostConfig, Metrics: modes[i] == BuddyDirect));
            }

            using var http = new HttpClient();
            // The instruments are read on the default path, the direct replication channel.
            var buddy = Array.IndexOf(modes, BuddyDirect);
            string[] phases = ["download", "upload (echo)", "PING"];
            var traced = phases.Select(_ => MetricsScrape.Empty).ToArray();
            var tracedAtBuddy = phases.Select(_ => MetricsScrape.Empty).ToArray();

            Console.WriteLine($"cost of replication: clusters up ({string.Join(", ", modes.Select((mode, i) => $"{mode} at {clusters[i].Addresses[0]}"))}); {options.Repetitions} repetitions, one unmeasured first");
            var downloads = modes.Select(_ => new List<double>()).ToArray();
            var echoes = modes.Select(_ => new List<double>()).ToArray();
            var roundTrips = modes.Select(_ => new List<double>()).ToArray();
            for (var repetition = -1; repetition < options.Repetitions; repetition++)
            {
                for (var i = 0; i < modes.Length; i++)
                {
                    var files0 = new IPEndPoint(clusters[i].Addresses[0], FailoverCluster.FilePort);
                    var requests0 = new IPEndPoint(clusters[i].Addresses[0], FailoverCluster.RequestPort);
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(DownloadTimeout);
                    var scrapes = new List<MetricsScrape>();
                    var scrapesAtBuddy = new List<MetricsScrape>();
                    async Task ScrapeAsync()
                    {
                        if (i == buddy)
                        {
                            // The exporter answers a scrape within 300 ms of the last from its cache: a fast phase would read as empty.
                            await Task.Delay(MetricsScrape.ResponseCacheDuration * 2, timeout.Token);
                            scrapes.Add(await MetricsScrape.ReadAsync(http, clusters[i].MetricsUrl(0), timeout.Token));
                            scrapesAtBuddy.Add(await MetricsScrape.ReadAsync(http, clusters[i].MetricsUrl(1), timeout.Token));
                        }
                    }

                    await ScrapeAsync();
                    var started = Stopwatch.GetTimestamp();
                    var download = await FailoverClient.DownloadAsync(runtime, files0, GoodputFile, goodputContent.Length, timeout.Token);
                    var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                    if (download.Failure is not null || !download.Body.AsSpan().SequenceEqual(goodputContent))
                    {
                        throw new InvalidOperationException($"the {modes[i]} cluster's download failed or differs: {download.Failure ?? $"{download.Body.Length} bytes received"}");
                    }

                    await ScrapeAsync();
                    var echo = await FailoverClient.EchoGoodputAsync(runtime, requests0, options.EchoBytes, EchoValueBytes, EchoWindow, timeout.Token);
                    await ScrapeAsync();
                    var pings = await FailoverClient.PingRoundTripsAsync(runtime, requests0, options.Requests, WarmUpRequests, timeout.Token);
                    await ScrapeAsync();
                    if (repetition < 0)
                    {
                        continue;
                    }

                    for (var phase = 0; phase < scrapes.Count - 1; phase++)
                    {
                        traced[phase] = traced[phase].Plus(scrapes[phase + 1].Since(scrapes[phase]));
                        tracedAtBuddy[phase] = tracedAtBuddy[phase].Plus(scrapesAtBuddy[phase + 1].Since(scrapesAtBuddy[phase]));
                    }

                    downloads[i].Add(goodputContent.Length / seconds);
                    echoes[i].Add(echo);
                    roundTrips[i].AddRange(pings);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {repetition + 1}/{options.Repetitions} {modes[i],-5} download {goodputContent.Length / seconds / 1e6,8:F1} MB/s  upload (echo) {echo / 1e6,8:F1} MB/s  PING p50 {Statistics.Percentile(pings, 0.5),7:F0} us p99 {Statistics.Percentile(pings, 0.99),7:F0} us"));
                }
            }

            ReplicationTrace[] trace =
            [
                ReplicationTrace.From(phases[0], "MB downloaded", options.Repetitions * goodputContent.Length / 1e6, traced[0], tracedAtBuddy[0]),
                ReplicationTrace.From(phases[1], "MB uploaded", options.Repetitions * options.EchoBytes / 1e6, traced[1], tracedAtBuddy[1]),
                ReplicationTrace.From(phases[2], "request", options.Repetitions * (options.Requests + WarmUpRequests), traced[2], tracedAtBuddy[2]),
            ];
            Console.WriteLine($"buddy replication over the direct replication channel ({BuddyDirect}), its serving node's instruments over the measured repetitions:");
            foreach (var phase in trace)
            {
                Console.WriteLine("  " + phase.Describe());
            }

            var figures = modes.Select((mode, i) => new ReplicationCost(
                mode,
                Statistics.Percentile(downloads[i], 0.5),
                Statistics.Percentile(echoes[i], 0.5),
                Statistics.Percentile(roundTrips[i], 0.5),
                Statistics.Percentile(roundTrips[i], 0.99))).ToArray();
            return new ReplicationCosts(figures, trace, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        }
        finally
        {
            foreach (var cluster in clusters)
            {
                cluster?.Dispose();
            }
        }
    }

    private static async Task<FailoverSeries> KillSeriesAsync(
        MtcpRuntime runtime, string scratch, string transport, FailoverOptions options, string files, byte[] content, int kills, string replication, string detector, string detectorConfig, CancellationToken cancellationToken)
    {
        if (kills == 0)
        {
            // --kills 0: the run measures the cost of replication alone.
            return new FailoverSeries(replication, detector, []);
        }

        var directory = Directory.CreateDirectory(Path.Combine(scratch, $"kills-{replication}-{(detectorConfig.Length == 0 ? "reference" : "fast")}")).FullName;
        using var cluster = await FailoverCluster.StartAsync(directory, transport, options.Network, files, new FailoverClusterSettings(replication, options.PaceBytesPerSecond, FirstHost: 2, detectorConfig));

        // What the survivor logs: the buddy when its detector marks the node unreachable and when it took the connection
        // over; with client-stored state only its listener, when the client's special SYN presents the state.
        var resumedLine = replication == "client" ? "from the state its client presented" : "took over";
        var detectedLine = replication == "client" ? null : ": taking over its";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"failover, replication {replication}, detector {detector}: {kills} kills, each once the client has {options.KillAtBytes / 1048576.0:0.0} MiB of a {options.FileBytes / 1048576.0:0} MiB download paced at {options.PaceBytesPerSecond / 1048576.0:0.0} MiB/s"));
        var results = new List<FailoverKill>();
        for (var k = 0; k < kills; k++)
        {
            var victim = k % 2;
            var survivor = 1 - victim;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(DownloadTimeout);
            var due = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var downloading = FailoverClient.DownloadAsync(
                runtime, new IPEndPoint(cluster.Addresses[victim], FailoverCluster.FilePort), FailoverFile, content.Length, timeout.Token, body =>
                {
                    if (body >= options.KillAtBytes)
                    {
                        due.TrySetResult();
                    }
                });
            await Task.WhenAny(due.Task, downloading);
            var tookOver = cluster.LineAsync(survivor, resumedLine, DownloadTimeout);
            var detected = detectedLine is null ? null : cluster.LineAsync(survivor, detectedLine, DownloadTimeout).ContinueWith(_ => Stopwatch.GetTimestamp(), TaskScheduler.Default);
            var killed = Stopwatch.GetTimestamp();
            cluster.Kill(victim);
            var download = await downloading;
            var result = Measure(k + 1, cluster, victim, killed, download, content) with
            {
                DetectedMs = detected is { IsCompletedSuccessfully: true } ? Stopwatch.GetElapsedTime(killed, detected.Result).TotalMilliseconds : double.NaN,
            };
            results.Add(result);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  kill {k + 1}/{kills} of {result.Killed}: {(result.Survived ? $"next new byte {result.FailoverMs,7:F0} ms after the SIGKILL (unreachable for the survivor after {result.DetectedMs:F0} ms) from {result.TookOverBy} ({(result.Triggered && replication != "client" ? "its MIGRATE_TRIGGER" : "the client's own failover")}, client wait {result.MigrationWaitMs:F1} ms)" : $"NOT SURVIVED: {result.Failure}")}; lost {result.BytesLost}, duplicated {result.BytesDuplicated}, garbled {result.BytesCorrupted}"));
            if (result.Survived)
            {
                await tookOver;
            }

            await cluster.RestartAsync(victim);
        }

        return new FailoverSeries(replication, detector, results);
    }

    private static FailoverKill Measure(int index, FailoverCluster cluster, int victim, long killed, TimedDownload download, byte[] content)
    {
        var difference = StreamComparison.Compare(content, download.Body);
        var killedName = cluster.Addresses[victim].ToString();
        var switched = download.Migrations.FirstOrDefault(m => m.Timestamp > killed && m.Report.Outcome == MigrationOutcome.Completed);
        if (switched.Report is null)
        {
            return new FailoverKill(index, killedName, "", double.NaN, double.NaN, double.NaN, false, difference.Lost, difference.Duplicated, difference.Corrupted, false, download.Failure ?? "no migration completed after the kill");
        }

        var firstRead = Array.FindIndex(download.ReadTimestamps, timestamp => timestamp >= switched.Timestamp);
        var failoverMs = firstRead < 0 ? double.NaN : Stopwatch.GetElapsedTime(killed, download.ReadTimestamps[firstRead]).TotalMilliseconds;
        var survived = download.Failure is null && firstRead >= 0 && difference.Exact;
        return new FailoverKill(
            index,
            killedName,
            switched.Report.To.ToString(),
            failoverMs,
            double.NaN,
            switched.Report.Duration.TotalMilliseconds,
            switched.Report.Triggered,
            difference.Lost,
            difference.Duplicated,
            difference.Corrupted,
            survived,
            download.Failure ?? (firstRead < 0 ? "no byte after the migration" : null));
    }

    private static byte[] WriteRandomFile(string path, long length, int seed)
    {
        var content = new byte[length];
        new Random(seed).NextBytes(content);
        File.WriteAllBytes(path, content);
        return content;
    }

    private static async Task WriteArtifactsAsync(FailoverOptions options, string transport, string loadAverage, TimeSpan elapsed, ReplicationCosts measured, List<FailoverSeries> series)
    {
        var costs = measured.Modes;
        var directory = Path.Combine(BenchPaths.RepositoryRoot(), "artifacts", "bench");
        Directory.CreateDirectory(directory);
        var off = costs.Single(c => c.Replication == "off");
        var buddy = costs.Single(c => c.Replication == "buddy");
        var direct = costs.Single(c => c.Replication == BuddyDirect);
        var directDownloadRatio = direct.DownloadBytesPerSecond / off.DownloadBytesPerSecond;
        var directUploadRatio = direct.EchoBytesPerSecond / off.EchoBytesPerSecond;
        var clientCost = costs.Single(c => c.Replication == "client");
        var downloadRatio = buddy.DownloadBytesPerSecond / off.DownloadBytesPerSecond;
        var uploadRatio = buddy.EchoBytesPerSecond / off.EchoBytesPerSecond;
        var clientDownloadRatio = clientCost.DownloadBytesPerSecond / off.DownloadBytesPerSecond;
        var clientUploadRatio = clientCost.EchoBytesPerSecond / off.EchoBytesPerSecond;
        var reference = series[0];
        var fast = series.FirstOrDefault(s => s.Replication == "buddy" && s != reference);
        var clientSeries = series.FirstOrDefault(s => s.Replication == "client");
        object Figures(FailoverSeries s) => new
        {
            replication = s.Replication,
            detector = s.Detector,
            kills = s.Kills.Count,
            killsSurvived = s.KillsSurvived,
            failoverP50Ms = s.FailoverP50Ms,
            failoverP99Ms = s.FailoverP99Ms,
            failoverMaxMs = s.FailoverMaxMs,
            detectedP50Ms = s.DetectedP50Ms,
            migrationWaitP50Ms = s.MigrationWaitP50Ms,
            bytesLost = s.BytesLost,
            bytesDuplicated = s.BytesDuplicated,
            bytesCorrupted = s.BytesCorrupted,
            perKill = s.Kills,
        };
        var json = JsonSerializer.Serialize(
            new
            {
                transport,
                loadAverage,
                seconds = elapsed.TotalSeconds,
                fileBytes = options.FileBytes,
                paceBytesPerSecond = options.PaceBytesPerSecond,
                killAtBytes = options.KillAtBytes,
                costConfig = options.CostConfig,
                clientConfig = options.ClientConfig,
                modes = new Dictionary<string, object>
                {
                    ["buddy"] = new
                    {
                        failoverP50Ms = reference.FailoverP50Ms,
                        failoverP99Ms = reference.FailoverP99Ms,
                        failoverMaxMs = reference.FailoverMaxMs,
                        bytesLost = reference.BytesLost,
                        bytesDuplicated = reference.BytesDuplicated,
                        goodputRatio = Math.Min(downloadRatio, uploadRatio),
                        downloadGoodputRatio = downloadRatio,
                        uploadGoodputRatio = uploadRatio,
                        requestP50AddedUs = buddy.RequestP50Us - off.RequestP50Us,
                        requestP99AddedUs = buddy.RequestP99Us - off.RequestP99Us,
                        series = series.Where(s => s.Replication == "buddy").Select(Figures).ToArray(),
                    },
                    ["buddyDirect"] = new
                    {
                        goodputRatio = Math.Min(directDownloadRatio, directUploadRatio),
                        downloadGoodputRatio = directDownloadRatio,
                        uploadGoodputRatio = directUploadRatio,
                        uploadAgainstControl = direct.EchoBytesPerSecond / buddy.EchoBytesPerSecond,
                        requestP50AddedUs = direct.RequestP50Us - off.RequestP50Us,
                        requestP99AddedUs = direct.RequestP99Us - off.RequestP99Us,
                    },
                    ["client"] = new
                    {
                        failoverP50Ms = clientSeries?.FailoverP50Ms ?? double.NaN,
                        failoverP99Ms = clientSeries?.FailoverP99Ms ?? double.NaN,
                        failoverMaxMs = clientSeries?.FailoverMaxMs ?? double.NaN,
                        bytesLost = clientSeries?.BytesLost ?? 0,
                        bytesDuplicated = clientSeries?.BytesDuplicated ?? 0,
                        goodputRatio = Math.Min(clientDownloadRatio, clientUploadRatio),
                        downloadGoodputRatio = clientDownloadRatio,
                        uploadGoodputRatio = clientUploadRatio,
                        requestP50AddedUs = clientCost.RequestP50Us - off.RequestP50Us,
                        requestP99AddedUs = clientCost.RequestP99Us - off.RequestP99Us,
                        series = series.Where(s => s.Replication == "client").Select(Figures).ToArray(),
                    },
                },
                costs,
                controlRoundTripP50Us = measured.ControlRoundTripP50Us,
                controlRoundTripP99Us = measured.ControlRoundTripP99Us,
                controlBulkBytesPerSecond = measured.ControlBulkBytesPerSecond,
                directRoundTripP50Us = measured.DirectRoundTripP50Us,
                directRoundTripP99Us = measured.DirectRoundTripP99Us,
                directBulkBytesPerSecond = measured.DirectBulkBytesPerSecond,
                buddyTrace = measured.BuddyTrace,
            },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });
        await File.WriteAllTextAsync(Path.Combine(directory, "failover.json"), json);
        FailoverPlot.Save(Path.Combine(directory, "failover"), series);

        var md = new StringBuilder();
        md.AppendLine("# Failover: SIGKILL of the serving node, and the cost of buddy replication and of client-stored state");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Two `Mtcp.Server` processes per cluster (control plane on mutual TLS), the client an MTCP runtime in the benchmark's process, transport {transport}, loopback; load average (1, 5, 15 min) {loadAverage}; {elapsed.TotalMinutes:F1} min in all."));
        md.AppendLine();
        md.AppendLine("## Failover (`mtcp.migration.replication = buddy` and `client`)");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Each kill: a {options.FileBytes / 1048576.0:0} MiB random file downloaded from one node's file server, paced at {options.PaceBytesPerSecond / 1048576.0:0.0} MiB/s; SIGKILL of that node once the client has {options.KillAtBytes / 1048576.0:0.0} MiB of it; the killed node started again (same address, new incarnation) before the next kill, which falls on the other node. Failover time: from the SIGKILL to the first read that completes after the client switched to the buddy (nothing arrives between the kill and the switch, so that read carries the buddy's first new byte). Every byte received is held against the file."));
        md.AppendLine();
        md.AppendLine("| replication, failure detector | kills | survived | failover p50 (ms) | p99 | max | unreachable for the buddy, p50 (ms) | client wait for the buddy, p50 (ms) | bytes lost | duplicated | garbled |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in series.Where(s => s.Kills.Count > 0))
        {
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Name} | {s.Kills.Count} | {s.KillsSurvived} | {s.FailoverP50Ms:F0} | {s.FailoverP99Ms:F0} | {s.FailoverMaxMs:F0} | {s.DetectedP50Ms:F0} | {s.MigrationWaitP50Ms:F0} | {s.BytesLost} | {s.BytesDuplicated} | {s.BytesCorrupted} |"));
        }

        md.AppendLine();
        md.AppendLine(clientSeries is null
            ? "`client` (client-stored state): not measured in this run (--client-kills 0)."
            : "With `client` no node holds the connection and no MIGRATE_TRIGGER comes: the client's own failover alone notices the silence "
                + "(keep-alive probes after `mtcp.migration.failover.probe-interval` = 2s of quiet, `silent-after` = 3 unanswered, each at most half the interval apart), "
                + "then presents the state it holds on its special SYN; the survivor answers from it once its detector has marked the node unreachable. "
                + "Its failover time is therefore the client's silence detection, whatever the cluster's detector: a shorter `probe-interval` and `silent-after` bring it down, "
                + "at the price of a probe per idle connection per interval. No \"unreachable\" column: no node says when it notices.");
        md.AppendLine();
        md.AppendLine("Where the time goes with the reference detector: a killed process's control connections reset at once, and the survivor then probes "
            + "the node's control port (`CrashedMemberDowning`); a refused port downs the node without waiting for the failure detector, which would take about "
            + "`akka.cluster.failure-detector.acceptable-heartbeat-pause` (2s) plus a heartbeat interval (500ms) and is what a silent host (power, network) still waits for. "
            + "The buddy's MIGRATE_TRIGGER and the client's special SYN then take about a control round trip and a migration. "
            + "The client's own failover (`mtcp.migration.failover`: keep-alive probes after 2s of quiet, 3 unanswered make the server silent) runs meanwhile, "
            + "trying its alternates again every `special-syn-timeout` until `give-up-after`.");
        md.AppendLine();
        md.AppendLine(fast is null
            ? "**Toward 500 ms**: HOCON/" + FastDetectorFile + " (`akka.cluster.failure-detector { heartbeat-interval = 100ms, acceptable-heartbeat-pause = 200ms, min-std-deviation = 20ms }`, `unreachable-nodes-reaper-interval = 100ms`); not measured in this run (--fast-kills 0)."
            : string.Create(CultureInfo.InvariantCulture,
                $"**Toward 500 ms**: HOCON/{FastDetectorFile} (`akka.cluster.failure-detector {{ heartbeat-interval = 100ms, acceptable-heartbeat-pause = 200ms, min-std-deviation = 20ms }}`, `unreachable-nodes-reaper-interval = 100ms`, laid over the reference): measured above, p50 {fast.FailoverP50Ms:F0} ms over {fast.Kills.Count} kills{(fast.FailoverP50Ms < 500 ? "" : ": not under 500 ms on this machine at this load")}. The price: a node that stalls 200 ms (a full garbage collection, a loaded 2-core machine) is taken for dead, and its connections move."));
        md.AppendLine();
        md.AppendLine("## The cost of replication (same run)");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"The clusters up at once, measured in turn, {options.Repetitions} repetitions after an unmeasured one; medians. One connection each: download of a {options.GoodputBytes / 1048576.0:0} MiB file (file server, unpaced); upload: {options.EchoBytes / 1048576.0:0} MiB of pipelined RESP ECHOs of {EchoValueBytes / 1024} KiB, {EchoWindow} unanswered at most (the client's bytes go up and come back: they are what replication gates); {options.Requests} PINGs one at a time after {WarmUpRequests} unmeasured.{(options.ClientConfig.Length == 0 ? "" : $" The client runtime ran with `{options.ClientConfig}` (--client-config).")}{(options.CostConfig.Length == 0 ? "" : $" The nodes ran with `{options.CostConfig}` (--cost-config).")}"));
        md.AppendLine();
        md.AppendLine("| replication | download (MB/s) | upload, echo (MB/s) | PING p50 (us) | PING p99 (us) |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var c in costs)
        {
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {c.Replication} | {c.DownloadBytesPerSecond / 1e6:F1} | {c.EchoBytesPerSecond / 1e6:F1} | {c.RequestP50Us:F0} | {c.RequestP99Us:F0} |"));
        }

        md.AppendLine();
        var added = buddy.RequestP50Us - off.RequestP50Us;
        var goodputMet = Math.Min(downloadRatio, uploadRatio) >= 0.8;
        var requestMet = added <= measured.ControlRoundTripP50Us;
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"buddy against off: download x{downloadRatio:F2}, upload x{uploadRatio:F2} (goodputRatio {Math.Min(downloadRatio, uploadRatio):F2}; goal >= 0.8: {(goodputMet ? "met" : "NOT met")}); PING p50 {added:+0;-0} us, p99 {buddy.RequestP99Us - off.RequestP99Us:+0;-0} us, "
            + $"against a control round trip of p50 {measured.ControlRoundTripP50Us:F0} us, p99 {measured.ControlRoundTripP99Us:F0} us (goal: at most one control round trip added to the p50: {(requestMet ? "met" : "NOT met")})."));
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{BuddyDirect} (buddy replication over the direct replication channel, `mtcp.migration.buddy-channel.transport = direct`; the `buddy` row above uses the control connection) against off: download x{directDownloadRatio:F2}, upload x{directUploadRatio:F2} (goodputRatio {Math.Min(directDownloadRatio, directUploadRatio):F2}); "
            + $"upload x{direct.EchoBytesPerSecond / buddy.EchoBytesPerSecond:F2} of buddy over the control connection; PING p50 {direct.RequestP50Us - off.RequestP50Us:+0;-0} us, p99 {direct.RequestP99Us - off.RequestP99Us:+0;-0} us."));
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"The control round trip: two actor systems of the benchmark's process on a loopback address, with the nodes' Akka.Remote settings over mutual TLS, a {ControlRoundTrip.MessageBytes}-byte message (a small sealed replica update or ack) there and back, one at a time. "
            + $"A request's bytes are acknowledged once the buddy holds them; the client's next request, a short segment, waits for that ACK (Nagle's algorithm, `mtcp.tcp.nagle`, on as in Linux without TCP_NODELAY), "
            + $"so a request/response round trip gains the replication's ack delay: the control round trip plus the actor hops and the sealing on both nodes. "
            + $"The same two actor systems carried {options.EchoBytes / 1048576} MiB in {EchoValueBytes / 1024} KiB messages, {EchoWindow} unacknowledged at most, at {measured.ControlBulkBytesPerSecond / 1e6:F1} MB/s: "
            + $"a replicated upload's bytes all cross the control connection, so this rate (less the sealing and the buddy's work) bounds it. "
            + $"Beside it, the same messages over one kernel TCP connection with mutual TLS (SslStream, the nodes' certificates and peer check), a dedicated thread reading and writing each side, as a direct replication channel would carry them (docs/failover.md): "
            + $"round trip p50 {measured.DirectRoundTripP50Us:F0} us (x{measured.DirectRoundTripP50Us / measured.ControlRoundTripP50Us:F2} of Akka.Remote's), p99 {measured.DirectRoundTripP99Us:F0} us; bulk {measured.DirectBulkBytesPerSecond / 1e6:F1} MB/s (x{measured.DirectBulkBytesPerSecond / measured.ControlBulkBytesPerSecond:F2})."));
        md.AppendLine();
        md.AppendLine("Where buddy replication's time goes over the direct replication channel (the `buddy-direct` row), from its serving node's instruments and its buddy's over the measured repetitions (docs/metrics.md; histogram percentiles are bucket upper bounds, means are exact). "
            + "A client byte waits for the pipeline (`mtcp.replication.pipeline_wait.duration`: its segment reaching the endpoint to its read log leaving it), then the ack delay (`mtcp.replication.ack.delay`: the update leaving the endpoint to its ack reaching it). "
            + "Of the ack delay, the round trip is the serving node's control connection's (`mtcp.replication.round_trip.duration`: the update handed to the transport, sealed, to its ack back), the rest the serving node's actor hops; "
            + "of the round trip, the buddy's hold is its node's share (`mtcp.replication.buddy.hold`: the update's arrival on its control connection to the ack leaving it), the rest the two crossings of the transport:");
        md.AppendLine();
        md.AppendLine("| phase | unit | whole-state messages per unit | whole-state KiB per unit | read-log messages per unit | read-log KiB per unit | buddy acks | pipeline wait p50 (us) | mean (us) | ack delay p50 (us) | p99 (us) | mean (us) | round trip p50 (us) | mean (us) | buddy's hold p50 (us) | mean (us) | client bytes awaiting their ACK at an ack, p50 (KiB) | p99 (KiB) |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var t in measured.BuddyTrace)
        {
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {t.Phase} | {t.Unit} | {t.StateMessagesPerUnit:0.##} | {t.StateBytesPerUnit / 1024:0.#} | {t.ReadLogMessagesPerUnit:0.##} | {t.ReadLogBytesPerUnit / 1024:0.#} | {t.Acks:0} | {t.PipelineWaitP50Us:0} | {t.PipelineWaitMeanUs:0} | {t.AckDelayP50Us:0} | {t.AckDelayP99Us:0} | {t.AckDelayMeanUs:0} | {t.RoundTripP50Us:0} | {t.RoundTripMeanUs:0} | {t.BuddyHoldP50Us:0} | {t.BuddyHoldMeanUs:0} | {t.GatedP50Bytes / 1024:0} | {t.GatedP99Bytes / 1024:0} |"));
        }

        md.AppendLine();
        md.AppendLine("A new snapshot goes to the buddy as a whole state only once the replay it saves is due (`mtcp.migration.buddy-state`, HOCON/mtcp-reference.conf; --cost-config may change it for this measurement); "
            + "until then the buddy's older snapshot and the read log since serve. The receive window does not close while ACKs wait: its right edge stays where the bytes received put it; "
            + "the client's send buffer (`mtcp.tcp.send-buffer-size`) holds every byte not yet acknowledged, and an upload keeps it full: it goes at most at one send buffer per ack delay plus a round trip (the agent runs with 4 MiB; --client-config sets it here). "
            + "At most `mtcp.migration.buddy-read-logs-in-flight` read logs of a connection are unacknowledged; the bytes that come meanwhile go together when an ack frees the pipeline, or not at all when a whole state with a newer snapshot goes first.");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"client against off: download x{clientDownloadRatio:F2}, upload x{clientUploadRatio:F2} (goodputRatio {Math.Min(clientDownloadRatio, clientUploadRatio):F2}); PING p50 {clientCost.RequestP50Us - off.RequestP50Us:+0;-0} us, p99 {clientCost.RequestP99Us - off.RequestP99Us:+0;-0} us."));
        md.AppendLine("No ACK waits for anything, but each change of the state is sealed and sent to the client: with the read log since the last snapshot in every state, "
            + "an upload between snapshots sends its bytes back, growing, until the state exceeds mtcp.migration.client-state.max-size and is no longer sent.");
        await File.WriteAllTextAsync(Path.Combine(directory, "failover.md"), md.ToString());
        Console.WriteLine();
        Console.Write(md);
        Console.WriteLine($"written to {directory}");
    }
}

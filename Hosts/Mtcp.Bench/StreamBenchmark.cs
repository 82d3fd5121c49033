using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Migration;
using Mtcp.Apps;
using Mtcp.Policies;

namespace Mtcp.Bench;

internal sealed record StreamOptions(long? Bytes, string? Transport);

/// <summary>One download of a run: what the client saw, its fraction of the best rate, and where its time went.</summary>
internal sealed record StreamRepetition(
    double Seconds,
    double EffectiveMBps,
    double FractionOfBest,
    int Migrations,
    int FailedMigrations,
    double[] MigrationWaitsMs,
    StreamBreakdown Breakdown,
    StreamCosts Costs,
    bool Verified,
    double[] TraceSeconds,
    long[] TraceBytes)
{
    /// <summary>Mean time from a decision to the next server serving, in milliseconds; NaN without migration.</summary>
    public double MeanMigratingMs => Migrations > 0 ? Breakdown.MigratingSeconds / Migrations * 1000 : double.NaN;
}

/// <summary>
/// What the state size costs in one download besides migrations (thesis 5.3.2: "the time to take a snapshot is directly
/// related to the size of the application state"): the servers' time in snapshots, and the garbage collections of the
/// process (servers and client share it), each snapshot being copied into a new array by <c>ExportState</c>.
/// </summary>
internal sealed record StreamCosts(int Snapshots, double SnapshotSeconds, int Gen0Collections, int Gen1Collections, int Gen2Collections)
{
    public double MeanSnapshotMicroseconds => Snapshots > 0 ? SnapshotSeconds / Snapshots * 1e6 : double.NaN;
}

/// <summary>One run of the experiment (profile, policy, state size), repeated; the repetition of median duration stands for it.</summary>
internal sealed record StreamRunResult(string Profile, long StreamBytes, string Policy, bool Degrading, int StateBytes, double NominalBestRate, IReadOnlyList<StreamRepetition> Repetitions)
{
    /// <summary>The median repetition's rate as a fraction of the configured rate of an undegraded server.</summary>
    public double FractionOfNominal => Median.EffectiveMBps * 1e6 / NominalBestRate;

    public StreamRepetition Median => Repetitions.OrderBy(r => r.Seconds).ElementAt(Repetitions.Count / 2);

    public bool Verified => Repetitions.All(r => r.Verified);

    public double MinFraction => Repetitions.Min(r => r.FractionOfBest);

    public double MaxFraction => Repetitions.Max(r => r.FractionOfBest);

    /// <summary>Client waits of every completed migration of every repetition.</summary>
    public double[] MigrationWaitsMs => [.. Repetitions.SelectMany(r => r.MigrationWaitsMs).Order()];
}

/// <summary>
/// The stream-server experiment of thesis 5.3.2 (fig. 5.4). Server nodes serve the same stream in 1 KB chunks,
/// exporting the chunk number (padded to the run's state size) after every chunk, and degrade gradually after a
/// threshold in each visit. The client downloads it from an undegraded server (the best rate), without migration, and with
/// the throughput policy per state size, each a configured number of times; each download is checked byte for byte. It plots
/// the relative sequence number against time for all runs, reports each run's effective throughput as a fraction of the
/// best rate measured in the same experiment, and where each download lost time against it.
/// </summary>
internal static class StreamBenchmark
{
    private const string Section = "mtcp.bench.stream";
    private const string ThesisRule = "throughput-thesis-rule";
    private const int TracePoints = 2000;

    public static async Task<int> RunAsync(StreamOptions options, CancellationToken cancellationToken)
    {
        var config = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "HOCON", "bench-stream.conf")));
        var settings = config.GetConfig(Section);
        var transport = options.Transport ?? settings.GetString("transport");
        if (transport is not ("memory" or "udp" or "raw"))
        {
            await Console.Error.WriteLineAsync($"--transport must be memory, udp or raw, not '{transport}'");
            return 2;
        }

        var servers = settings.GetInt("servers");
        var chunkSize = settings.GetInt("chunk-size");
        var stateSizes = settings.GetIntList("state-sizes").ToArray();
        var runTimeout = settings.GetTimeSpan("run-timeout");
        var profiles = new[] { Profile(settings, "thesis", chunkSize, null), Profile(settings, "long", chunkSize, options.Bytes) };
        if (servers is < 2 or > 3 || stateSizes.Length == 0 || profiles.Any(p => p.Length <= 0))
        {
            await Console.Error.WriteLineAsync($"{Section}: servers must be 2 or 3, state-sizes not empty, stream lengths positive");
            return 2;
        }

        var clock = Stopwatch.StartNew();
        var loadBefore = LoadAverage();
        var policy = ClientPolicySettings.Create(MtcpConfig.WithFallback(config));
        var thesisRuleRun = settings.GetBoolean("thesis-rule-run");
        var thesisRule = policy with { Throughput = policy.Throughput with { ConsecutiveSamples = 1 } };
        Console.WriteLine($"stream: {servers} servers over {transport}, {chunkSize}-byte chunks, state sizes [{string.Join(", ", stateSizes)}] bytes, load average {loadBefore}");
        await using var cluster = await StreamCluster.StartAsync(transport, servers, config);
        var results = new List<StreamRunResult>();

        // An unmeasured download first (JIT, first connections, first migrations), so that the first measured run, the
        // best rate every other run is compared with, pays for none of it.
        // It paces its writes as the runs do, so that the pacing's timer path is compiled too.
        var warmUp = profiles[0] with { Length = Math.Min(profiles[0].Length, 64 * chunkSize) };
        cluster.Run = new StreamRun(warmUp.Length, stateSizes[0], DegradationCurve.None(chunkSize, profiles[0].Curve.BestRate));
        using (var warmUpTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            warmUpTimeout.CancelAfter(runTimeout);
            await DownloadAsync(cluster, warmUp.Length, policy, warmUpTimeout.Token, migrateOnce: true);
        }

        foreach (var profile in profiles)
        {
            Console.WriteLine($"{profile.Name}: {profile.Length:N0} bytes, best rate {profile.Curve.BestRate / 1e6:F3} MB/s, degrading after {profile.Curve.DegradeAfter} chunks by {profile.Curve.SlowdownPerChunk} per chunk up to x{profile.Curve.MaxSlowdown}, {profile.Repetitions} repetitions");
            var runs = new List<(string Policy, bool Degrading, int StateBytes)> { ("none", false, stateSizes[0]), ("none", true, stateSizes[0]) };
            runs.AddRange(stateSizes.Select(size => ("throughput", true, size)));
            if (thesisRuleRun && policy.Throughput.ConsecutiveSamples > 1)
            {
                runs.Add((ThesisRule, true, stateSizes[0]));
            }

            // The repetitions are interleaved (every run once, then every run again, ...) so that a change in the machine's
            // other load falls on all runs alike rather than on the runs measured while it lasted.
            var downloads = runs.Select(_ => new List<StreamDownload>()).ToArray();
            for (var repetition = 0; repetition < profile.Repetitions; repetition++)
            {
                for (var i = 0; i < runs.Count; i++)
                {
                    var (name, degrading, stateBytes) = runs[i];
                    cluster.Run = new StreamRun(profile.Length, stateBytes, degrading ? profile.Curve : DegradationCurve.None(chunkSize, profile.Curve.BestRate));
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(runTimeout);
                    var runPolicy = name switch
                    {
                        "throughput" => policy,
                        ThesisRule => thesisRule,
                        _ => null,
                    };
                    var download = await DownloadAsync(cluster, profile.Length, runPolicy, timeout.Token);
                    downloads[i].Add(download);
                    Console.WriteLine($"  {repetition + 1}/{profile.Repetitions} {name,-10} {(degrading ? "degrading" : "best"),-9} state {stateBytes / 1024,2} KB {download.Seconds,8:F3} s {download.BytesPerSecond / 1e6,9:F3} MB/s  {download.MigrationWaitsMs.Length} migrations  {(download.Verified ? "verified" : "NOT VERIFIED")}");
                }
            }

            // The best rate: the median of the downloads from a server that never degrades (the profile's first run).
            var best = downloads[0].Select(d => d.BytesPerSecond).Order().ElementAt(downloads[0].Count / 2);
            for (var i = 0; i < runs.Count; i++)
            {
                var (name, degrading, stateBytes) = runs[i];
                var result = new StreamRunResult(profile.Name, profile.Length, name, degrading, stateBytes, profile.Curve.BestRate, [.. downloads[i].Select(d => d.Measure(best, profile.Curve.BestRate))]);
                results.Add(result);
                var m = result.Median;
                Console.WriteLine($"  {Label(result),-34} {m.Seconds,8:F3} s {m.EffectiveMBps,9:F3} MB/s  {m.FractionOfBest,6:P1} of best ({result.MinFraction:P1} - {result.MaxFraction:P1})  {m.Migrations} migrations, {result.Repetitions.Sum(x => x.Breakdown.EarlyMigrations)} early in all  lost {m.Breakdown.LostSeconds * 1000:F0} ms: degraded {m.Breakdown.LostDegradedSeconds * 1000:F0}, migrating {m.Breakdown.LostMigratingSeconds * 1000:F0}, other {m.Breakdown.LostOtherSeconds * 1000:F0}");
            }
        }

        var conditions = new StreamConditions(transport, servers, loadBefore, LoadAverage(), clock.Elapsed.TotalSeconds, Environment.ProcessorCount);
        await WriteArtifactsAsync(conditions, profiles, policy.Throughput, results);
        return results.All(r => r.Verified) ? 0 : 1;
    }

    private static StreamProfile Profile(Config settings, string name, int chunkSize, long? lengthOverride)
    {
        var profile = settings.GetConfig($"profiles.{name}");
        return new StreamProfile(
            name,
            lengthOverride ?? profile.GetLong("stream-length"),
            Math.Max(1, profile.GetInt("repetitions")),
            new DegradationCurve(chunkSize, profile.GetDouble("best-rate"), profile.GetInt("degrade-after"), profile.GetDouble("slowdown-per-chunk"), profile.GetDouble("max-slowdown")));
    }

    /// <summary>The 1-, 5- and 15-minute load averages of the machine (Linux), or "unknown".</summary>
    internal static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    private static async Task<StreamDownload> DownloadAsync(StreamCluster cluster, long length, ClientPolicySettings? policy, CancellationToken cancellationToken, bool migrateOnce = false)
    {
        using var client = new MtcpClient(cluster.ClientRuntime);
        var waits = new List<double>();
        var decisions = new List<long>();
        var failed = 0;
        client.MigrationEnded += (_, report) =>
        {
            if (report.Outcome == MigrationOutcome.Completed)
            {
                lock (waits)
                {
                    waits.Add(report.Duration.TotalMilliseconds);
                }
            }
            else
            {
                Interlocked.Increment(ref failed);
            }
        };

        var visits = new StreamVisitLog();
        cluster.Visits = visits;
        int[] collections = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var started = Stopwatch.GetTimestamp();
        var connection = await client.ConnectAsync(StreamCluster.EndPoint(cluster.Services[0]), cancellationToken);
        await using var driver = policy is null ? null : ClientPolicyDriver.Start(cluster.ClientSystem, client, policy, cluster.Services);
        if (driver is not null)
        {
            driver.Decided += (_, _) =>
            {
                lock (decisions)
                {
                    decisions.Add(Stopwatch.GetTimestamp());
                }
            };
        }

        var stream = driver?.Stream ?? connection;
        await stream.WriteAsync("GET /stream\r\n"u8.ToArray(), cancellationToken);
        if (migrateOnce)
        {
            await client.MigrateAsync(cluster.Services[1], cancellationToken);
        }

        var times = new List<double>();
        var offsets = new List<long>();
        var buffer = new byte[64 * 1024];
        long received = 0;
        var verified = true;
        while (true)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                break;
            }

            for (var i = 0; i < read && verified; i++)
            {
                verified = buffer[i] == StreamServer.ByteAt(received + i);
            }

            received += read;
            times.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
            offsets.Add(received);
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var visited = visits.Snapshot();
        var costs = new StreamCosts(
            visited.Sum(v => v.Snapshots),
            (double)visited.Sum(v => v.SnapshotTicks) / Stopwatch.Frequency,
            GC.CollectionCount(0) - collections[0],
            GC.CollectionCount(1) - collections[1],
            GC.CollectionCount(2) - collections[2]);
        double Since(long timestamp) => Stopwatch.GetElapsedTime(started, timestamp).TotalSeconds;
        lock (waits)
        {
            lock (decisions)
            {
                return new StreamDownload(
                    seconds,
                    received,
                    verified && received == length,
                    [.. waits],
                    Volatile.Read(ref failed),
                    [.. decisions.Select(Since)],
                    [.. visited.Select(v => new VisitTimes(Since(v.Started), v.DegradedFrom is { } at ? Since(at) : null))],
                    costs,
                    times,
                    offsets);
            }
        }
    }

    /// <summary>At most <see cref="TracePoints"/> points of the trace, evenly spread over the stream.</summary>
    private static (double[] Seconds, long[] Bytes) Thin(List<double> times, List<long> offsets)
    {
        var step = Math.Max(1, times.Count / TracePoints);
        var seconds = new List<double> { 0 };
        var bytes = new List<long> { 0 };
        for (var i = 0; i < times.Count; i += step)
        {
            seconds.Add(times[i]);
            bytes.Add(offsets[i]);
        }

        if (times.Count > 0 && seconds[^1] != times[^1])
        {
            seconds.Add(times[^1]);
            bytes.Add(offsets[^1]);
        }

        return (seconds.ToArray(), bytes.ToArray());
    }

    internal static string Label(StreamRunResult run) => run switch
    {
        { Degrading: false } => "best server (no degradation)",
        { Policy: "none" } => $"no migration (state {run.StateBytes / 1024} KB)",
        { Policy: ThesisRule } => $"throughput policy, 1 sample (thesis), state {run.StateBytes / 1024} KB",
        _ => $"throughput policy, state {run.StateBytes / 1024} KB",
    };

    private static string Ms(double milliseconds) => double.IsNaN(milliseconds) ? "-" : milliseconds.ToString("F2", CultureInfo.InvariantCulture);

    private static async Task WriteArtifactsAsync(StreamConditions conditions, StreamProfile[] profiles, ThroughputSettings trigger, List<StreamRunResult> results)
    {
        var directory = Path.Combine("artifacts", "bench");
        Directory.CreateDirectory(directory);
        foreach (var profile in profiles)
        {
            var name = profile.Name == "thesis" ? "stream" : $"stream-{profile.Name}";
            StreamPlot.Save(Path.Combine(directory, name), $"Stream server experiment: {profile.Length / 1024:N0} KB download, {conditions.Servers} servers over {conditions.Transport} (cf. thesis fig. 5.4)", results.Where(r => r.Profile == profile.Name).ToList(), Label);
        }

        var md = new StringBuilder();
        md.AppendLine("# Stream-server experiment (thesis 5.3.2, fig. 5.4)").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"`dotnet run -c Release --project Hosts/Mtcp.Bench -- stream`: {conditions.Servers} server nodes over the {conditions.Transport} transport, configuration `HOCON/bench-stream.conf`.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Run took {conditions.Seconds:F0} s on {conditions.Processors} processors; load average (1, 5, 15 min) {conditions.LoadBefore} before, {conditions.LoadAfter} after.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Throughput trigger: alpha {trigger.Alpha}, ratio {trigger.TriggerRatio}, sample interval {trigger.SampleInterval.TotalMilliseconds} ms, {trigger.ConsecutiveSamples} consecutive sample(s) below the threshold, minimum observation window {trigger.MinObservationWindow.TotalMilliseconds} ms.").AppendLine();
        md.AppendLine("Every download is checked byte for byte. Effective throughput is the stream length over the time from connecting to the last byte.");
        md.AppendLine("The best rate is the median of the downloads from a server that never degrades, in the same experiment, the repetitions of all runs");
        md.AppendLine("interleaved so that the machine's other load falls on all alike; each run's fraction of best");
        md.AppendLine(CultureInfo.InvariantCulture, $"is its repetition of median duration, with the range over all repetitions ({string.Join(", ", profiles.Select(p => $"{p.Name}: {p.Repetitions}"))}).");
        md.AppendLine("Plots: `stream.png`/`.svg` (256 KB), `stream-long.png`/`.svg`.").AppendLine();
        md.AppendLine("| stream | run | state | time (s) | MB/s | fraction of best (median) | range | fraction of configured rate | migrations | early migrations (all repetitions) | mean client wait per migration (ms) | verified |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            var m = r.Median;
            md.AppendLine(CultureInfo.InvariantCulture, $"| {r.StreamBytes / 1024:N0} KB | {Label(r)} | {r.StateBytes / 1024} KB | {m.Seconds:F3} | {m.EffectiveMBps:F3} | {m.FractionOfBest:P1} | {r.MinFraction:P1} - {r.MaxFraction:P1} | {r.FractionOfNominal:P1} | {m.Migrations}{(m.FailedMigrations > 0 ? $" (+{m.FailedMigrations} failed)" : string.Empty)} | {r.Repetitions.Sum(x => x.Breakdown.EarlyMigrations)} | {Ms(r.MigrationWaitsMs.DefaultIfEmpty(double.NaN).Average())} | {(r.Verified ? "yes" : "NO")} |");
        }

        md.AppendLine().AppendLine("## Where the time goes").AppendLine();
        md.AppendLine("Every download against the configured rate of an undegraded server (which a loaded host may not reach): *lost* is its time less");
        md.AppendLine("length / configured rate, charged to the span it fell in: on a server after it began to degrade until the decision to leave it");
        md.AppendLine("(*degraded*), from a decision until the next server served (*migrating*, negative when bytes already in flight arrive meanwhile), or");
        md.AppendLine("elsewhere (*other*: connecting, host stalls and timer lateness on undegraded servers). *Early* migrations were decided before the server");
        md.AppendLine("degraded (a stall taken for degradation). *Detection* is the mean time from a server's degradation to the decision to leave it.").AppendLine();
        md.AppendLine("| stream | run | state | time (s) | fraction | migrations | early | client wait (ms, mean) | decision to next server serving (ms, mean) | on degraded servers (s) | detection (ms, mean) | lost (ms) | degraded | migrating | other | after last migration (s) |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results.Where(r => r.Degrading))
        {
            foreach (var x in r.Repetitions)
            {
                var b = x.Breakdown;
                md.AppendLine(CultureInfo.InvariantCulture, $"| {r.StreamBytes / 1024:N0} KB | {Label(r)} | {r.StateBytes / 1024} KB | {x.Seconds:F3} | {x.FractionOfBest:P1} | {x.Migrations} | {b.EarlyMigrations} | {Ms(x.MigrationWaitsMs.DefaultIfEmpty(double.NaN).Average())} | {Ms(x.MeanMigratingMs)} | {b.DegradedSeconds:F3} | {Ms(b.MeanDetectionMs)} | {b.LostSeconds * 1000:F0} | {b.LostDegradedSeconds * 1000:F0} | {b.LostMigratingSeconds * 1000:F0} | {b.LostOtherSeconds * 1000:F0} | {b.AfterLastMigrationSeconds:F3} |");
            }
        }

        AppendStateSizeOrdering(md, profiles, results);
        await File.WriteAllTextAsync(Path.Combine(directory, "stream.md"), md.ToString());

        var json = new
        {
            benchmark = "stream",
            transport = conditions.Transport,
            servers = conditions.Servers,
            seconds = conditions.Seconds,
            processors = conditions.Processors,
            loadAverageBefore = conditions.LoadBefore,
            loadAverageAfter = conditions.LoadAfter,
            trigger = new { alpha = trigger.Alpha, triggerRatio = trigger.TriggerRatio, sampleIntervalMs = trigger.SampleInterval.TotalMilliseconds, consecutiveSamples = trigger.ConsecutiveSamples, minObservationWindowMs = trigger.MinObservationWindow.TotalMilliseconds },
            profiles = profiles.Select(p => new { name = p.Name, streamBytes = p.Length, repetitions = p.Repetitions, bestRate = p.Curve.BestRate, degradeAfter = p.Curve.DegradeAfter, slowdownPerChunk = p.Curve.SlowdownPerChunk, maxSlowdown = p.Curve.MaxSlowdown }),
            runs = results.Select(r => new
            {
                profile = r.Profile,
                streamBytes = r.StreamBytes,
                policy = r.Policy,
                degrading = r.Degrading,
                stateBytes = r.StateBytes,
                seconds = r.Median.Seconds,
                effectiveMBps = r.Median.EffectiveMBps,
                effectiveFractionOfBest = r.Median.FractionOfBest,
                minFractionOfBest = r.MinFraction,
                maxFractionOfBest = r.MaxFraction,
                fractionOfConfiguredRate = r.FractionOfNominal,
                migrations = r.Median.Migrations,
                migrationWaitsMs = r.MigrationWaitsMs,
                verified = r.Verified,
                repetitions = r.Repetitions.Select(x => new
                {
                    seconds = x.Seconds,
                    effectiveMBps = x.EffectiveMBps,
                    effectiveFractionOfBest = x.FractionOfBest,
                    migrations = x.Migrations,
                    failedMigrations = x.FailedMigrations,
                    earlyMigrations = x.Breakdown.EarlyMigrations,
                    migrationWaitsMs = x.MigrationWaitsMs,
                    meanDecisionToServingMs = Nullable(x.MeanMigratingMs),
                    degradedSeconds = x.Breakdown.DegradedSeconds,
                    meanDetectionMs = Nullable(x.Breakdown.MeanDetectionMs),
                    lostSeconds = x.Breakdown.LostSeconds,
                    lostDegradedSeconds = x.Breakdown.LostDegradedSeconds,
                    lostMigratingSeconds = x.Breakdown.LostMigratingSeconds,
                    lostOtherSeconds = x.Breakdown.LostOtherSeconds,
                    afterLastMigrationSeconds = x.Breakdown.AfterLastMigrationSeconds,
                    verified = x.Verified,
                }),
                trace = new { seconds = r.Median.TraceSeconds, bytes = r.Median.TraceBytes },
            }),
        };
        await File.WriteAllTextAsync(Path.Combine(directory, "stream.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {directory}/stream.md, stream.json, stream.png, stream.svg, stream-long.png, stream-long.svg ({conditions.Seconds:F0} s, load average {conditions.LoadAfter})");
    }

    private static double? Nullable(double value) => double.IsNaN(value) ? null : value;

    /// <summary>
    /// Thesis 5.3.2 orders the runs by state size because state transfer and snapshot time grow with it. Here the cost of a
    /// migration per state size is measured, and the gap it can make in the fraction of best is set against the spread of
    /// the repetitions.
    /// </summary>
    private static void AppendStateSizeOrdering(StringBuilder md, StreamProfile[] profiles, List<StreamRunResult> results)
    {
        md.AppendLine().AppendLine("## Migration time by state size, and the ordering of fig. 5.4").AppendLine();
        md.AppendLine("| stream | state | migrations (all repetitions) | client wait, median (ms) | client wait, mean (ms) | decision to next server serving, mean (ms) | snapshot, mean (us) | snapshot time per download (ms) | gen-0 / gen-1 / gen-2 collections per download | fraction of best (median) | range |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results.Where(r => r.Policy == "throughput"))
        {
            var waits = r.MigrationWaitsMs;
            var migrating = r.Repetitions.Where(x => x.Migrations > 0).Select(x => x.MeanMigratingMs).DefaultIfEmpty(double.NaN).Average();
            var costs = r.Repetitions.Select(x => x.Costs).ToList();
            md.AppendLine(CultureInfo.InvariantCulture, $"| {r.StreamBytes / 1024:N0} KB | {r.StateBytes / 1024} KB | {waits.Length} | {Ms(waits.Length > 0 ? waits[waits.Length / 2] : double.NaN)} | {Ms(waits.DefaultIfEmpty(double.NaN).Average())} | {Ms(migrating)} | {costs.Sum(c => c.SnapshotSeconds) / costs.Sum(c => c.Snapshots) * 1e6:F2} | {costs.Average(c => c.SnapshotSeconds) * 1000:F1} | {costs.Average(c => c.Gen0Collections):F0} / {costs.Average(c => c.Gen1Collections):F0} / {costs.Average(c => c.Gen2Collections):F1} | {r.Median.FractionOfBest:P1} | {r.MinFraction:P1} - {r.MaxFraction:P1} |");
        }

        md.AppendLine();
        foreach (var profile in profiles)
        {
            var runs = results.Where(r => r.Profile == profile.Name && r.Policy == "throughput").OrderBy(r => r.StateBytes).ToList();
            var best = results.First(r => r.Profile == profile.Name && !r.Degrading).Median.Seconds;
            if (runs.Count < 2 || runs[0].MigrationWaitsMs.Length == 0 || runs[^1].MigrationWaitsMs.Length == 0)
            {
                continue;
            }

            // Medians: a host stall during one migration would swamp a mean; the noise is the median distance of a
            // repetition from its run's median, for the same reason.
            var (small, large) = (runs[0], runs[^1]);
            var smallMs = small.MigrationWaitsMs[small.MigrationWaitsMs.Length / 2];
            var largeMs = large.MigrationWaitsMs[large.MigrationWaitsMs.Length / 2];
            var migrations = large.Repetitions.Average(x => x.Migrations);
            var migrationGap = Math.Abs(largeMs - smallMs) / 1000 * migrations / best;
            var snapshotGap = (large.Repetitions.Average(x => x.Costs.SnapshotSeconds) - small.Repetitions.Average(x => x.Costs.SnapshotSeconds)) / best;
            var deviations = runs.SelectMany(r => r.Repetitions.Select(x => Math.Abs(x.FractionOfBest - r.Median.FractionOfBest))).Order().ToArray();
            var noise = deviations[deviations.Length / 2];
            var fractions = runs.Select(r => r.Median.FractionOfBest).ToArray();
            var ordered = fractions.Zip(fractions.Skip(1)).All(pair => pair.First >= pair.Second);
            var observedGap = fractions[0] - fractions[^1];
            var visible = ordered && observedGap > noise;
            md.AppendLine(CultureInfo.InvariantCulture, $"{profile.Length / 1024:N0} KB stream: fraction of best {string.Join(", ", runs.Select(r => $"{r.Median.FractionOfBest:P1} at {r.StateBytes / 1024} KB"))}: {(ordered ? "in the thesis's order" : "not in the thesis's order")}, {small.StateBytes / 1024} KB ahead of {large.StateBytes / 1024} KB by {observedGap:P1}");
            md.AppendLine(CultureInfo.InvariantCulture, $"against a noise of {noise:P1} (median distance of a repetition from its run's median): the ordering is {(visible ? "visible" : "not visible")} here.");
            md.AppendLine(CultureInfo.InvariantCulture, $"The median client wait per migration is {smallMs:F2} ms at {small.StateBytes / 1024} KB and {largeMs:F2} ms at {large.StateBytes / 1024} KB, worth {migrationGap:P2} at {migrations:F1} migrations per download of {best:F2} s;");
            md.AppendLine(CultureInfo.InvariantCulture, $"the servers' snapshots take {snapshotGap * best * 1000:F1} ms more per download ({snapshotGap:P2} if none were hidden by the pacing), and the process runs {large.Repetitions.Average(x => x.Costs.Gen0Collections):F0} gen-0 collections per download at {large.StateBytes / 1024} KB against {small.Repetitions.Average(x => x.Costs.Gen0Collections):F0} at {small.StateBytes / 1024} KB.");
            md.AppendLine();
        }

        md.AppendLine("On loopback a migration costs about the same at every state size. The snapshot after every chunk does not: each `ExportState` copies");
        md.AppendLine("the whole state into a new array, so a 16 KB state allocates 16 bytes per byte streamed; on a busy host that CPU and collector time");
        md.AppendLine("slows the servers, which is the thesis's second reason (5.3.2: \"the time to take a snapshot is directly related to the size of the");
        md.AppendLine("application state\"). The thesis's first reason, state transfer time, was large on its testbed (5.1: 450 MHz machines, state over a");
        md.AppendLine("dedicated 100 Mbps link; fig. 5.2: the migration wait grew from 0.49 ms at no state to 1.52 ms at 10 KB) and is small here.");
    }

    private sealed record StreamProfile(string Name, long Length, int Repetitions, DegradationCurve Curve);

    private sealed record StreamConditions(string Transport, int Servers, string LoadBefore, string LoadAfter, double Seconds, int Processors);

    /// <summary>What one download recorded, before it is set against the best rate.</summary>
    private sealed record StreamDownload(
        double Seconds,
        long Received,
        bool Verified,
        double[] MigrationWaitsMs,
        int FailedMigrations,
        double[] Decisions,
        VisitTimes[] Visits,
        StreamCosts Costs,
        List<double> Times,
        List<long> Offsets)
    {
        public double BytesPerSecond => Received / Seconds;

        /// <summary>The download against the measured best rate (its fraction of best) and the configured one (where its time went).</summary>
        public StreamRepetition Measure(double bestBytesPerSecond, double configuredBytesPerSecond)
        {
            var (traceSeconds, traceBytes) = Thin(Times, Offsets);
            return new StreamRepetition(
                Seconds,
                BytesPerSecond / 1e6,
                BytesPerSecond / bestBytesPerSecond,
                MigrationWaitsMs.Length,
                FailedMigrations,
                MigrationWaitsMs,
                StreamBreakdown.Of(Visits, Decisions, Times, Offsets, Seconds, configuredBytesPerSecond),
                Costs,
                Verified,
                traceSeconds,
                traceBytes);
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Configuration;
using Mtcp.Actors;
using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Policies;

namespace Mtcp.Bench;

internal sealed record StreamOptions(long? Bytes, string? Transport);

/// <summary>One run of the experiment: its profile, policy, state size and what the client saw.</summary>
internal sealed record StreamRunResult(
    string Profile,
    long StreamBytes,
    string Policy,
    bool Degrading,
    int StateBytes,
    double Seconds,
    double EffectiveMBps,
    double EffectiveFractionOfBest,
    int Migrations,
    int FailedMigrations,
    double MedianMigrationMs,
    double[] MigrationWaitsMs,
    bool Verified,
    double[] TraceSeconds,
    long[] TraceBytes)
{
    /// <summary>The durations of every repetition of this run.</summary>
    public double[] RepetitionSeconds { get; init; } = [];
}

/// <summary>
/// The stream-server experiment of thesis 5.3.2 (fig. 5.4). Server nodes serve the same stream in 1 KB chunks,
/// exporting the chunk number (padded to the run's state size) after every chunk, and degrade gradually after a
/// threshold in each visit. The client downloads it from an undegraded server (the best rate), without migration, and with
/// the throughput policy per state size, each a configured number of times; each download is checked byte for byte. It plots
/// the relative sequence number against time for all runs and reports each run's effective throughput as a
/// fraction of the best rate.
/// </summary>
internal static class StreamBenchmark
{
    private const string Section = "mtcp.bench.stream";
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

        var policy = ClientPolicySettings.Create(MtcpConfig.WithFallback(config));
        Console.WriteLine($"stream: {servers} servers over {transport}, {chunkSize}-byte chunks, state sizes [{string.Join(", ", stateSizes)}] bytes");
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
            await DownloadAsync(cluster, warmUp, policy, degrading: false, stateSizes[0], best: null, warmUpTimeout.Token, migrateOnce: true);
        }

        foreach (var profile in profiles)
        {
            Console.WriteLine($"{profile.Name}: {profile.Length:N0} bytes, best rate {profile.Curve.BestRate / 1e6:F3} MB/s, degrading after {profile.Curve.DegradeAfter} chunks by {profile.Curve.SlowdownPerChunk} per chunk up to x{profile.Curve.MaxSlowdown}");
            var runs = new List<(string Policy, bool Degrading, int StateBytes)> { ("none", false, stateSizes[0]), ("none", true, stateSizes[0]) };
            runs.AddRange(stateSizes.Select(size => ("throughput", true, size)));
            double? best = null;
            foreach (var (name, degrading, stateBytes) in runs)
            {
                cluster.Run = new StreamRun(profile.Length, stateBytes, degrading ? profile.Curve : DegradationCurve.None(chunkSize, profile.Curve.BestRate));
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(runTimeout);
                var repetitions = new List<StreamRunResult>();
                for (var i = 0; i < profile.Repetitions; i++)
                {
                    repetitions.Add(await DownloadAsync(cluster, profile, name == "throughput" ? policy : null, degrading, stateBytes, best, timeout.Token));
                }

                // The repetition of median duration stands for the run (its trace is plotted); all durations are reported.
                var result = repetitions.OrderBy(r => r.Seconds).ElementAt(repetitions.Count / 2) with
                {
                    Verified = repetitions.All(r => r.Verified),
                    RepetitionSeconds = repetitions.Select(r => r.Seconds).ToArray(),
                };
                best ??= result.EffectiveMBps;
                results.Add(result);
                Console.WriteLine($"  {Label(result),-34} {result.Seconds,8:F3} s {result.EffectiveMBps,9:F3} MB/s  {result.EffectiveFractionOfBest,6:P1} of best  {result.Migrations} migrations (median {result.MedianMigrationMs:F2} ms){(result.FailedMigrations > 0 ? $" ({result.FailedMigrations} failed)" : string.Empty)}  {(result.Verified ? "verified" : "NOT VERIFIED")}");
            }
        }

        await WriteArtifactsAsync(transport, servers, profiles, results);
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

    private static async Task<StreamRunResult> DownloadAsync(StreamCluster cluster, StreamProfile profile, ClientPolicySettings? policy, bool degrading, int stateBytes, double? best, CancellationToken cancellationToken, bool migrateOnce = false)
    {
        using var client = new MtcpClient(cluster.ClientRuntime);
        var waits = new List<double>();
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

        var started = Stopwatch.GetTimestamp();
        var connection = await client.ConnectAsync(StreamCluster.EndPoint(cluster.Services[0]), cancellationToken);
        await using var driver = policy is null ? null : ClientPolicyDriver.Start(cluster.ClientSystem, client, policy, cluster.Services);
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
        var effective = received / seconds / 1e6;
        var (traceSeconds, traceBytes) = Thin(times, offsets);
        double[] completed;
        lock (waits)
        {
            completed = waits.Order().ToArray();
        }

        return new StreamRunResult(
            profile.Name,
            profile.Length,
            policy is null ? "none" : "throughput",
            degrading,
            stateBytes,
            seconds,
            effective,
            effective / (best ?? effective),
            completed.Length,
            Volatile.Read(ref failed),
            completed.Length == 0 ? double.NaN : completed[completed.Length / 2],
            completed,
            verified && received == profile.Length,
            traceSeconds,
            traceBytes);
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

    private static string Label(StreamRunResult run) => run switch
    {
        { Degrading: false } => "best server (no degradation)",
        { Policy: "none" } => $"no migration (state {run.StateBytes / 1024} KB)",
        _ => $"throughput policy, state {run.StateBytes / 1024} KB",
    };

    private static async Task WriteArtifactsAsync(string transport, int servers, StreamProfile[] profiles, List<StreamRunResult> results)
    {
        var directory = Path.Combine("artifacts", "bench");
        Directory.CreateDirectory(directory);
        foreach (var profile in profiles)
        {
            var name = profile.Name == "thesis" ? "stream" : $"stream-{profile.Name}";
            StreamPlot.Save(Path.Combine(directory, name), $"Stream server experiment: {profile.Length / 1024:N0} KB download, {servers} servers over {transport} (cf. thesis fig. 5.4)", results.Where(r => r.Profile == profile.Name).ToList(), Label);
        }

        var md = new StringBuilder();
        md.AppendLine("# Stream-server experiment (thesis 5.3.2, fig. 5.4)").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"`dotnet run -c Release --project Hosts/Mtcp.Bench -- stream`: {servers} server nodes over the {transport} transport, configuration `HOCON/bench-stream.conf`.");
        md.AppendLine("Every download is checked byte for byte. Effective throughput is the stream length over the time from connecting to the last byte;");
        md.AppendLine(CultureInfo.InvariantCulture, $"each run is repeated ({string.Join(", ", profiles.Select(p => $"{p.Name}: {p.Repetitions}x"))}) and the repetition of median duration reported;");
        md.AppendLine("the best rate is the same download from a server that never degrades. Plots: `stream.png`/`.svg` (256 KB), `stream-long.png`/`.svg`.").AppendLine();
        md.AppendLine("| stream | run | state | time (s) (all repetitions) | MB/s | fraction of best | migrations | median client wait per migration (ms) | verified |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {r.StreamBytes / 1024:N0} KB | {Label(r)} | {r.StateBytes / 1024} KB | {r.Seconds:F3} ({string.Join(", ", r.RepetitionSeconds.Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))}) | {r.EffectiveMBps:F3} | {r.EffectiveFractionOfBest:P1} | {r.Migrations}{(r.FailedMigrations > 0 ? $" (+{r.FailedMigrations} failed)" : string.Empty)} | {(r.Migrations > 0 ? r.MedianMigrationMs.ToString("F2", CultureInfo.InvariantCulture) : "-")} | {(r.Verified ? "yes" : "NO")} |");
        }

        // What a migration costs at each state size, over every migration of every run: the source of the thesis's
        // ordering (2 KB ahead of 10 KB ahead of 16 KB).
        md.AppendLine().AppendLine("Client wait per migration (special SYN to switch) by application state size, over all runs with migration:").AppendLine();
        md.AppendLine("| state | migrations | median (ms) | mean (ms) |");
        md.AppendLine("|---:|---:|---:|---:|");
        foreach (var group in results.Where(r => r.Policy == "throughput").GroupBy(r => r.StateBytes).OrderBy(g => g.Key))
        {
            var waits = group.SelectMany(r => r.MigrationWaitsMs).Order().ToArray();
            if (waits.Length > 0)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {group.Key / 1024} KB | {waits.Length} | {waits[waits.Length / 2]:F2} | {waits.Average():F2} |");
            }
        }

        await File.WriteAllTextAsync(Path.Combine(directory, "stream.md"), md.ToString());
        var json = new
        {
            benchmark = "stream",
            transport,
            servers,
            profiles = profiles.Select(p => new { name = p.Name, streamBytes = p.Length, bestRate = p.Curve.BestRate, degradeAfter = p.Curve.DegradeAfter, slowdownPerChunk = p.Curve.SlowdownPerChunk, maxSlowdown = p.Curve.MaxSlowdown }),
            runs = results.Select(r => new
            {
                profile = r.Profile,
                streamBytes = r.StreamBytes,
                policy = r.Policy,
                degrading = r.Degrading,
                stateBytes = r.StateBytes,
                seconds = r.Seconds,
                repetitionSeconds = r.RepetitionSeconds,
                effectiveMBps = r.EffectiveMBps,
                effectiveFractionOfBest = r.EffectiveFractionOfBest,
                migrations = r.Migrations,
                failedMigrations = r.FailedMigrations,
                medianMigrationMs = r.Migrations > 0 ? r.MedianMigrationMs : (double?)null,
                migrationWaitsMs = r.MigrationWaitsMs,
                verified = r.Verified,
                trace = new { seconds = r.TraceSeconds, bytes = r.TraceBytes },
            }),
        };
        await File.WriteAllTextAsync(Path.Combine(directory, "stream.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {directory}/stream.md, stream.json, stream.png, stream.svg, stream-long.png, stream-long.svg");
    }

    private sealed record StreamProfile(string Name, long Length, int Repetitions, DegradationCurve Curve);
}

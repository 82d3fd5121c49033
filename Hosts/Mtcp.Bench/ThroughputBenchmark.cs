using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Transports;

namespace Mtcp.Bench;

internal sealed record ThroughputOptions(long Bytes, int Runs, string[] Transports);

/// <summary>
/// One transport's result: MTCP and kernel TCP medians from the same run, in MB/s (10^6 bytes), their ratio, and the
/// median of the per-round ratios (each MTCP run over the kernel run of the same round, seconds apart), which a change
/// of machine load between rounds disturbs less than the ratio of medians.
/// </summary>
internal sealed record TransportThroughput(string Transport, double MtcpMBps, double KernelTcpMBps, double Ratio, double[] MtcpRunsMBps, double PairedRatioMedian, double[] PairedRatios, double MtcpCpuSecondsPerGB, double KernelTcpCpuSecondsPerGB);

/// <summary>
/// One run: wall-clock time of the transfer and the CPU time the whole process spent meanwhile (both ends, all threads);
/// for MTCP also the segments each end received (data at the server, ACKs and window updates at the client).
/// </summary>
internal readonly record struct TransferTime(TimeSpan Elapsed, TimeSpan Cpu, long SegmentsToServer = 0, long SegmentsToClient = 0);

/// <summary>
/// Moves N bytes from a client to a server over one connection, several times per MTCP transport and over the
/// kernel's TCP on loopback, and reports medians and the ratio. Both ends run in this process, as the kernel TCP
/// baseline does, so both pay for the same two cores.
/// </summary>
internal static class ThroughputBenchmark
{
    private const int ChunkSize = 256 * 1024;
    private const ushort ServicePort = 9000;

    public static async Task<int> RunAsync(ThroughputOptions options, CancellationToken cancellationToken)
    {
        if (options.Bytes <= 0 || options.Runs <= 0)
        {
            await Console.Error.WriteLineAsync("--bytes and --runs must be positive");
            return 2;
        }

        Console.WriteLine($"throughput: {options.Bytes:N0} bytes per run, {options.Runs} runs per transport, chunk {ChunkSize:N0} bytes");
        var config = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "HOCON", "bench-throughput.conf")));
        var series = new List<Series> { new("kernel TCP", () => KernelTcpRunAsync(options.Bytes, cancellationToken)) };
        foreach (var transport in options.Transports)
        {
            if (transport == "raw" && !RawSocketsPermitted(out var why))
            {
                Console.WriteLine($"raw: skipped ({why})");
                continue;
            }

            series.Add(new Series(transport, () => MtcpRunAsync(config, transport, options.Bytes, cancellationToken)));
        }

        // One unmeasured warm-up run each (JIT, socket buffers), then the runs interleaved (kernel, each transport,
        // again), so that load from anything else on the machine falls on every series alike.
        foreach (var s in series)
        {
            await s.Run();
        }

        var gen0 = GC.CollectionCount(0);
        for (var i = 0; i < options.Runs; i++)
        {
            foreach (var s in series)
            {
                var run = await s.Run();
                s.MBps.Add(options.Bytes / run.Elapsed.TotalSeconds / 1e6);
                s.CpuSecondsPerGB.Add(run.Cpu.TotalSeconds / (options.Bytes / 1e9));
                s.SegmentsToServer.Add(run.SegmentsToServer);
                s.SegmentsToClient.Add(run.SegmentsToClient);
            }
        }

        foreach (var s in series)
        {
            Console.WriteLine($"{s.Name,-12} median {Statistics.Median(s.MBps),9:F1} MB/s  runs [{string.Join(", ", s.MBps.Select(v => v.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))}]  CPU {Statistics.Median(s.CpuSecondsPerGB):F3} s/GB"
                + (s.SegmentsToServer.Sum() > 0 ? $"  segments per run: {s.SegmentsToServer.Average():F0} to the server, {s.SegmentsToClient.Average():F0} to the client" : string.Empty));
        }

        Console.WriteLine($"gen0 collections per round of runs (all series): {(double)(GC.CollectionCount(0) - gen0) / options.Runs:F1}");
        var kernel = series[0].MBps.ToArray();
        var kernelMedian = Statistics.Median(kernel);
        var results = series.Skip(1)
            .Select(s =>
            {
                var paired = s.MBps.Zip(kernel, (mtcp, tcp) => mtcp / tcp).ToArray();
                return new TransportThroughput(s.Name, Statistics.Median(s.MBps), kernelMedian, Statistics.Median(s.MBps) / kernelMedian, s.MBps.ToArray(), Statistics.Median(paired), paired, Statistics.Median(s.CpuSecondsPerGB), Statistics.Median(series[0].CpuSecondsPerGB));
            })
            .ToList();
        await WriteArtifactsAsync(options, kernel, results);
        return 0;
    }

    private sealed record Series(string Name, Func<Task<TransferTime>> Run)
    {
        public List<double> MBps { get; } = [];

        /// <summary>CPU seconds per 10^9 bytes moved: what a run costs, which load from other processes disturbs less than its wall-clock time.</summary>
        public List<double> CpuSecondsPerGB { get; } = [];

        public List<long> SegmentsToServer { get; } = [];

        public List<long> SegmentsToClient { get; } = [];
    }

    private static async Task<TransferTime> MtcpRunAsync(Config benchConfig, string transport, long bytes, CancellationToken cancellationToken)
    {
        var system = ActorSystem.Create("bench", MtcpConfig.WithFallback(benchConfig));
        var fabric = transport == "memory" ? new InMemoryPacketFabric() : null;
        try
        {
            await using var server = MtcpRuntime.Start(system, fabric, NodeConfig(transport, "127.0.0.2"), "server");
            await using var client = MtcpRuntime.Start(system, fabric, NodeConfig(transport, "127.0.0.3"), "client");
            await using var listener = new MtcpListener(server, ServicePort);
            await listener.StartAsync(cancellationToken);
            var accepting = listener.AcceptAsync(cancellationToken);
            using var mtcpClient = new MtcpClient(client);
            var stream = await mtcpClient.ConnectAsync(new IPEndPoint(IPAddress.Parse("127.0.0.2"), ServicePort), cancellationToken);
            await using var connection = await accepting;
            var serverBefore = (await server.GetStatisticsAsync(cancellationToken)).SegmentsReceived;
            var clientBefore = (await client.GetStatisticsAsync(cancellationToken)).SegmentsReceived;
            var run = await TransferAsync(stream, connection.Stream, bytes, cancellationToken);
            return run with
            {
                SegmentsToServer = (await server.GetStatisticsAsync(cancellationToken)).SegmentsReceived - serverBefore,
                SegmentsToClient = (await client.GetStatisticsAsync(cancellationToken)).SegmentsReceived - clientBefore,
            };
        }
        finally
        {
            await system.Terminate();
        }
    }

    private static Config NodeConfig(string transport, string address) =>
        ConfigurationFactory.ParseString($"mtcp.runtime.transport = {transport}\nmtcp.runtime.local-address = \"{address}\"");

    private static async Task<TransferTime> KernelTcpRunAsync(long bytes, CancellationToken cancellationToken)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, cancellationToken);
        using var accepted = await listener.AcceptTcpClientAsync(cancellationToken);
        return await TransferAsync(client.GetStream(), accepted.GetStream(), bytes, cancellationToken);
    }

    /// <summary>Writes from one stream while the other reads; the clocks stop when the last byte was read.</summary>
    internal static async Task<TransferTime> TransferAsync(Stream writer, Stream reader, long bytes, CancellationToken cancellationToken)
    {
        var cpu = Environment.CpuUsage.TotalTime;
        var clock = Stopwatch.StartNew();
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[ChunkSize];
            long total = 0;
            while (total < bytes)
            {
                var read = await reader.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, bytes - total)), cancellationToken);
                if (read == 0)
                {
                    throw new IOException($"the stream ended after {total} of {bytes} bytes");
                }

                total += read;
            }
        }, cancellationToken);

        var chunk = new byte[ChunkSize];
        Random.Shared.NextBytes(chunk);
        for (long sent = 0; sent < bytes; sent += chunk.Length)
        {
            await writer.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, bytes - sent)), cancellationToken);
        }

        await reading;
        return new TransferTime(clock.Elapsed, Environment.CpuUsage.TotalTime - cpu);
    }

    private static bool RawSocketsPermitted(out string why)
    {
        try
        {
            RawIPv4Transport.OpenExperimental(Mtcp.Wire.IpAddress.Parse("127.0.0.2")).Dispose();
            why = string.Empty;
            return true;
        }
        catch (InsufficientPrivilegeException e)
        {
            why = e.Message;
            return false;
        }
    }

    private static async Task WriteArtifactsAsync(ThroughputOptions options, double[] kernel, List<TransportThroughput> results)
    {
        var directory = Path.Combine(BenchPaths.RepositoryRoot(), "artifacts", "bench");
        Directory.CreateDirectory(directory);
        var json = JsonSerializer.Serialize(
            new { bytes = options.Bytes, runs = options.Runs, chunkBytes = ChunkSize, kernelTcpMBps = Statistics.Median(kernel), kernelTcpRunsMBps = kernel, transports = results },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        await File.WriteAllTextAsync(Path.Combine(directory, "throughput.json"), json);

        var table = new System.Text.StringBuilder();
        table.AppendLine("# Throughput: one connection on loopback");
        table.AppendLine();
        table.AppendLine($"{options.Bytes:N0} bytes client to server per run; median of {options.Runs} runs after one warm-up each; MB = 10^6 bytes.");
        table.AppendLine("Kernel TCP measured in the same process and run, its runs interleaved with the MTCP runs.");
        table.AppendLine();
        table.AppendLine("Per-round ratio: each MTCP run over the kernel TCP run of the same round; median and range over the rounds.");
        table.AppendLine();
        table.AppendLine("CPU s/GB: CPU time of the whole process (both ends) per 10^9 bytes, median over the runs; on a shared machine it varies less than MB/s.");
        table.AppendLine();
        table.AppendLine("| transport | MTCP MB/s | kernel TCP MB/s | MTCP / kernel | per-round ratio, median | range | MTCP CPU s/GB | kernel TCP CPU s/GB |");
        table.AppendLine("|---|---:|---:|---:|---:|---|---:|---:|");
        foreach (var r in results)
        {
            table.AppendLine(System.FormattableString.Invariant($"| {r.Transport} | {r.MtcpMBps:F1} | {r.KernelTcpMBps:F1} | {r.Ratio:F3} | {r.PairedRatioMedian:F3} | {r.PairedRatios.Min():F3}-{r.PairedRatios.Max():F3} | {r.MtcpCpuSecondsPerGB:F3} | {r.KernelTcpCpuSecondsPerGB:F3} |"));
        }

        await File.WriteAllTextAsync(Path.Combine(directory, "throughput.md"), table.ToString());
        Console.WriteLine();
        Console.Write(table);
        Console.WriteLine($"written to {directory}");
    }
}

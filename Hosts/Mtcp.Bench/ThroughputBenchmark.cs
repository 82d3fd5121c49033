using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;

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
/// baseline does, so both pay for the same two cores. The IPv6 rows (<c>raw-ipv6</c>, <c>udp-ipv6</c>) run on the
/// loopback of a network namespace of their own, which holds two IPv6 addresses (the host's loopback has only ::1, and
/// each node needs its own address), against kernel TCP over IPv6 between the same two addresses.
/// </summary>
internal static class ThroughputBenchmark
{
    private const int ChunkSize = 256 * 1024;
    private const ushort ServicePort = 9000;
    private const string IPv6Suffix = "-ipv6";

    // One /64 of the unique local range (RFC 4193), on the namespace's loopback.
    private static readonly IpAddress ServerIPv6 = IpAddress.Parse("fd00:6d74::2");
    private static readonly IpAddress ClientIPv6 = IpAddress.Parse("fd00:6d74::3");

    public static async Task<int> RunAsync(ThroughputOptions options, CancellationToken cancellationToken)
    {
        if (options.Bytes <= 0 || options.Runs <= 0)
        {
            await Console.Error.WriteLineAsync("--bytes and --runs must be positive");
            return 2;
        }

        Console.WriteLine($"throughput: {options.Bytes:N0} bytes per run, {options.Runs} runs per transport, chunk {ChunkSize:N0} bytes");
        var config = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "HOCON", "bench-throughput.conf")));
        var kernelTcp = new Series("kernel TCP", () => KernelTcpRunAsync(options.Bytes, null, cancellationToken), Baseline: null);
        var series = new List<Series> { kernelTcp };
        var ipv6Why = string.Empty;
        using var ipv6Loopback = options.Transports.Any(t => t.EndsWith(IPv6Suffix, StringComparison.Ordinal)) ? OpenIPv6Loopback(out ipv6Why) : null;
        var kernelTcpIPv6 = ipv6Loopback is null ? null : new Series("kernel TCP" + IPv6Suffix, () => KernelTcpRunAsync(options.Bytes, ipv6Loopback, cancellationToken), Baseline: null);
        if (kernelTcpIPv6 is not null)
        {
            series.Add(kernelTcpIPv6);
        }

        foreach (var transport in options.Transports)
        {
            var ipv6 = transport.EndsWith(IPv6Suffix, StringComparison.Ordinal);
            if (ipv6 && ipv6Loopback is null)
            {
                Console.WriteLine($"{transport}: skipped ({ipv6Why})");
                continue;
            }

            if (transport.StartsWith("raw", StringComparison.Ordinal) && !RawSocketsPermitted(out var why))
            {
                Console.WriteLine($"{transport}: skipped ({why})");
                continue;
            }

            series.Add(ipv6
                ? new Series(transport, () => MtcpIPv6RunAsync(config, ipv6Loopback!, transport[..^IPv6Suffix.Length], options.Bytes, cancellationToken), kernelTcpIPv6)
                : new Series(transport, () => MtcpRunAsync(config, transport, options.Bytes, cancellationToken), kernelTcp));
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
        var results = series.Where(s => s.Baseline is not null)
            .Select(s =>
            {
                // Each MTCP series against kernel TCP of its own family.
                var kernel = s.Baseline!.MBps;
                var kernelMedian = Statistics.Median(kernel);
                var paired = s.MBps.Zip(kernel, (mtcp, tcp) => mtcp / tcp).ToArray();
                return new TransportThroughput(s.Name, Statistics.Median(s.MBps), kernelMedian, Statistics.Median(s.MBps) / kernelMedian, s.MBps.ToArray(), Statistics.Median(paired), paired, Statistics.Median(s.CpuSecondsPerGB), Statistics.Median(s.Baseline.CpuSecondsPerGB));
            })
            .ToList();
        await WriteArtifactsAsync(options, kernelTcp.MBps.ToArray(), kernelTcpIPv6?.MBps.ToArray(), results);
        return 0;
    }

    /// <param name="Baseline">the kernel TCP series an MTCP series is compared with; null for a kernel TCP series.</param>
    private sealed record Series(string Name, Func<Task<TransferTime>> Run, Series? Baseline)
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
            return await ConnectAndTransferAsync(server, client, IPAddress.Parse("127.0.0.2"), bytes, cancellationToken);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// One MTCP run over IPv6 in <paramref name="loopback"/>: each node's transport opens inside the namespace (its socket
    /// stays there), with the sizes of the benchmark's configuration, and the runtimes run in this process as usual.
    /// </summary>
    private static async Task<TransferTime> MtcpIPv6RunAsync(Config benchConfig, NetworkNamespace loopback, string transport, long bytes, CancellationToken cancellationToken)
    {
        var system = ActorSystem.Create("bench", MtcpConfig.WithFallback(benchConfig));
        try
        {
            var settings = benchConfig.WithFallback(MtcpConfig.Reference);
            IPacketTransport Open(IpAddress address) => loopback.Run<IPacketTransport>(() => transport == "raw"
                ? RawIPTransport.OpenExperimental(address, new RawTransportOptions
                {
                    ReceiveBufferBytes = (int)settings.GetByteSize("mtcp.runtime.raw.receive-buffer-size")!.Value,
                    SendBufferBytes = (int)settings.GetByteSize("mtcp.runtime.raw.send-buffer-size")!.Value,
                })
                : UdpEncapsulationTransport.Open(
                    address,
                    (ushort)settings.GetInt("mtcp.runtime.udp.port"),
                    (ushort)settings.GetInt("mtcp.runtime.udp.peer-port"),
                    (int)settings.GetByteSize("mtcp.runtime.udp.socket-buffer-size")!.Value));

            await using var server = MtcpRuntime.Start(system, Open(ServerIPv6), NodeConfig(transport, ServerIPv6.ToString()), "server");
            await using var client = MtcpRuntime.Start(system, Open(ClientIPv6), NodeConfig(transport, ClientIPv6.ToString()), "client");
            return await ConnectAndTransferAsync(server, client, ServerIPv6.ToIPAddress(), bytes, cancellationToken);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>One connection from <paramref name="client"/> to <paramref name="server"/> at <paramref name="serverAddress"/>, one transfer, and the segments each end received meanwhile.</summary>
    private static async Task<TransferTime> ConnectAndTransferAsync(MtcpRuntime server, MtcpRuntime client, IPAddress serverAddress, long bytes, CancellationToken cancellationToken)
    {
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(cancellationToken);
        var accepting = listener.AcceptAsync(cancellationToken);
        using var mtcpClient = new MtcpClient(client);
        var stream = await mtcpClient.ConnectAsync(new IPEndPoint(serverAddress, ServicePort), cancellationToken);
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

    private static Config NodeConfig(string transport, string address) =>
        ConfigurationFactory.ParseString($"mtcp.runtime.transport = {transport}\nmtcp.runtime.local-address = \"{address}\"");

    /// <summary>Kernel TCP on the host's IPv4 loopback, or with <paramref name="ipv6Loopback"/> between its two IPv6 addresses.</summary>
    private static async Task<TransferTime> KernelTcpRunAsync(long bytes, NetworkNamespace? ipv6Loopback, CancellationToken cancellationToken)
    {
        var (listener, client) = ipv6Loopback is null
            ? (new TcpListener(IPAddress.Loopback, 0), new TcpClient { NoDelay = true })
            : ipv6Loopback.Run(() => (new TcpListener(ServerIPv6.ToIPAddress(), 0), new TcpClient(AddressFamily.InterNetworkV6) { NoDelay = true }));
        using (client)
        {
            listener.Start();
            try
            {
                await client.ConnectAsync(((IPEndPoint)listener.LocalEndpoint).Address, ((IPEndPoint)listener.LocalEndpoint).Port, cancellationToken);
                using var accepted = await listener.AcceptTcpClientAsync(cancellationToken);
                return await TransferAsync(client.GetStream(), accepted.GetStream(), bytes, cancellationToken);
            }
            finally
            {
                listener.Stop();
            }
        }
    }

    /// <summary>A namespace whose loopback holds <see cref="ServerIPv6"/> and <see cref="ClientIPv6"/>; null, with why, without root.</summary>
    private static NetworkNamespace? OpenIPv6Loopback(out string why)
    {
        if (Environment.UserName != "root")
        {
            why = "network namespaces need root";
            return null;
        }

        var loopback = NetworkNamespace.Create("bench6");
        foreach (var address in new[] { ServerIPv6, ClientIPv6 })
        {
            loopback.AddAddress("lo", address, 128);
        }

        why = string.Empty;
        return loopback;
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
            RawIPTransport.OpenExperimental(IpAddress.Parse("127.0.0.2")).Dispose();
            why = string.Empty;
            return true;
        }
        catch (InsufficientPrivilegeException e)
        {
            why = e.Message;
            return false;
        }
    }

    private static async Task WriteArtifactsAsync(ThroughputOptions options, double[] kernel, double[]? kernelIPv6, List<TransportThroughput> results)
    {
        var directory = Path.Combine(BenchPaths.RepositoryRoot(), "artifacts", "bench");
        Directory.CreateDirectory(directory);
        var json = JsonSerializer.Serialize(
            new
            {
                bytes = options.Bytes,
                runs = options.Runs,
                chunkBytes = ChunkSize,
                kernelTcpMBps = Statistics.Median(kernel),
                kernelTcpRunsMBps = kernel,
                kernelTcpIPv6MBps = kernelIPv6 is null ? (double?)null : Statistics.Median(kernelIPv6),
                kernelTcpIPv6RunsMBps = kernelIPv6,
                transports = results,
            },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        await File.WriteAllTextAsync(Path.Combine(directory, "throughput.json"), json);

        var table = new System.Text.StringBuilder();
        table.AppendLine("# Throughput: one connection on loopback");
        table.AppendLine();
        table.AppendLine($"{options.Bytes:N0} bytes client to server per run; median of {options.Runs} runs after one warm-up each; MB = 10^6 bytes.");
        table.AppendLine("Kernel TCP measured in the same process and run, its runs interleaved with the MTCP runs.");
        table.AppendLine("The -ipv6 rows run over IPv6 between two addresses on the loopback of a network namespace, against kernel TCP over IPv6 there.");
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

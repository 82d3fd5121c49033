using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;

namespace Mtcp.Bench;

/// <param name="NodeConfig">HOCON laid over the reference settings of both MTCP nodes; null: the reference settings.</param>
internal sealed record LossOptions(long Bytes, int Runs, double[] LossPercents, string? NodeConfig = null);

/// <summary>
/// One loss rate: the medians of MTCP's and kernel TCP's goodput (MB/s, 10^6 bytes) in the same namespaces and run,
/// their ratio, and the retransmission timeouts per MB moved (medians over the runs, both ends of the connection); the
/// median CPU time of this process per MB during MTCP's runs (both ends, the benchmark's streams included).
/// </summary>
internal sealed record LossRow(
    double LossPercent,
    double MtcpMBps,
    double KernelTcpMBps,
    double Ratio,
    double MtcpRtoPerMB,
    double KernelRtoPerMB,
    double MtcpCpuMsPerMB,
    double[] MtcpRunsMBps,
    double[] KernelTcpRunsMBps,
    long PacketsDropped);

/// <summary>
/// Goodput under random loss (issue 14): two network namespaces joined by a veth pair, nftables dropping a share of the
/// packets in both directions on one end (<see cref="PacketLoss"/>), one connection moving N bytes from the client
/// namespace to the server namespace, over MTCP (the runtime as shipped, raw IPv4 protocol 253, reference settings: the
/// MSS follows the veth's 1,500-byte MTU) and over kernel TCP with Linux's default settings, interleaved run by run.
/// Retransmission timeouts: MTCP's from the runtime's counter <c>mtcp.tcp.retransmission_timeouts</c>, the kernel's
/// from TcpExt TCPTimeouts of the two namespaces, both ends summed for both.
/// </summary>
internal static class LossBenchmark
{
    private const ushort ServicePort = 9000;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(5);
    private static long _mtcpTimeouts;

    public static async Task<int> RunAsync(LossOptions options, CancellationToken cancellationToken)
    {
        if (options.Bytes <= 0 || options.Runs <= 0 || options.LossPercents.Length == 0 || options.LossPercents.Any(p => p is < 0 or > 100))
        {
            await Console.Error.WriteLineAsync("--bytes and --runs must be positive, --loss one or more percentages from 0 to 100");
            return 2;
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("loss: needs root (network namespaces, nftables and raw sockets)");
            return 2;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"loss: {options.Bytes:N0} bytes per run, {options.Runs} runs per loss rate, loss {string.Join(", ", options.LossPercents)} % both ways"));
        using var meters = ListenToRetransmissionTimeouts();
        using var pair = VethNamespacePair.Create();
        Console.WriteLine($"namespaces: {pair}");
        var loadAtStart = LoadAverage();

        // One unmeasured run each without loss: JIT, socket buffers, ARP.
        await KernelRunAsync(pair, options.Bytes, cancellationToken);
        await MtcpRunAsync(pair, options, cancellationToken);

        var rows = new List<LossRow>();
        foreach (var percent in options.LossPercents)
        {
            using var loss = PacketLoss.InstallOnInterface(pair.A, VethNamespacePair.InterfaceName, percent, LossHooks.Both);
            var mtcp = new List<Run>();
            var kernel = new List<Run>();
            for (var i = 0; i < options.Runs; i++)
            {
                kernel.Add(await KernelRunAsync(pair, options.Bytes, cancellationToken));
                mtcp.Add(await MtcpRunAsync(pair, options, cancellationToken));
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{percent,4} % run {i + 1}: MTCP {mtcp[^1].MBps(options.Bytes),8:F2} MB/s, {mtcp[^1].CpuMsPerMB(options.Bytes):F1} ms CPU/MB, {mtcp[^1].Timeouts,4} RTOs, {mtcp[^1].Runtime}; kernel TCP {kernel[^1].MBps(options.Bytes),8:F2} MB/s, {kernel[^1].Timeouts,4} RTOs, {kernel[^1].Runtime}; load average {LoadAverage()}"));
            }

            var megabytes = options.Bytes / 1e6;
            var mtcpMBps = mtcp.Select(r => r.MBps(options.Bytes)).ToArray();
            var kernelMBps = kernel.Select(r => r.MBps(options.Bytes)).ToArray();
            rows.Add(new LossRow(
                percent,
                Statistics.Median(mtcpMBps),
                Statistics.Median(kernelMBps),
                Statistics.Median(mtcpMBps) / Statistics.Median(kernelMBps),
                Statistics.Median(mtcp.Select(r => r.Timeouts / megabytes).ToArray()),
                Statistics.Median(kernel.Select(r => r.Timeouts / megabytes).ToArray()),
                Statistics.Median(mtcp.Select(r => r.CpuMsPerMB(options.Bytes)).ToArray()),
                mtcpMBps,
                kernelMBps,
                loss.DroppedIncoming + loss.DroppedOutgoing));
        }

        await WriteArtifactsAsync(options, rows, $"{loadAtStart} at the start, {LoadAverage()} at the end");
        return 0;
    }

    /// <summary>One transfer: its time and this process's CPU time, the retransmission timeouts, and the runtime's collections and compilations meanwhile.</summary>
    private readonly record struct Run(TimeSpan Elapsed, TimeSpan Cpu, long Timeouts, RuntimeActivity Runtime)
    {
        public double MBps(long bytes) => bytes / Elapsed.TotalSeconds / 1e6;

        /// <summary>This process's CPU time per MB moved (both ends and the benchmark's own streams; kernel TCP's stack work is mostly not counted).</summary>
        public double CpuMsPerMB(long bytes) => Cpu.TotalMilliseconds / (bytes / 1e6);
    }

    /// <summary>Sums every retransmission timeout the runtimes of this process count, from now until disposed.</summary>
    private static MeterListener ListenToRetransmissionTimeouts()
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == MtcpRuntime.RuntimeMeterName && instrument.Name == MtcpRuntime.RetransmissionTimeoutsInstrument)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _mtcpTimeouts, value));
        listener.Start();
        return listener;
    }

    private static async Task<Run> MtcpRunAsync(VethNamespacePair pair, LossOptions options, CancellationToken cancellationToken)
    {
        var bytes = options.Bytes;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RunTimeout);
        var system = ActorSystem.Create("loss", MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING")));
        try
        {
            // Each transport opens inside its namespace: its sockets (and its route lookups) stay there.
            var serverTransport = pair.A.Run(() => RawIPv4Transport.OpenExperimental(VethNamespacePair.AddressA));
            await using var server = MtcpRuntime.Start(system, serverTransport, NodeConfig(VethNamespacePair.AddressA.ToString(), options.NodeConfig), "server");
            var clientTransport = pair.B.Run(() => RawIPv4Transport.OpenExperimental(VethNamespacePair.AddressB));
            await using var client = MtcpRuntime.Start(system, clientTransport, NodeConfig(VethNamespacePair.AddressB.ToString(), options.NodeConfig), "client");
            await using var listener = new MtcpListener(server, ServicePort);
            await listener.StartAsync(timeout.Token);
            var accepting = listener.AcceptAsync(timeout.Token);
            using var mtcpClient = new MtcpClient(client);
            var stream = await mtcpClient.ConnectAsync(new IPEndPoint(VethNamespacePair.AddressA.ToIPAddress(), ServicePort), timeout.Token);
            await using var connection = await accepting;
            var timeoutsBefore = Interlocked.Read(ref _mtcpTimeouts);
            var runtimeBefore = RuntimeActivity.Now();
            var run = await ThroughputBenchmark.TransferAsync(stream, connection.Stream, bytes, timeout.Token);
            return new Run(run.Elapsed, run.Cpu, Interlocked.Read(ref _mtcpTimeouts) - timeoutsBefore, RuntimeActivity.Now() - runtimeBefore);
        }
        finally
        {
            await system.Terminate();
        }
    }

    private static Config NodeConfig(string address, string? overlay) => ConfigurationFactory.ParseString(
        $"mtcp.runtime.local-address = \"{address}\"\n{overlay}");

    private static async Task<Run> KernelRunAsync(VethNamespacePair pair, long bytes, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RunTimeout);
        using var listener = pair.A.Run(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(VethNamespacePair.AddressA.ToIPAddress(), 0));
            socket.Listen();
            return socket;
        });
        using var client = pair.B.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await client.ConnectAsync(listener.LocalEndPoint!, timeout.Token);
        using var accepted = await listener.AcceptAsync(timeout.Token);
        var timeoutsBefore = KernelTimeouts(pair);
        var runtimeBefore = RuntimeActivity.Now();
        var run = await ThroughputBenchmark.TransferAsync(new NetworkStream(client), new NetworkStream(accepted), bytes, timeout.Token);
        return new Run(run.Elapsed, run.Cpu, KernelTimeouts(pair) - timeoutsBefore, RuntimeActivity.Now() - runtimeBefore);
    }

    /// <summary>The 1-minute load average (/proc/loadavg): the benchmark shares the machine, and its figures move with it.</summary>
    internal static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    /// <summary>TcpExt TCPTimeouts (RTO expirations) of both namespaces: /proc/net/netstat as seen from inside each.</summary>
    private static long KernelTimeouts(VethNamespacePair pair) =>
        pair.A.Run(() => TcpExtCounter("TCPTimeouts")) + pair.B.Run(() => TcpExtCounter("TCPTimeouts"));

    private static long TcpExtCounter(string name)
    {
        // Two lines start with "TcpExt:": the counters' names, then their values in the same order.
        var lines = File.ReadAllLines("/proc/thread-self/net/netstat").Where(line => line.StartsWith("TcpExt:", StringComparison.Ordinal)).ToArray();
        var names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(values[Array.IndexOf(names, name)], CultureInfo.InvariantCulture);
    }

    private static async Task WriteArtifactsAsync(LossOptions options, List<LossRow> rows, string loadAverage)
    {
        var directory = Path.Combine(BenchPaths.RepositoryRoot(), "artifacts", "bench");
        Directory.CreateDirectory(directory);
        var json = JsonSerializer.Serialize(
            new { bytes = options.Bytes, runs = options.Runs, nodeConfig = options.NodeConfig, loadAverage, rows },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        await File.WriteAllTextAsync(Path.Combine(directory, "loss.json"), json);

        var table = new StringBuilder();
        table.AppendLine("# Goodput under random loss: one connection between two network namespaces");
        table.AppendLine();
        table.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{options.Bytes:N0} bytes client to server per run over a veth pair (MTU 1500), nftables dropping the given share of packets in both directions; median of {options.Runs} runs, MTCP and kernel TCP interleaved; MB = 10^6 bytes."));
        table.AppendLine(options.NodeConfig is { } overlay
            ? $"MTCP: the runtime with the reference settings and `{overlay.ReplaceLineEndings(" ")}`, over raw IPv4 protocol 253. Kernel TCP: Linux's defaults (SACK, CUBIC, RACK-TLP)."
            : "MTCP: the runtime with the reference settings over raw IPv4 protocol 253. Kernel TCP: Linux's defaults (SACK, CUBIC, RACK-TLP).");
        table.AppendLine("RTOs per MB: retransmission timeouts of both ends per 10^6 bytes moved, median over the runs. MTCP CPU: this process's CPU time per 10^6 bytes during MTCP's runs (both ends and the benchmark's streams), median.");
        table.AppendLine($"Load average (1 minute) of the machine: {loadAverage}.");
        table.AppendLine();
        table.AppendLine("| loss % | MTCP MB/s | kernel TCP MB/s | ratio | MTCP RTOs/MB | kernel RTOs/MB | MTCP CPU ms/MB | MTCP runs | kernel runs | packets dropped |");
        table.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---|---|---:|");
        foreach (var r in rows)
        {
            table.AppendLine(FormattableString.Invariant(
                $"| {r.LossPercent} | {r.MtcpMBps:F2} | {r.KernelTcpMBps:F2} | {r.Ratio:F2} | {r.MtcpRtoPerMB:F2} | {r.KernelRtoPerMB:F2} | {r.MtcpCpuMsPerMB:F1} | {string.Join(", ", r.MtcpRunsMBps.Select(v => v.ToString("F1", CultureInfo.InvariantCulture)))} | {string.Join(", ", r.KernelTcpRunsMBps.Select(v => v.ToString("F1", CultureInfo.InvariantCulture)))} | {r.PacketsDropped} |"));
        }

        await File.WriteAllTextAsync(Path.Combine(directory, "loss.md"), table.ToString());
        LossPlot.Save(Path.Combine(directory, "loss"), rows);
        Console.WriteLine();
        Console.Write(table);
        Console.WriteLine($"written to {directory}");
    }
}

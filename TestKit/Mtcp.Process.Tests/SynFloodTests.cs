using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Mtcp.TestKit.Netns;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// A spoofed SYN flood (RFC 4987) at a real server node while real clients connect: the test-bed of thesis fig. 5.1
/// (<see cref="ControlNetworkTopology"/>) with one node and the agent as processes; from the client namespace a raw
/// socket sends 50,000 SYNs a second for 20 s, each from a random address of 10.99.0.0/16 and a random port, to the
/// node's file service, while clients connect through the agent and download a file, one connection each. The node
/// answers the flood with SYN cookies and keeps nothing for it: at least 99% of the clients must get their file, the
/// node's memory must stay flat, and the flood must show in its refusal summary. The figures are printed.
/// </summary>
[Trait("Category", "Security")]
[Collection(ProcessCollection.Name)]
public sealed partial class SynFloodTests(ITestOutputHelper output) : IDisposable
{
    private const int FloodRate = 50_000;
    private const int FileBytes = 16 * 1024;
    private const int ClientWorkers = 4;
    private const byte MtcpProtocol = 253;
    private static readonly TimeSpan FloodLength = TimeSpan.FromSeconds(20);
    /// <summary>
    /// How long a client waits for its download: about what a kernel TCP client's connect waits through its SYN
    /// retransmissions (1 + 2 + 4 + 8 + 16 s), so that a client counts as kept out only when it would have given up.
    /// </summary>
    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(31);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>Sources of the spoofed SYNs: routed back towards the client namespace, which does not forward them.</summary>
    private const string SpoofedSubnet = "10.99.0.0/16";

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_spoofed_flood_of_50000_SYNs_a_second_must_not_keep_clients_out_nor_grow_the_node()
    {
        NetnsPrerequisites.RequireRoot();
        var topology = _testbed.Own(ControlNetworkTopology.Create());
        topology.Server1.Namespace.Exec("ip", "route", "add", SpoofedSubnet, "via", ControlNetworkTopology.ClientServiceAddress.ToString());
        var expected = _testbed.WriteRandomFile("small.bin", FileBytes, seed: 4987);
        var hosts = new TopologyProcesses(_testbed, topology, output, _testbed.Own);
        var node = await hosts.StartServerAsync("server1", topology.Server1, seed: topology.Server1, extraConfig: "mtcp.diagnostics.refusal-summary-interval = 2s");
        // As patient as a kernel TCP client: the agent waits for the node as long as the clients wait for it, and with
        // one node there is nowhere to fail over to, so retransmission alone decides (silent-after = 0: failover off).
        await hosts.StartAgentAsync(extraConfig: "mtcp.agent.connect-timeout = 30s\nmtcp.migration.failover.silent-after = 0");

        // Before the flood: the clients' path works, and the node's resting memory.
        Assert.True((await FetchAsync(topology, expected)).Ok, "a download before the flood failed");
        var before = ProcessSample.Of(node.Id);

        using var stop = new CancellationTokenSource();
        var samples = new List<ProcessSample>();
        var sampling = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                samples.Add(ProcessSample.Of(node.Id));
                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
            }
        });
        var flooding = Task.Factory.StartNew(() => Flood(topology), TaskCreationOptions.LongRunning);
        var clientsStarted = Stopwatch.StartNew();
        var clients = Enumerable.Range(0, ClientWorkers).Select(_ => Task.Run(async () =>
        {
            var results = new List<FetchResult>();
            while (!flooding.IsCompleted)
            {
                results.Add(await FetchAsync(topology, expected));
            }

            return results;
        })).ToArray();

        var flood = await flooding;
        var fetches = (await Task.WhenAll(clients)).SelectMany(r => r).ToList();
        var clientTime = clientsStarted.Elapsed;
        await stop.CancelAsync();
        await sampling;
        var after = ProcessSample.Of(node.Id);

        // The last summary of the flood comes at most one interval after it ended, later on a loaded machine: wait until
        // the count accounts for the flood or has stopped moving.
        var kernelDrops = RawSocketDrops(topology.Server1.Namespace);
        long overflows = 0;
        var settling = Stopwatch.StartNew();
        var lastChange = TimeSpan.Zero;
        while (settling.Elapsed < TimeSpan.FromSeconds(15) && overflows + kernelDrops < flood.Sent * 0.99 && settling.Elapsed - lastChange < TimeSpan.FromSeconds(4))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(250));
            var counted = node.Lines.Select(line => SinceStart().Match(line)).Where(m => m.Success && m.Groups["class"].Value == "syn-queue-overflow")
                .Select(m => long.Parse(m.Groups["total"].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();
            if (counted != overflows)
            {
                overflows = counted;
                lastChange = settling.Elapsed;
            }
        }

        var summaryLines = node.Lines.Count(line => line.Contains("syn-queue-overflow:", StringComparison.Ordinal));
        var succeeded = fetches.Count(f => f.Ok);
        var latencies = fetches.Where(f => f.Ok).Select(f => f.Elapsed.TotalMilliseconds).Order().ToArray();
        var floodSamples = samples.Skip(2).ToArray();
        var peakRss = samples.Max(s => s.RssKiB);
        var cpu = (after.CpuSeconds - before.CpuSeconds) / (after.At - before.At).TotalSeconds;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
            flood: {flood.Sent:N0} spoofed SYNs in {flood.Elapsed.TotalSeconds:0.0} s = {flood.Sent / flood.Elapsed.TotalSeconds:N0}/s ({flood.Failed:N0} sends refused locally)
            node: syn-queue-overflow {overflows:N0} since start in {summaryLines} summary lines ({overflows / flood.Elapsed.TotalSeconds:N0}/s absorbed); {kernelDrops:N0} dropped by the kernel at the node's full raw socket; CPU {cpu:0.00} cores over the flood
            node RSS: {before.RssKiB / 1024.0:0.0} MiB before, peak {peakRss / 1024.0:0.0} MiB, {after.RssKiB / 1024.0:0.0} MiB after; from 2 s into the flood {floodSamples.First().RssKiB / 1024.0:0.0} to {floodSamples.Last().RssKiB / 1024.0:0.0} MiB
            clients: {succeeded}/{fetches.Count} downloads of {FileBytes} bytes through the agent succeeded in {clientTime.TotalSeconds:0.0} s ({ClientWorkers} at a time); latency p50 {Percentile(latencies, 0.5):0} ms, p99 {Percentile(latencies, 0.99):0} ms, max {latencies.LastOrDefault():0} ms
            """));
        foreach (var failure in fetches.Where(f => !f.Ok).Take(5))
        {
            output.WriteLine($"failed after {failure.Elapsed.TotalMilliseconds:0} ms: {failure.Error}");
        }

        Assert.True(flood.Sent >= FloodRate * FloodLength.TotalSeconds * 0.95, $"the flood sent only {flood.Sent} SYNs");
        Assert.True(fetches.Count >= 20, $"only {fetches.Count} client connections were tried");
        Assert.True(succeeded >= fetches.Count * 0.99, $"{fetches.Count - succeeded} of {fetches.Count} client connections failed");
        // The flood shows in the node's metric: the SYNs it read beyond its SYN queue were counted; the kernel dropped the rest at its socket.
        Assert.True(overflows >= 100_000, $"the node's refusal summary counted only {overflows} SYN queue overflows for {flood.Sent} spoofed SYNs");
        // Not every SYN is an overflow: those the SYN queue admits as its half-open entries expire are not (about 1.5%
        // of the flood in a run on an idle machine).
        Assert.True(overflows + kernelDrops >= flood.Sent * 0.95, $"{overflows} SYNs counted by the node and {kernelDrops} dropped at its socket for {flood.Sent} sent");

        // Memory stays bounded: flat through the flood (the SYN queue's endpoints at most), not growing with the SYNs.
        Assert.True(peakRss - before.RssKiB < 128 * 1024, $"RSS grew by {(peakRss - before.RssKiB) / 1024} MiB during the flood");
        Assert.True(floodSamples.Last().RssKiB - floodSamples.First().RssKiB < 32 * 1024, "RSS kept growing through the flood");
        Assert.False(node.HasExited);
    }

    public void Dispose() => _testbed.Dispose();

    [GeneratedRegex(@"(?<class>[a-z-]+): (?:\d+ since the last line, )?(?<total>\d+) since start")]
    private static partial Regex SinceStart();

    /// <summary>Datagrams the kernel dropped at the raw sockets of <paramref name="ns"/> for want of buffer (the last column of /proc/net/raw).</summary>
    private static long RawSocketDrops(NetworkNamespace ns) =>
        ns.Exec("cat", "/proc/net/raw").StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Sum(line => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1], CultureInfo.InvariantCulture));

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];

    /// <summary>
    /// The flood, from a raw socket (IPPROTO_RAW, the IPv4 header is ours) made in the client namespace: SYNs from random
    /// sources of <see cref="SpoofedSubnet"/> with random ports and ISNs, paced at <see cref="FloodRate"/> a second, for
    /// <see cref="FloodLength"/>; the loop ends by itself. The SYNs are built before the clock starts (65,536 of them,
    /// sent in turn), so that the sender spends its time on sending.
    /// </summary>
    private static FloodResult Flood(ControlNetworkTopology topology)
    {
        using var socket = topology.Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Raw));
        var target = topology.Server1.ServiceAddress;
        var address = new IPEndPoint(target.ToIPAddress(), 0).Serialize();
        var packets = SpoofedSyns(target, count: 65_536);
        long sent = 0;
        long failed = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < FloodLength)
        {
            var due = (long)(clock.Elapsed.TotalSeconds * FloodRate);
            if (sent + failed >= due)
            {
                Thread.Sleep(1);
                continue;
            }

            while (sent + failed < due)
            {
                try
                {
                    socket.SendTo(packets[(int)((sent + failed) % packets.Length)], SocketFlags.None, address);
                    sent++;
                }
                catch (SocketException)
                {
                    failed++;
                }
            }
        }

        return new FloodResult(sent, failed, clock.Elapsed);
    }

    private static byte[][] SpoofedSyns(IpAddress target, int count)
    {
        var random = new Random(53);
        Span<byte> source = stackalloc byte[4];
        var packets = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            var packet = new byte[20 + 64];
            packet[0] = 0x45;
            packet[8] = 64;
            packet[9] = MtcpProtocol;
            source[0] = 10;
            source[1] = 99;
            BinaryPrimitives.WriteUInt16BigEndian(source[2..], (ushort)random.Next(1, 65535));
            var spoofed = IpAddress.FromIPv4(source);
            spoofed.WriteTo(packet.AsSpan(12));
            target.WriteTo(packet.AsSpan(16));
            var syn = new TcpSegmentRepr
            {
                SourcePort = (ushort)random.Next(1024, 65536),
                DestinationPort = ProcessTestbed.FilePort,
                SequenceNumber = new SeqNumber((uint)random.NextInt64(0, 1L << 32)),
                Flags = TcpFlags.Syn,
                Window = 64240,
                Options = new TcpOptions { MaxSegmentSize = 1460, WindowScale = 7 },
            };
            if (!syn.TryEmit(packet.AsSpan(20), default, spoofed, target, out var written, out var error))
            {
                throw new InvalidOperationException($"a flood SYN did not encode: {error}");
            }

            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)(20 + written));
            packets[i] = packet[..(20 + written)];
        }

        return packets;
    }

    /// <summary>One client: a TCP connection to the agent in the client namespace, an HTTP GET of the file, every byte checked.</summary>
    private static async Task<FetchResult> FetchAsync(ControlNetworkTopology topology, string expectedSha256)
    {
        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(ClientPatience);
        try
        {
            using var socket = topology.Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            await socket.ConnectAsync(TopologyProcesses.AgentListen, timeout.Token);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /small.bin HTTP/1.0\r\nHost: mtcp\r\n\r\n"), timeout.Token);
            using var response = new MemoryStream();
            await stream.CopyToAsync(response, timeout.Token);
            var bytes = response.ToArray();
            var headerEnd = bytes.AsSpan().IndexOf("\r\n\r\n"u8);
            var status = headerEnd < 0 ? "" : Encoding.ASCII.GetString(bytes, 0, bytes.AsSpan().IndexOf("\r\n"u8));
            var body = headerEnd < 0 ? [] : bytes[(headerEnd + 4)..];
            var ok = status.Contains(" 200 ", StringComparison.Ordinal) && Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body)) == expectedSha256;
            return new FetchResult(ok, clock.Elapsed, ok ? null : $"status \"{status}\", {body.Length} body bytes");
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return new FetchResult(false, clock.Elapsed, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private sealed record FloodResult(long Sent, long Failed, TimeSpan Elapsed);

    private sealed record FetchResult(bool Ok, TimeSpan Elapsed, string? Error);

    /// <summary>A process's resident memory and CPU time so far, from /proc.</summary>
    private sealed record ProcessSample(long RssKiB, double CpuSeconds, DateTime At)
    {
        public static ProcessSample Of(int pid)
        {
            var rss = File.ReadLines($"/proc/{pid}/status").First(line => line.StartsWith("VmRSS:", StringComparison.Ordinal));
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

            // utime and stime, fields 14 and 15 of stat(5), in clock ticks of 1/100 s.
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return new ProcessSample(long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture), ticks / 100.0, DateTime.UtcNow);
        }
    }
}

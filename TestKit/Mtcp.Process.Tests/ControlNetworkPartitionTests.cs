using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// A falsely suspected node (issue: fencing): three server nodes and the agent as processes in the namespaces of a
/// three-server <see cref="ControlNetworkTopology"/>, the control network (Akka.Remote: gossip, control connections,
/// replication) on a bridge of its own. While a paced download runs through the agent from S1, nftables cuts S1's port
/// of the control bridge, both directions (<see cref="ControlNetworkPartition"/>); S1 stays alive and the client still
/// reaches all three nodes on the service network. The two others are the majority: the split-brain resolver
/// (keep-majority) downs S1, S1 downs itself, and its buddy takes the connection over from its replica. The client
/// switches to the buddy and blackholes S1; S1 sends nothing once it is down; the download completes byte-exact.
/// </summary>
[Trait("Category", "Failover")]
[Collection(ProcessCollection.Name)]
public sealed partial class ControlNetworkPartitionTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20111;
    private const int FileBytes = 16 << 20;
    private const byte MtcpProtocol = TopologyProcesses.MtcpProtocol;

    // The file server sends at 2 MiB/s: 8 s for the file, so the cut (at 3 MiB) and the takeover (2-3 s later, the
    // failure detector's acceptable-heartbeat-pause) come while the download runs, and the buddy serves the rest.
    private const string PacedFiles = "mtcp.hosts.server.file.pace { best-rate = 2MiB, degrade-after = 1GiB }";
    private const long CutAtByte = 3 << 20;

    private const int RequestsBeforeCut = 50;
    private const int RequestsAfterSwitch = 100;
    private const string Incr = "*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n";
    private static readonly TimeSpan RequestPause = TimeSpan.FromMilliseconds(20);

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // Set-up (~10 s), the download (8 s), the downing and the capture's reading fit well within it.
    private static readonly TimeSpan TestLimit = TimeSpan.FromSeconds(88);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public Task A_node_cut_off_from_the_cluster_must_be_downed_and_fenced_while_its_buddy_completes_the_download_byte_exact() =>
        PartitionDuringDownloadAsync().WaitAsync(TestLimit);

    [Fact]
    public Task A_node_cut_off_from_the_cluster_must_be_downed_and_fenced_while_its_buddy_applies_every_request_exactly_once() =>
        PartitionDuringRequestsAsync().WaitAsync(TestLimit);

    // In reverse: the partition, the processes, then the capture and the namespaces they ran in; the scratch directory last.
    public void Dispose() => _testbed.Dispose();

    private async Task PartitionDuringDownloadAsync()
    {
        var cluster = await StartClusterAsync(ProcessTestbed.FilePort);
        var expected = _testbed.WriteRandomFile("partition.bin", FileBytes, Seed);
        var reads = new List<(long At, long Total)>();
        var download = DownloadAsync(cluster.Topology, reads);
        await WaitForBytesFromServiceAsync(cluster.Hosts, CutAtByte);
        var cut = CutServer1(cluster);

        var response = await download;
        var (status, body) = SplitResponse(response);
        Assert.Equal("HTTP/1.1 200 OK", status);
        Assert.Equal(FileBytes, body.Length);
        Assert.True(expected == Convert.ToHexStringLower(SHA256.HashData(body)), "the download arrived altered (SHA-256 differs)");

        var fenced = await AssertTakenOverAndFencedAsync(cluster, cut, ProcessTestbed.FilePort);
        output.WriteLine(fenced.Summary(cluster, cut, reads));
    }

    /// <summary>
    /// The key-value sample through the agent: INCR of one key, one request every <see cref="RequestPause"/>, before, across
    /// and after the cut. Reply n must be n: a request applied twice (by S1 and again by the buddy from its replica) or
    /// lost would show in every later reply, and in the final GET.
    /// </summary>
    private async Task PartitionDuringRequestsAsync()
    {
        var cluster = await StartClusterAsync(ProcessTestbed.RequestPort);
        using var timeout = new CancellationTokenSource(TestLimit);
        using var socket = cluster.Topology.Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(TopologyProcesses.AgentListen, timeout.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var replies = new StreamReader(stream, Encoding.ASCII);
        var reads = new List<(long At, long Total)>();
        long replyBytes = 0;
        async Task<string> AskAsync(string request)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
            var reply = await replies.ReadLineAsync(timeout.Token) ?? throw new EndOfStreamException($"the connection closed; {reads.Count} replies came");
            replyBytes += reply.Length + 2;
            reads.Add((Stopwatch.GetTimestamp(), replyBytes));
            return reply;
        }

        PartitionCut? cut = null;
        var requests = 0;
        var afterSwitch = 0;
        while (afterSwitch < RequestsAfterSwitch)
        {
            requests++;
            Assert.Equal($":{requests}", await AskAsync(Incr));
            if (requests == RequestsBeforeCut)
            {
                cut = CutServer1(cluster);
            }

            afterSwitch += cut is { Switched.IsCompleted: true } ? 1 : 0;
            await Task.Delay(RequestPause, timeout.Token);
        }

        Assert.Equal($"${requests.ToString(CultureInfo.InvariantCulture).Length}", await AskAsync("*2\r\n$3\r\nGET\r\n$7\r\ncounter\r\n"));
        Assert.Equal(requests.ToString(CultureInfo.InvariantCulture), await replies.ReadLineAsync(timeout.Token));
        Assert.Equal("+OK", await AskAsync("*1\r\n$4\r\nQUIT\r\n"));
        Assert.Null(await replies.ReadLineAsync(timeout.Token));

        var partitionCut = cut ?? throw new InvalidOperationException($"the session ended after {requests} requests, before the cut");
        var fenced = await AssertTakenOverAndFencedAsync(cluster, partitionCut, ProcessTestbed.RequestPort);
        output.WriteLine($"{requests} INCRs, each applied once: reply n was :n, and GET returned {requests}");
        output.WriteLine(fenced.Summary(cluster, partitionCut, reads));
    }

    /// <summary>
    /// Three server nodes in their namespaces (S1 the seed), the agent in the client namespace relaying to S1's
    /// <paramref name="servicePort"/>, and a capture of the service network.
    /// </summary>
    private async Task<Cluster> StartClusterAsync(int servicePort)
    {
        NetnsPrerequisites.RequireRoot();
        var test = Stopwatch.StartNew();
        var topology = Own(ControlNetworkTopology.Create(servers: 3));
        output.WriteLine(topology.ToString());
        var capture = Own(PacketCapture.Start(topology.Hub, ControlNetworkTopology.HubBridge, Path.Combine(Path.GetTempPath(), $"mtcp-{Environment.ProcessId}-partition-service.pcapng")));
        var networks = test.Elapsed;
        var hosts = new TopologyProcesses(_testbed, topology, output, Own);

        // The seed first; the two others join it together (each start is seconds of a loaded machine's time).
        List<HostProcess> servers = [await hosts.StartServerAsync("server1", topology.Server1, seed: topology.Server1, extraConfig: PacedFiles)];
        servers.AddRange(await Task.WhenAll(topology.Servers.Skip(1).Select((host, i) => hosts.StartServerAsync($"server{i + 2}", host, seed: topology.Server1, extraConfig: PacedFiles))));
        foreach (var server in servers)
        {
            // Three nodes, each announcing its file and request endpoints.
            await server.WaitForLineAsync("cluster view: 6 service endpoints", Bound);
        }

        var agent = await hosts.StartAgentAsync(servicePort: servicePort);
        return new Cluster(topology, hosts, servers, agent, capture, test, networks, test.Elapsed);
    }

    /// <summary>Cuts S1 off the control network; from then on, watches for the agent's switch and S1's downing.</summary>
    private PartitionCut CutServer1(Cluster cluster)
    {
        var partition = Own(ControlNetworkPartition.Isolate(cluster.Topology, cluster.Topology.Server1));
        var at = Stopwatch.GetTimestamp();
        output.WriteLine($"{partition} at {DateTimeOffset.UtcNow:HH:mm:ss.fff}");
        return new PartitionCut(partition, at, ObservedAsync(cluster.Agent, "relay 1: migrated "), ObservedAsync(cluster.Servers[0], "the actor system terminated (the cluster downed this node)"));
    }

    /// <summary>
    /// The majority downed S1 and S1's buddy took the connection over; the client moved to the buddy and sent S1 nothing
    /// after; S1 stopped, and sent nothing once down. Returns what the report needs.
    /// </summary>
    private async Task<Fencing> AssertTakenOverAndFencedAsync(
        Cluster cluster, PartitionCut cut, int port)
    {
        var (topology, _, servers, agent, capture, _, _, _) = cluster;
        var isolated = topology.Server1;
        var (switchedAt, switchLine) = await cut.Switched;
        var takeovers = servers.Skip(1).Where(server => server.Lines.Any(line => line.Contains("took over cid ", StringComparison.Ordinal))).ToList();
        var buddy = topology.Servers[servers.IndexOf(Assert.Single(takeovers))];
        var migrated = MigratedLine().Match(switchLine);
        Assert.True(migrated.Success, $"the agent's line \"{switchLine}\" is not a migration");
        Assert.Equal($"{isolated.ServiceAddress}:{port} -> {buddy.ServiceAddress}:{port}", migrated.Groups["move"].Value);
        Assert.Single(agent.Lines, line => line.Contains("relay 1: migrated ", StringComparison.Ordinal));
        Assert.DoesNotContain(agent.Lines, line => line.Contains("relay 1", StringComparison.Ordinal) && line.Contains("reset", StringComparison.Ordinal));

        // S1 learns nothing over the cut control network: the resolver on its side (one of three) downs it, and it stops.
        var (downAt, _) = await cut.Downed;
        Assert.Equal(0, await servers[0].WaitForExitAsync(Bound));
        foreach (var survivor in servers.Skip(1))
        {
            Assert.False(survivor.HasExited, "a node of the majority exited");
            await survivor.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        // Fencing, on the wire: the client sent S1 nothing once it had switched (S1's 4-tuple is in BLACKHOLE), and S1
        // sent nothing once it was down. What S1 sent between the switch and its downing the client swallowed: the
        // session's own checks hold.
        var client = topology.ClientAddress;
        var toIsolated = capture.Field($"ip.proto == {MtcpProtocol} && ip.src == {client} && ip.dst == {isolated.ServiceAddress}", "frame.time_epoch", MtcpProtocol).Select(EpochSeconds).ToList();
        var fromIsolated = capture.Field($"ip.proto == {MtcpProtocol} && ip.src == {isolated.ServiceAddress} && ip.dst == {client}", "frame.time_epoch", MtcpProtocol).Select(EpochSeconds).ToList();
        var fromBuddy = capture.Field($"ip.proto == {MtcpProtocol} && ip.src == {buddy.ServiceAddress} && ip.dst == {client}", "frame.time_epoch", MtcpProtocol).Select(EpochSeconds).ToList();
        Assert.NotEmpty(fromBuddy);
        Assert.DoesNotContain(toIsolated, at => at > switchedAt);
        Assert.DoesNotContain(fromIsolated, at => at > downAt);
        var dropped = cut.Partition.Dropped;
        Assert.True(dropped.FromIsolated > 0 && dropped.ToIsolated > 0, $"the partition dropped {dropped.FromIsolated} frames from S1 and {dropped.ToIsolated} to it");
        return new Fencing(
            buddy,
            long.Parse(migrated.Groups["byte"].Value, CultureInfo.InvariantCulture),
            migrated.Groups["cause"].Value,
            downAt,
            fromIsolated.Count(at => at > fromBuddy[0]),
            fromIsolated.Max(),
            dropped);
    }

    /// <summary>
    /// GET of the file through the agent from a socket made in the client namespace, reading to the end; each read's
    /// time (<see cref="Stopwatch"/> ticks) and the bytes read so far go to <paramref name="reads"/>.
    /// </summary>
    private static async Task<byte[]> DownloadAsync(ControlNetworkTopology topology, List<(long At, long Total)> reads)
    {
        using var timeout = new CancellationTokenSource(TestLimit);
        using var socket = topology.Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(TopologyProcesses.AgentListen, timeout.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /partition.bin HTTP/1.1\r\nHost: mtcp\r\nConnection: close\r\n\r\n"), timeout.Token);
        using var response = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
        {
            response.Write(buffer, 0, read);
            reads.Add((Stopwatch.GetTimestamp(), response.Length));
        }

        return response.ToArray();
    }

    private static (string Status, byte[] Body) SplitResponse(byte[] response)
    {
        var headerEnd = response.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(headerEnd > 0, $"no HTTP header in the {response.Length} bytes received");
        var status = Encoding.ASCII.GetString(response, 0, response.AsSpan().IndexOf("\r\n"u8));
        return (status, response[(headerEnd + 4)..]);
    }

    private static async Task WaitForBytesFromServiceAsync(TopologyProcesses hosts, long bytes)
    {
        var waiting = Stopwatch.StartNew();
        while (true)
        {
            using var status = System.Text.Json.JsonDocument.Parse(await hosts.AskAgentAsync("status"));
            if (status.RootElement.GetProperty("connections").EnumerateArray().FirstOrDefault() is { ValueKind: System.Text.Json.JsonValueKind.Object } open
                && open.GetProperty("bytesFromService").GetInt64() >= bytes)
            {
                return;
            }

            if (waiting.Elapsed > Bound)
            {
                throw new TimeoutException($"the download did not reach byte {bytes} within {Bound.TotalSeconds:0} s: {status.RootElement}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>When this test saw <paramref name="process"/> print a line containing <paramref name="text"/> (Unix seconds), and the line: after it was printed.</summary>
    private static async Task<(double At, string Line)> ObservedAsync(HostProcess process, string text)
    {
        var line = await process.WaitForLineAsync(text, TestLimit);
        return (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0, line);
    }

    private static double EpochSeconds(string field) => double.Parse(field, CultureInfo.InvariantCulture);

    /// <summary>A <see cref="Stopwatch"/> timestamp as Unix seconds, as a capture's frame.time_epoch.</summary>
    private static double EpochOf(long timestamp) =>
        (DateTimeOffset.UtcNow - Stopwatch.GetElapsedTime(timestamp)).ToUnixTimeMilliseconds() / 1000.0;

    private T Own<T>(T resource)
        where T : IDisposable => _testbed.Own(resource);

    /// <summary>S1's cut: the partition, when (a <see cref="Stopwatch"/> timestamp), and when the agent's switch and S1's downing were seen.</summary>
    private sealed record PartitionCut(ControlNetworkPartition Partition, long At, Task<(double At, string Line)> Switched, Task<(double At, string Line)> Downed);

    private sealed record Cluster(
        ControlNetworkTopology Topology, TopologyProcesses Hosts, List<HostProcess> Servers, HostProcess Agent, PacketCapture Capture, Stopwatch Test, TimeSpan Networks, TimeSpan SetUp);

    /// <summary>What the takeover and the fencing showed: the buddy, where and why the agent switched, S1's last segments.</summary>
    private sealed record Fencing(ServerHost Buddy, long SwitchedAtByte, string Cause, double DownAt, int Blackholed, double LastFromIsolated, (long FromIsolated, long ToIsolated) Dropped)
    {
        /// <summary>
        /// The client's wait, from the last byte it read before the cut to the first byte past the switch's offset (the
        /// buddy's), the longest stall between two reads after the cut, and the fencing's times.
        /// </summary>
        public string Summary(Cluster cluster, PartitionCut cut, List<(long At, long Total)> reads)
        {
            var lastBeforeCut = reads.Last(read => read.At < cut.At);
            var firstFromBuddy = reads.First(read => read.Total > SwitchedAtByte);
            var wait = Stopwatch.GetElapsedTime(lastBeforeCut.At, firstFromBuddy.At);
            var longestStall = reads.Zip(reads.Skip(1)).Where(pair => pair.Second.At > cut.At).Max(pair => Stopwatch.GetElapsedTime(pair.First.At, pair.Second.At));
            var cutAt = EpochOf(cut.At);
            return string.Create(CultureInfo.InvariantCulture, $"""
                set-up {cluster.SetUp.TotalSeconds:0.0} s (namespaces and capture {cluster.Networks.TotalSeconds:0.0} s); cut at byte {lastBeforeCut.Total}; the agent switched to {Buddy.ServiceAddress} at byte {SwitchedAtByte} ({Cause})
                client's wait from its last byte before the cut to the first byte after the switch: {wait.TotalMilliseconds:0} ms; longest stall between two reads after the cut: {longestStall.TotalMilliseconds:0} ms
                S1 downed {DownAt - cutAt:0.00} s after the cut; it sent {Blackholed} segments the client swallowed after the buddy's first, its last {LastFromIsolated - cutAt:0.00} s after the cut
                the partition dropped {Dropped.FromIsolated} control frames from S1 and {Dropped.ToIsolated} to it; test {cluster.Test.Elapsed.TotalSeconds:0.0} s
                """);
        }
    }

    [GeneratedRegex(@"relay 1: migrated (?<move>\S+ -> \S+) \(cid [^)]*\) in [0-9.]+ ms at byte (?<byte>\d+) \((?<cause>.*)\)$")]
    private static partial Regex MigratedLine();
}

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

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // Set-up (~10 s), the download (8 s), the downing and the capture's reading fit well within it.
    private static readonly TimeSpan TestLimit = TimeSpan.FromSeconds(88);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public Task A_node_cut_off_from_the_cluster_must_be_downed_and_fenced_while_its_buddy_completes_the_download_byte_exact() =>
        PartitionDuringDownloadAsync().WaitAsync(TestLimit);

    // In reverse: the partition, the processes, then the capture and the namespaces they ran in; the scratch directory last.
    public void Dispose() => _testbed.Dispose();

    private async Task PartitionDuringDownloadAsync()
    {
        NetnsPrerequisites.RequireRoot();
        var test = Stopwatch.StartNew();
        var topology = Own(ControlNetworkTopology.Create(servers: 3));
        output.WriteLine(topology.ToString());
        var capture = Own(PacketCapture.Start(topology.Hub, ControlNetworkTopology.HubBridge, Path.Combine(Path.GetTempPath(), $"mtcp-{Environment.ProcessId}-partition-service.pcapng")));
        var expected = _testbed.WriteRandomFile("partition.bin", FileBytes, Seed);
        var hosts = new TopologyProcesses(_testbed, topology, output, Own);
        var networks = test.Elapsed;

        // The seed first; the two others join it together (each start is seconds of a loaded machine's time).
        List<HostProcess> servers = [await hosts.StartServerAsync("server1", topology.Server1, seed: topology.Server1, extraConfig: PacedFiles)];
        servers.AddRange(await Task.WhenAll(topology.Servers.Skip(1).Select((host, i) => hosts.StartServerAsync($"server{i + 2}", host, seed: topology.Server1, extraConfig: PacedFiles))));

        foreach (var server in servers)
        {
            // Three nodes, each announcing its file and request endpoints.
            await server.WaitForLineAsync("cluster view: 6 service endpoints", Bound);
        }

        var agent = await hosts.StartAgentAsync();
        var isolated = topology.Server1;
        var server1 = servers[0];
        var setUp = test.Elapsed;

        var reads = new List<(long At, long Total)>();
        var download = DownloadAsync(topology, reads);
        await WaitForBytesFromServiceAsync(hosts, CutAtByte);
        var partition = Own(ControlNetworkPartition.Isolate(topology, isolated));
        var cutAt = Stopwatch.GetTimestamp();
        output.WriteLine($"{partition} at {DateTimeOffset.UtcNow:HH:mm:ss.fff}");
        var switchSeen = ObservedAsync(agent, "relay 1: migrated ");
        var downSeen = ObservedAsync(server1, "the actor system terminated (the cluster downed this node)");

        var response = await download;
        var (status, body) = SplitResponse(response);
        Assert.Equal("HTTP/1.1 200 OK", status);
        Assert.Equal(FileBytes, body.Length);
        Assert.True(expected == Convert.ToHexStringLower(SHA256.HashData(body)), "the download arrived altered (SHA-256 differs)");

        // The majority downed S1 and one of the two others, its buddy, took the connection over; the client moved to it.
        var (switchedAt, switchLine) = await switchSeen;
        var takeovers = servers.Skip(1).Where(server => server.Lines.Any(line => line.Contains("took over cid ", StringComparison.Ordinal))).ToList();
        var buddy = topology.Servers[servers.IndexOf(Assert.Single(takeovers))];
        var migrated = MigratedLine().Match(switchLine);
        Assert.True(migrated.Success, $"the agent's line \"{switchLine}\" is not a migration");
        Assert.Equal($"{isolated.ServiceAddress}:{ProcessTestbed.FilePort} -> {buddy.ServiceAddress}:{ProcessTestbed.FilePort}", migrated.Groups["move"].Value);
        Assert.Single(agent.Lines, line => line.Contains("relay 1: migrated ", StringComparison.Ordinal));
        Assert.DoesNotContain(agent.Lines, line => line.Contains("relay 1", StringComparison.Ordinal) && line.Contains("reset", StringComparison.Ordinal));

        // S1 learns nothing over the cut control network: the resolver on its side (one of three) downs it, and it stops.
        var (downAt, _) = await downSeen;
        Assert.Equal(0, await server1.WaitForExitAsync(Bound));
        foreach (var survivor in servers.Skip(1))
        {
            Assert.False(survivor.HasExited, "a node of the majority exited");
            await survivor.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        // Fencing, on the wire: the client sent S1 nothing once it had switched (S1's 4-tuple is in BLACKHOLE), and S1
        // sent nothing once it was down. What S1 sent between the switch and its downing the client swallowed: the
        // SHA-256 above holds.
        var client = topology.ClientAddress;
        var toIsolated = capture.Field($"ip.proto == {MtcpProtocol} && ip.src == {client} && ip.dst == {isolated.ServiceAddress}", "frame.time_epoch", MtcpProtocol).Select(EpochSeconds).ToList();
        var fromIsolated = capture.Field($"ip.proto == {MtcpProtocol} && ip.src == {isolated.ServiceAddress} && ip.dst == {client}", "frame.time_epoch", MtcpProtocol).Select(EpochSeconds).ToList();
        var fromBuddy = capture.Field($"ip.proto == {MtcpProtocol} && ip.src == {buddy.ServiceAddress} && ip.dst == {client}", "frame.time_epoch", MtcpProtocol).Select(EpochSeconds).ToList();
        Assert.NotEmpty(fromBuddy);
        Assert.DoesNotContain(toIsolated, at => at > switchedAt);
        Assert.DoesNotContain(fromIsolated, at => at > downAt);
        var blackholed = fromIsolated.Count(at => at > fromBuddy[0]);
        var dropped = partition.Dropped;
        Assert.True(dropped.FromIsolated > 0 && dropped.ToIsolated > 0, $"the partition dropped {dropped.FromIsolated} frames from S1 and {dropped.ToIsolated} to it");

        // The client's wait: from the last byte it read before the cut to the first byte after the switch's offset.
        var switchedAtByte = long.Parse(migrated.Groups["byte"].Value, CultureInfo.InvariantCulture);
        var lastBeforeCut = reads.Last(read => read.At < cutAt);
        var firstFromBuddy = reads.First(read => read.Total > switchedAtByte);
        var wait = Stopwatch.GetElapsedTime(lastBeforeCut.At, firstFromBuddy.At);
        var longestStall = reads.Zip(reads.Skip(1)).Where(pair => pair.Second.At > cutAt).Max(pair => Stopwatch.GetElapsedTime(pair.First.At, pair.Second.At));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
            set-up {setUp.TotalSeconds:0.0} s (namespaces and capture {networks.TotalSeconds:0.0} s); cut at byte {lastBeforeCut.Total}; the agent switched to {buddy.ServiceAddress} at byte {switchedAtByte} ({migrated.Groups["cause"].Value})
            client's wait from its last byte before the cut to the first byte after the switch: {wait.TotalMilliseconds:0} ms; longest stall between two reads after the cut: {longestStall.TotalMilliseconds:0} ms
            S1 downed {downAt - EpochOf(cutAt):0.00} s after the cut; it sent {blackholed} segments the client swallowed after the buddy's first, its last {fromIsolated.Max() - EpochOf(cutAt):0.00} s after the cut
            the partition dropped {dropped.FromIsolated} control frames from S1 and {dropped.ToIsolated} to it; test {test.Elapsed.TotalSeconds:0.0} s
            """));
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

    [GeneratedRegex(@"relay 1: migrated (?<move>\S+ -> \S+) \(cid [^)]*\) in [0-9.]+ ms at byte (?<byte>\d+) \((?<cause>.*)\)$")]
    private static partial Regex MigratedLine();
}

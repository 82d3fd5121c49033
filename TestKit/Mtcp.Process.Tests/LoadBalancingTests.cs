using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Policies;
using Mtcp.Stack;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The server policy running in the nodes (mtcp.hosts.server.policy = load-balancing, thesis 6.2.3): every client
/// reaches one node through the agent, and that node pushes connections to the two idle members by MIGRATE_TRIGGER,
/// fed by the load reports they exchange over the cluster. Every download arrives intact.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class LoadBalancingTests(ITestOutputHelper output) : IDisposable
{
    private const int Downloads = 8;
    private const int FileBytes = 8 * 1000 * 1000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // Paced: the downloads must still be going when the policy evaluates.
    private static readonly string Policy = ProcessTestbed.MigrationConfig + "\n" + ProcessTestbed.PacedFileServer("1MiB") + """

        mtcp.hosts.server.policy = load-balancing
        mtcp.policies.server { evaluation-interval = 300ms, imbalance-threshold = 2, max-moves-per-evaluation = 2, guard.hold-down = 5s }
        """;

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_node_that_gets_every_connection_must_push_some_to_idle_members_and_every_download_must_arrive_intact()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, seed: 615);
        var loaded = await _testbed.StartServerAsync("server1", extraConfig: Policy);
        var idle1 = await _testbed.StartServerAsync("server2", loaded, Policy);
        var idle2 = await _testbed.StartServerAsync("server3", loaded, Policy);
        ServerHandle[] servers = [loaded, idle1, idle2];
        foreach (var server in servers)
        {
            await server.Process.WaitForLineAsync("cluster view: 6 service endpoints", Bound);
            await server.Process.WaitForLineAsync("policy: load balancing of", Bound);
        }

        // The agent knows only the loaded node and its own policy is off: any move is the servers' doing.
        var agent = await _testbed.StartAgentAsync("agent", [loaded.Service(ProcessTestbed.FilePort)], "mtcp.agent.policy = off");
        var downloads = Enumerable.Range(0, Downloads).Select(i =>
        {
            var path = Path.Combine(_testbed.Directory.FullName, $"downloaded-{i}.bin");
            return (Path: path, Curl: Curl.RunAsync("-sS", "--max-time", "120", "--limit-rate", "1M", "-o", path, $"http://{agent.Listen}/big.bin"));
        }).ToList();

        foreach (var (path, curl) in downloads)
        {
            var (exitCode, curlOutput) = await curl;
            Assert.True(exitCode == 0, $"curl exited with {exitCode}: {curlOutput}");
            Assert.Equal(expected, ProcessTestbed.Sha256Of(path));
        }

        var pushed = loaded.Process.Lines.Count(line => line.Contains("policy: cid ", StringComparison.Ordinal) && line.Contains(": asked the client ", StringComparison.Ordinal));
        var arrived = new[] { idle1, idle2 }.Sum(server => server.Process.Lines.Count(line => line.Contains("file connection resumes", StringComparison.Ordinal)));
        output.WriteLine($"the loaded node triggered {pushed} migrations; {arrived} connections arrived at the other two");
        Assert.True(arrived >= 2, $"only {arrived} connections arrived at the idle members ({pushed} triggers)");
        Assert.All(new[] { idle1, idle2 }, server => Assert.Contains(server.Process.Lines, line => line.Contains("file connection resumes", StringComparison.Ordinal)));
        Assert.DoesNotContain(servers.SelectMany(server => server.Process.Lines), line => line.Contains("Dropped a load report", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Category", "Security")]
    public async Task A_member_must_not_speak_for_another_members_endpoint_in_load_reports_or_pulls()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes / 4, seed: 616);
        var calm = Policy.Replace("imbalance-threshold = 2", "imbalance-threshold = 10", StringComparison.Ordinal);
        var first = await _testbed.StartServerAsync("server1", extraConfig: calm);
        var second = await _testbed.StartServerAsync("server2", first, calm);
        foreach (var server in new[] { first, second })
        {
            await server.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort)], "mtcp.agent.policy = off");
        var downloads = Enumerable.Range(0, 3).Select(i =>
        {
            var path = Path.Combine(_testbed.Directory.FullName, $"downloaded-{i}.bin");
            return (Path: path, Curl: Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "500K", "-o", path, $"http://{agent.Listen}/big.bin"));
        }).ToList();

        // A host with a certificate of the cluster's CA (a member, as TLS lets it in) tells the loaded node that the
        // other node is far below it and asks for its connections in the other node's name: followed, either would
        // move the downloads.
        using var intruder = await _testbed.JoinAsMemberAsync("intruder", first, Bound, PolicySerialization.Setup);
        var address = Akka.Cluster.Cluster.Get(intruder).SelfAddress.Host;
        var victim = new ServerEndpoint(IpAddress.FromIPAddress(second.Address), ProcessTestbed.FilePort);
        var loaded = new ServerEndpoint(IpAddress.FromIPAddress(first.Address), ProcessTestbed.FilePort);
        var exchange = intruder.ActorSelection($"akka.ssl.tcp://mtcp@{first.ControlEndPoint}/user/{LoadBalancingExchange.ActorName}");
        for (var i = 0; i < 20; i++)
        {
            exchange.Tell(new NodeLoadReport(victim, Load: -100, Connections: 0, Draining: false, new Instant(long.MaxValue / 2)));
            exchange.Tell(new PullConnections(victim, loaded, RequesterLoad: -100, Count: 3, new Instant(long.MaxValue / 2)));
            await Task.Delay(100);
        }

        await first.Process.WaitForLineAsync($"Dropped a load report for {victim} from akka.ssl.tcp://mtcp@{address}", Bound);
        await first.Process.WaitForLineAsync($"Dropped a pull request for {victim} from akka.ssl.tcp://mtcp@{address}", Bound);
        foreach (var (path, curl) in downloads)
        {
            var (exitCode, curlOutput) = await curl;
            Assert.True(exitCode == 0, $"curl exited with {exitCode}: {curlOutput}");
            Assert.Equal(expected, ProcessTestbed.Sha256Of(path));
        }

        Assert.DoesNotContain(first.Process.Lines, line => line.Contains("policy: cid ", StringComparison.Ordinal) && line.Contains(": asked the client ", StringComparison.Ordinal));
        await CoordinatedShutdown.Get(intruder).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
    }

    public void Dispose() => _testbed.Dispose();
}

using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class ClusterTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Convergence = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Three_server_nodes_must_form_a_cluster_that_the_agent_reaches()
    {
        File.WriteAllText(Path.Combine(_testbed.Files.FullName, "hello.txt"), "hello from the cluster\n");
        const string FileOnly = "mtcp.hosts.server.request.enabled = off";
        var first = await _testbed.StartServerAsync("s1", extraConfig: FileOnly);
        var second = await _testbed.StartServerAsync("s2", seed: first, extraConfig: FileOnly);
        var third = await _testbed.StartServerAsync("s3", seed: first, extraConfig: FileOnly);
        ServerHandle[] nodes = [first, second, third];

        foreach (var node in nodes)
        {
            var others = nodes.Where(other => other != node).Select(other => other.Service(ProcessTestbed.FilePort)).OrderBy(service => service, StringComparer.Ordinal);
            var view = await node.Process.WaitForLineAsync("cluster view: 3 service endpoints", Convergence);
            foreach (var other in others)
            {
                Assert.Contains(other, view, StringComparison.Ordinal);
            }
        }

        // The agent's pool starts with an address nobody serves: it must move on to the next within connect-timeout.
        var unserved = ProcessTestbed.NextAddress();
        var agent = await _testbed.StartAgentAsync(
            "agent",
            [$"{unserved}:{ProcessTestbed.FilePort}", third.Service(ProcessTestbed.FilePort), first.Service(ProcessTestbed.FilePort)],
            "mtcp.agent.connect-timeout = 2s");
        var (exitCode, body) = await Curl.RunAsync("-sS", "--max-time", "30", $"http://{agent.Listen}/hello.txt");

        Assert.Equal(0, exitCode);
        Assert.Equal("hello from the cluster\n", body);
        await agent.Process.WaitForLineAsync($"-> {third.Service(ProcessTestbed.FilePort)} over MTCP", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_node_that_stops_must_leave_the_view_of_the_others()
    {
        var first = await _testbed.StartServerAsync("s1");
        var second = await _testbed.StartServerAsync("s2", seed: first);
        await first.Process.WaitForLineAsync("cluster view: 4 service endpoints", Convergence);
        await second.Process.WaitForLineAsync("cluster view: 4 service endpoints", Convergence);

        var lines = first.Process.Lines.Count;
        second.Process.Terminate();

        Assert.Equal(0, await second.Process.WaitForExitAsync(Convergence));
        await second.Process.WaitForLineAsync("left the cluster", TimeSpan.FromSeconds(1));
        await WaitForLaterLineAsync(first.Process, lines, "cluster view: 2 service endpoints");
    }

    public void Dispose() => _testbed.Dispose();

    private static async Task WaitForLaterLineAsync(HostProcess process, int after, string text)
    {
        var deadline = DateTime.UtcNow + Convergence;
        while (!process.Lines.Skip(after).Any(line => line.Contains(text, StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no \"{text}\" after line {after} within {Convergence.TotalSeconds:0} s:\n{process.Output}");
            await Task.Delay(100);
        }
    }
}

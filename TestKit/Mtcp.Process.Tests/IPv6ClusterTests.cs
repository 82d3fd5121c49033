using System.Net.Sockets;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The cluster on IPv6 with real processes: the test-bed of thesis fig. 5.1 (<see cref="ControlNetworkTopology"/>) with
/// IPv6 addresses only, so that the MTCP segments (raw next header 253, or UDP), Akka.Remote with mutual TLS (cluster
/// and control connections), the agent's service endpoints, the servers' TCP_MIGRATE alternates and the special SYNs all
/// carry IPv6 addresses. curl downloads through the agent while it migrates the connection between the two servers.
/// </summary>
[Trait("Category", "Netns")]
[Collection(ProcessCollection.Name)]
public sealed class IPv6ClusterTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20061;
    private const int FileBytes = 16 * 1000 * 1000;
    private const int Migrations = 3;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Theory]
    [InlineData("raw")]
    [InlineData("udp")]
    public async Task Curl_through_the_agent_must_download_intact_across_migrations_between_IPv6_servers(string transport)
    {
        NetnsPrerequisites.RequireRoot();
        var topology = _testbed.Own(ControlNetworkTopology.Create(AddressFamily.InterNetworkV6));
        output.WriteLine(topology.ToString());
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, Seed);
        var hosts = new TopologyProcesses(_testbed, topology, output, _testbed.Own);

        var server1 = await hosts.StartServerAsync("server1", topology.Server1, seed: topology.Server1, transport, ProcessTestbed.PacedFileServer("4MiB"));
        var server2 = await hosts.StartServerAsync("server2", topology.Server2, seed: topology.Server1, transport, ProcessTestbed.PacedFileServer("4MiB"));
        foreach (var server in new[] { server1, server2 })
        {
            // The cluster formed over IPv6 Akka.Remote: each node announces the file and request endpoints of both.
            await server.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        // The file servers are paced: curl's --limit-rate does not slow the sender, whose 16 MB the agent's and the
        // kernel's buffers took in under a second, so the migrations came after the download had ended.
        var agent = await hosts.StartAgentAsync(transport);
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        var curl = _testbed.Own(topology.Client.StartBackground(
            "curl", "-sS", "--max-time", "60", "--limit-rate", "4M", "-o", downloaded, "-w", "%{http_code} %{size_download}", $"http://{TopologyProcesses.AgentListen}/big.bin"));
        var (completed, failures) = await hosts.MigrateWhileDownloadingAsync(curl, FileBytes, Migrations);
        var download = await curl.WaitForExitAsync(TimeSpan.FromSeconds(70));

        Assert.True(download.Succeeded, $"curl exited with {download.ExitCode}: {download.StandardError}");
        Assert.Equal($"200 {FileBytes}", download.StandardOutput.Trim());
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.True(completed >= 1, $"no migration completed before the download ended; failed: {string.Join("; ", failures)}");
        Assert.Equal(completed, agent.Lines.Count(line => line.Contains("relay 1: migrated", StringComparison.Ordinal)));
        Assert.Equal(completed, new[] { server1, server2 }.Sum(server => server.Lines.Count(line => line.Contains("file connection resumes", StringComparison.Ordinal))));
        output.WriteLine($"{transport} over IPv6: {completed} migrations completed ({failures.Count} failed: {string.Join("; ", failures)}), SHA-256 verified");
    }

    public void Dispose() => _testbed.Dispose();
}

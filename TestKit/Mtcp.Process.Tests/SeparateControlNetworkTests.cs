using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The test-bed of thesis fig. 5.1 with real processes: the client agent and curl in a client namespace, one server
/// node in each of two server namespaces, MTCP segments (raw IP protocol 253) on the service network and the control
/// connections (Akka.Remote over kernel TCP) on an exclusive link between the servers. See
/// <see cref="ControlNetworkTopology"/> for the addresses.
/// </summary>
[Trait("Category", "Netns")]
[Collection(ProcessCollection.Name)]
public sealed partial class SeparateControlNetworkTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20051;
    private const int FileBytes = 24 * 1000 * 1000;
    private const int Migrations = 4;
    private const int RequiredMigrations = 3;
    private const byte MtcpProtocol = TopologyProcesses.MtcpProtocol;
    private const string RemoteTcp = "ip.proto == 6 && tcp.port == 2552";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Curl_through_the_agent_must_download_intact_across_migrations_with_state_transfers_only_on_the_control_network()
    {
        NetnsPrerequisites.RequireRoot();
        var started = Stopwatch.GetTimestamp();
        var topology = Own(ControlNetworkTopology.Create());
        output.WriteLine(topology.ToString());
        var serviceCapture = Own(PacketCapture.Start(topology.Hub, ControlNetworkTopology.HubBridge, CapturePath("service")));
        var controlCapture = Own(PacketCapture.Start(topology.Server1.Namespace, ControlNetworkTopology.ControlInterface, CapturePath("control")));
        var expected = WriteRandomFile("big.bin");
        var hosts = new TopologyProcesses(_testbed, topology, output, Own);

        var server1 = await hosts.StartServerAsync("server1", topology.Server1, seed: topology.Server1, extraConfig: ProcessTestbed.PacedFileServer("4MiB"));
        var server2 = await hosts.StartServerAsync("server2", topology.Server2, seed: topology.Server1, extraConfig: ProcessTestbed.PacedFileServer("4MiB"));
        foreach (var server in new[] { server1, server2 })
        {
            // Each node announces its file and request endpoints.
            await server.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        // The file servers are paced: curl's --limit-rate does not slow the sender, whose 16 MB the agent's and the
        // kernel's buffers took in under a second, so the migrations came after the download had ended.
        var agent = await hosts.StartAgentAsync();
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        // A limited rate keeps the download longer than its migrations take, and migrates with the agent's window closed.
        var curl = Own(topology.Client.StartBackground(
            "curl", "-sS", "--max-time", "60", "--limit-rate", "4M", "-o", downloaded, "-w", "%{http_code} %{size_download}", $"http://{TopologyProcesses.AgentListen}/big.bin"));
        var (completed, failures) = await hosts.MigrateWhileDownloadingAsync(curl, FileBytes, Migrations);
        var download = await curl.WaitForExitAsync(TimeSpan.FromSeconds(70));
        serviceCapture.Stop();
        controlCapture.Stop();

        Assert.True(download.Succeeded, $"curl exited with {download.ExitCode}: {download.StandardError}");
        Assert.Equal($"200 {FileBytes}", download.StandardOutput.Trim());
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.True(completed >= RequiredMigrations, $"{completed} migrations completed before the download ended; failed: {string.Join("; ", failures)}");
        Assert.Equal(completed, agent.Lines.Count(line => line.Contains("relay 1: migrated", StringComparison.Ordinal)));
        Assert.Equal(completed, new[] { server1, server2 }.Sum(server => server.Lines.Count(line => line.Contains("file connection resumes", StringComparison.Ordinal))));
        // Each destination logs the size of the state reply it received over its control connection.
        var stateReplyBytes = new[] { server1, server2 }.SelectMany(server => server.Lines)
            .Select(line => StateReplyLine().Match(line)).Where(match => match.Success)
            .Sum(match => long.Parse(match.Groups["bytes"].Value, CultureInfo.InvariantCulture));

        // The service network carries MTCP and no kernel TCP at all: Akka.Remote is the only kernel TCP between the hosts.
        var mtcpSegments = serviceCapture.Count($"ip.proto == {MtcpProtocol}", MtcpProtocol);
        var serviceKernelTcp = serviceCapture.Count("ip.proto == 6");
        var badSegments = serviceCapture.BadSegments(MtcpProtocol);
        // The control network carries the control connections and the cluster's gossip, and no MTCP segment.
        var controlMtcp = controlCapture.Count($"ip.proto == {MtcpProtocol}");
        var remoteBytes = controlCapture.Field(RemoteTcp, "tcp.len").Sum(length => long.Parse(length, CultureInfo.InvariantCulture));
        var remoteSegments = controlCapture.Count(RemoteTcp);
        output.WriteLine(
            $"{completed} migrations ({failures.Count} failed, {stateReplyBytes} bytes of state replies) in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s; "
            + $"service network: {mtcpSegments} protocol-{MtcpProtocol} segments, {serviceKernelTcp} kernel TCP; "
            + $"control network: {remoteSegments} Akka.Remote TCP segments ({remoteBytes} payload bytes), {controlMtcp} protocol-{MtcpProtocol}");

        Assert.True(mtcpSegments > FileBytes / 1460, $"{mtcpSegments} MTCP segments on the service network for a {FileBytes}-byte download");
        Assert.Equal(0, serviceKernelTcp);
        Assert.Empty(badSegments);
        Assert.Equal(0, controlMtcp);
        // The state replies crossed the control network: it carried at least their bytes (the gossip adds a little).
        Assert.True(stateReplyBytes > 0, "no destination logged a state reply");
        Assert.True(remoteBytes >= stateReplyBytes, $"{remoteBytes} Akka.Remote payload bytes on the control network, less than the {stateReplyBytes} bytes of state replies");
    }

    // In reverse: the processes, then the captures, then the namespaces they ran in; the scratch directory last.
    public void Dispose() => _testbed.Dispose();

    private static string CapturePath(string network) => Path.Combine(Path.GetTempPath(), $"mtcp-{Environment.ProcessId}-{network}-network.pcapng");

    private T Own<T>(T resource)
        where T : IDisposable => _testbed.Own(resource);

    [GeneratedRegex(@"migration in: .*; state reply (?<bytes>\d+) bytes")]
    private static partial Regex StateReplyLine();

    private string WriteRandomFile(string name) => _testbed.WriteRandomFile(name, FileBytes, Seed);
}

using System.Net;
using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// One process per address: a second server node on the Akka.Remote address and port of a running one, or a second
/// node or agent on its MTCP local address, refuses to start with a message naming them, and the first one keeps
/// serving (a second raw socket on the same address used to reset the first node's connections).
/// </summary>
[Trait("Category", "Process")]
[Trait("Category", "Security")]
[Collection(ProcessCollection.Name)]
public sealed class ExclusiveAddressTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_second_node_on_the_same_control_address_and_port_must_refuse_to_start()
    {
        var first = await _testbed.StartServerAsync("first");

        // The same Akka.Remote address and port, another MTCP address: only the control port is shared.
        var second = await StartSecondServerAsync(first.ControlEndPoint, ProcessTestbed.NextAddress());

        Assert.Equal(1, second.ExitCode);
        Assert.Contains(second.Process.Lines, line => line.Contains("cannot start", StringComparison.Ordinal) && line.Contains(first.ControlEndPoint.ToString(), StringComparison.Ordinal));
        await AssertStillServesAsync(first);
    }

    [Fact]
    public async Task A_second_node_on_the_same_mtcp_address_must_refuse_to_start()
    {
        var first = await _testbed.StartServerAsync("first");
        var control = new IPEndPoint(first.Address, ListenPorts.PickUnused(first.Address));

        var second = await StartSecondServerAsync(control, first.Address);

        Assert.Equal(1, second.ExitCode);
        Assert.Contains(second.Process.Lines, line => line.Contains($"local address {first.Address} (mtcp.runtime.local-address) is already used", StringComparison.Ordinal));
        await AssertStillServesAsync(first);
    }

    [Fact]
    public async Task An_agent_on_the_mtcp_address_of_a_node_must_refuse_to_start()
    {
        var first = await _testbed.StartServerAsync("first");
        var config = _testbed.WriteConfig("agent.conf", $$"""
            mtcp.runtime.local-address = "{{first.Address}}"
            mtcp.agent.service-endpoints = ["{{first.Service(ProcessTestbed.FilePort)}}"]
            mtcp.agent.serve.listen = "127.0.0.1:{{ListenPorts.PickUnused(IPAddress.Loopback)}}"
            mtcp.agent.control-endpoint = "127.0.0.1:{{ListenPorts.PickUnused(IPAddress.Loopback)}}"
            """);
        var agent = _testbed.Track(HostProcess.Start("agent", ProcessTestbed.AgentDll, ["--config", config, "serve"], output, _testbed.Directory.FullName));

        Assert.NotEqual(0, await agent.WaitForExitAsync(ExitTimeout));
        Assert.Contains(agent.Lines, line => line.Contains($"local address {first.Address} (mtcp.runtime.local-address) is already used", StringComparison.Ordinal));
        await AssertStillServesAsync(first);
    }

    public void Dispose() => _testbed.Dispose();

    private async Task<(int ExitCode, HostProcess Process)> StartSecondServerAsync(IPEndPoint control, IPAddress mtcpAddress)
    {
        var config = _testbed.WriteConfig("second.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{control.Address}}", port = {{control.Port}} }
            akka.cluster.seed-nodes = ["akka.ssl.tcp://mtcp@{{control}}"]
            {{_testbed.SecurityConfig("second", control.Address)}}
            mtcp.runtime.local-address = "{{mtcpAddress}}"
            mtcp.hosts.server.file.root = "{{_testbed.Files.FullName}}"
            """);
        var process = _testbed.Track(HostProcess.Start("second", ProcessTestbed.ServerDll, ["--config", config], output, _testbed.Directory.FullName));
        return (await process.WaitForExitAsync(ExitTimeout), process);
    }

    /// <summary>A download from the first node, directly over MTCP with the agent's fetch, still completes intact.</summary>
    private async Task AssertStillServesAsync(ServerHandle first)
    {
        var expected = _testbed.WriteRandomFile("small.bin", 256 << 10, seed: 3);
        var downloaded = Path.Combine(_testbed.Directory.FullName, "small.bin");
        var (exitCode, fetch) = await _testbed.RunAgentAsync("fetch", ExitTimeout, "fetch", "--no-progress", "-o", downloaded, $"http://{first.Service(ProcessTestbed.FilePort)}/small.bin");
        Assert.True(exitCode == 0, $"fetch exited with {exitCode}:\n{fetch.Output}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.False(first.Process.HasExited);
    }
}

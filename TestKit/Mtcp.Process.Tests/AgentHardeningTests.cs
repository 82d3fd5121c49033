using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The agent as a stranger-facing process: it migrates without holding the servers' cluster key, answers its control
/// requests on a Unix socket only its user may open, and refuses clients beyond its relay cap at once and clearly.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AgentHardeningTests(ITestOutputHelper output) : IDisposable
{
    private const int FileBytes = 20 * 1000 * 1000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Agent_without_a_cluster_key_must_migrate_a_relay_commanded_over_its_owner_only_unix_socket()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, seed: 912);
        var paced = ProcessTestbed.PacedFileServer("4MiB");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + paced);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + "\n" + paced);
        foreach (var server in new[] { first, second })
        {
            await server.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        // No mtcp.migration.cluster-key for the agent: only the servers hold it.
        var socket = Path.Combine(_testbed.Directory.FullName, "control.sock");
        var agent = await _testbed.StartAgentAsync(
            "agent",
            [first.Service(ProcessTestbed.FilePort), second.Service(ProcessTestbed.FilePort)],
            $"mtcp.agent.policy = off\nmtcp.agent.control-endpoint = \"unix:{socket}\"");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "4M", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        await agent.Process.WaitForLineAsync("relay 1:", Bound);

        var (exitCode, migrate) = await _testbed.RunAgentAsync("migrate", Bound, "--control", $"unix:{socket}", "migrate");
        var (curlExit, curlOutput) = await curl;

        Assert.True(exitCode == 0, $"migrate exited with {exitCode}:\n{migrate.Output}");
        Assert.Contains(migrate.Lines, line => line.Contains($"-> {second.Service(ProcessTestbed.FilePort)} completed", StringComparison.Ordinal));
        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("cluster-key", StringComparison.Ordinal));

        agent.Process.Terminate();
        Assert.Equal(0, await agent.Process.WaitForExitAsync(Bound));
        Assert.False(File.Exists(socket), "the control socket's file outlived the agent");
    }

    [Fact]
    public async Task Agent_at_its_relay_cap_must_reset_the_next_client_at_once_and_count_it()
    {
        _testbed.WriteRandomFile("big.bin", FileBytes, seed: 913);
        var server = await _testbed.StartServerAsync("server", extraConfig: ProcessTestbed.PacedFileServer("2MiB"));

        // The control endpoint is left at its default: a Unix socket in the working directory.
        var listen = new IPEndPoint(IPAddress.Loopback, ListenPorts.PickUnused(IPAddress.Loopback));
        var config = _testbed.WriteConfig("capped.conf", $$"""
            mtcp.runtime.local-address = "{{ProcessTestbed.NextAddress()}}"
            mtcp.agent.service-endpoints = ["{{server.Service(ProcessTestbed.FilePort)}}"]
            mtcp.agent.serve { listen = "{{listen}}", max-connections = 1 }
            """);
        var agent = _testbed.Track(HostProcess.Start("agent", ProcessTestbed.AgentDll, ["--config", config, "serve"], output, _testbed.Directory.FullName));
        await agent.WaitForLineAsync("agent ready", ProcessTestbed.StartTimeout);
        var socket = Path.Combine(_testbed.Directory.FullName, "mtcp-agent.sock");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "2M", "-o", "/dev/null", $"http://{listen}/big.bin");
        await agent.WaitForLineAsync("relay 1:", Bound);

        // The RST can come before the connect completes here, or on the first read: both are a reset at once.
        using var refused = new TcpClient();
        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await refused.ConnectAsync(listen);
            await refused.GetStream().ReadAsync(new byte[1]).AsTask().WaitAsync(Bound);
        });
        Assert.Equal(SocketError.ConnectionReset, (error as SocketException ?? error.InnerException as SocketException)?.SocketErrorCode);
        await agent.WaitForLineAsync("relay refused:", Bound);

        var (statusExit, status) = await _testbed.RunAgentAsync("status", Bound, "status", "--json");
        Assert.True(statusExit == 0, status.Output);
        using var document = JsonDocument.Parse(status.Lines.First(line => line.StartsWith('{')));
        Assert.Equal(1, document.RootElement.GetProperty("refused").GetInt64());
        Assert.Equal(1, document.RootElement.GetProperty("maxConnections").GetInt32());
        Assert.Equal(0, (await curl).ExitCode);
    }

    public void Dispose() => _testbed.Dispose();
}

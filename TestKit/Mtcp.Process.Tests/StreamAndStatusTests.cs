using System.Net.Sockets;
using System.Text.Json;
using Mtcp.Apps;
using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class StreamAndStatusTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Stream_server_must_push_the_whole_stream_in_order_through_the_agent()
    {
        const int StreamLength = 256 * 1024;
        var server = await _testbed.StartServerAsync("server", extraConfig: "mtcp.hosts.server.stream { enabled = on, stream-length = 256KiB, degrade-after-chunks = 128, delay-step = 1ms, max-delay = 5ms }");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.StreamPort)]);
        using var client = new TcpClient();
        await client.ConnectAsync(agent.Listen);
        var stream = client.GetStream();
        using var cancellation = new CancellationTokenSource(Bound);
        await stream.WriteAsync("STREAM\n"u8.ToArray(), cancellation.Token);

        var received = new MemoryStream();
        await stream.CopyToAsync(received, cancellation.Token);

        Assert.Equal(StreamLength, received.Length);
        var bytes = received.GetBuffer();
        var firstWrong = Enumerable.Range(0, StreamLength).FirstOrDefault(i => bytes[i] != StreamServer.ByteAt(i), -1);
        Assert.True(firstWrong == -1, $"byte {firstWrong} is {bytes[Math.Max(firstWrong, 0)]}");
    }

    [Fact]
    public async Task Agent_status_must_show_the_transport_and_the_open_relays()
    {
        var server = await _testbed.StartServerAsync("server");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)], "mtcp.agent.migration = off");
        using var client = new RespClient();
        await client.ConnectAsync(agent.Listen);
        Assert.Equal("+PONG", await client.CommandAsync("PING"));

        var (exitCode, status) = await _testbed.RunAgentAsync("status", Bound, "--control", agent.Control.ToString(), "status", "--json");

        Assert.Equal(0, exitCode);
        using var document = JsonDocument.Parse(status.Lines.Single(line => line.StartsWith('{')));
        var root = document.RootElement;
        Assert.Contains($"transport: {root.GetProperty("transport").GetString()}", agent.Process.Output, StringComparison.Ordinal);
        Assert.False(root.GetProperty("migrationAvailable").GetBoolean());
        var relay = Assert.Single(root.GetProperty("connections").EnumerateArray());
        Assert.Equal(server.Service(ProcessTestbed.RequestPort), relay.GetProperty("service").GetString());
        Assert.Equal(7, relay.GetProperty("bytesFromService").GetInt64());
    }

    [Fact]
    public async Task Agent_status_must_fit_80_columns_and_show_closed_relays_and_their_migrations_in_human_units()
    {
        var expected = _testbed.WriteRandomFile("big.bin", 3 << 20, seed: 80);
        // The migration must complete while the relay is open.
        var paced = ProcessTestbed.PacedFileServer("1MiB");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + paced);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + "\n" + paced);
        await second.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort)], "mtcp.agent.policy = off");
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        var curl = Curl.RunAsync("-sS", "--max-time", "60", "--limit-rate", "1M", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        var relay = await agent.OpenRelayAsync(Bound);
        using (var moved = JsonDocument.Parse(await agent.AskAsync($"migrate {relay} {second.Service(ProcessTestbed.FilePort)}", Bound)))
        {
            Assert.True(moved.RootElement.GetProperty("outcomes")[0].GetProperty("completed").GetBoolean(), moved.RootElement.ToString());
        }

        Assert.Equal(0, (await curl).ExitCode);
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));

        var (exitCode, status) = await _testbed.RunAgentAsync("status", Bound, "--control", agent.Control.ToString(), "status");

        Assert.Equal(0, exitCode);
        Assert.All(status.Lines, line => Assert.True(line.Length <= 80, $"{line.Length} columns: {line}"));
        Assert.Contains(status.Lines, line => line.Contains("recently closed", StringComparison.Ordinal));
        Assert.Contains(status.Lines, line => line.TrimStart().StartsWith($"{relay} ", StringComparison.Ordinal) && line.Contains("3 MB", StringComparison.Ordinal));
        Assert.Contains(status.Lines, line => line.Contains($"{first.Service(ProcessTestbed.FilePort)} -> {second.Service(ProcessTestbed.FilePort)} ok", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_status_must_fail_clearly_when_no_agent_serves()
    {
        var control = $"127.0.0.1:{ListenPorts.PickUnused(System.Net.IPAddress.Loopback)}";

        var (exitCode, status) = await _testbed.RunAgentAsync("status", Bound, "--control", control, "status");

        Assert.Equal(1, exitCode);
        Assert.Contains(status.Lines, line => line.Contains($"no agent answers at {control}", StringComparison.Ordinal));
    }

    public void Dispose() => _testbed.Dispose();
}

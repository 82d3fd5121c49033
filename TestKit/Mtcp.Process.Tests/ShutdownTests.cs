using System.Diagnostics;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class ShutdownTests(ITestOutputHelper output) : IDisposable
{
    private const int OpenConnections = 100;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Graceful_shutdown_must_close_open_connections_with_FIN_not_RST()
    {
        // Migration on: the node's shutdown (drain) path is the one a migrating cluster runs.
        var server = await _testbed.StartServerAsync("server", extraConfig: ProcessTestbed.MigrationConfig);
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)], ProcessTestbed.MigrationConfig);
        var clients = new List<RespClient>();
        try
        {
            for (var i = 0; i < OpenConnections; i++)
            {
                var client = new RespClient();
                clients.Add(client);
                await client.ConnectAsync(agent.Listen);
                Assert.Equal("+PONG", await client.CommandAsync("PING"));
            }

            server.Process.Terminate();

            foreach (var client in clients)
            {
                // A FIN reads as 0 bytes; a RST would throw "connection reset".
                Assert.Equal(0, await client.ReadAsync(new byte[16], Bound));
            }

            Assert.Equal(0, await server.Process.WaitForExitAsync(Bound));
            Assert.Contains(server.Process.Lines, line => line.Contains($"closed {OpenConnections} open connections gracefully", StringComparison.Ordinal));
            Assert.Contains(server.Process.Lines, line => line.Contains("left the cluster", StringComparison.Ordinal));
            Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("reset:", StringComparison.Ordinal));
        }
        finally
        {
            clients.ForEach(client => client.Dispose());
        }
    }

    [Fact]
    public async Task Graceful_shutdown_must_drain_open_connections_to_a_peer_without_a_client_error()
    {
        var server = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig);
        var peer = await _testbed.StartServerAsync("server2", server, ProcessTestbed.MigrationConfig);
        foreach (var node in new[] { server, peer })
        {
            await node.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)], ProcessTestbed.MigrationConfig);
        var clients = new List<RespClient>();
        try
        {
            for (var i = 0; i < OpenConnections; i++)
            {
                var client = new RespClient();
                clients.Add(client);
                await client.ConnectAsync(agent.Listen);
                Assert.Equal("+OK", await client.CommandAsync("SET", "client", $"{i}"));
            }

            server.Process.Terminate();
            Assert.Equal(0, await server.Process.WaitForExitAsync(Bound));

            // Each connection carried its map to the peer: the same answers, no reset, no reconnect.
            for (var i = 0; i < OpenConnections; i++)
            {
                Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), await clients[i].CommandAsync("GET", "client"));
            }

            Assert.Contains(server.Process.Lines, line => line.Contains($"drain: {OpenConnections} of {OpenConnections} connections migrated to peers", StringComparison.Ordinal));
            Assert.Equal(OpenConnections, peer.Process.Lines.Count(line => line.Contains("migration in: cid ", StringComparison.Ordinal) && line.Contains(": request connection resumes", StringComparison.Ordinal)));
            Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("reset:", StringComparison.Ordinal));
        }
        finally
        {
            clients.ForEach(client => client.Dispose());
        }
    }

    [Fact]
    public async Task Agent_must_fail_new_connections_to_a_killed_server_clearly_and_in_bounded_time()
    {
        var server = await _testbed.StartServerAsync("server");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.FilePort)], "mtcp.agent.connect-timeout = 2s");
        File.WriteAllText(Path.Combine(_testbed.Files.FullName, "a.txt"), "a\n");
        Assert.Equal((0, "a\n"), await Curl.RunAsync("-sS", "--max-time", "20", $"http://{agent.Listen}/a.txt"));

        server.Process.Kill();
        var started = Stopwatch.GetTimestamp();
        var (curlExit, _) = await Curl.RunAsync("-sS", "--max-time", "20", $"http://{agent.Listen}/a.txt");
        var curlFailedAfter = Stopwatch.GetElapsedTime(started);
        var fetchConfig = _testbed.WriteConfig("fetch.conf", "mtcp.agent.connect-timeout = 2s");
        var (fetchExit, fetch) = await _testbed.RunAgentAsync("fetch", Bound, "--config", fetchConfig, "fetch", $"http://{server.Service(ProcessTestbed.FilePort)}/a.txt", "--no-progress", "-o", "a.out");

        Assert.NotEqual(0, curlExit);
        Assert.True(curlFailedAfter < TimeSpan.FromSeconds(15), $"curl failed only after {curlFailedAfter.TotalSeconds:0.0} s");
        await agent.Process.WaitForLineAsync("no service endpoint answered", TimeSpan.FromSeconds(5));
        Assert.Equal(1, fetchExit);
        Assert.Contains(fetch.Lines, line => line.Contains($"fetch failed: no service endpoint answered: {server.Service(ProcessTestbed.FilePort)}: no answer within 2 s", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_must_reset_a_relay_whose_server_was_killed_mid_stream()
    {
        const string SlowStream = """
            mtcp.hosts.server.stream { enabled = on, stream-length = 64MiB, degrade-after-chunks = 0, delay-step = 20ms, max-delay = 20ms }
            """;
        var server = await _testbed.StartServerAsync("server", extraConfig: SlowStream);
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.StreamPort)], "mtcp.agent.serve.idle-timeout = 2s");
        using var client = new TcpClient();
        await client.ConnectAsync(agent.Listen);
        var stream = client.GetStream();
        await stream.WriteAsync("STREAM\n"u8.ToArray());
        var buffer = new byte[4096];
        using (var first = new CancellationTokenSource(Bound))
        {
            Assert.True(await stream.ReadAsync(buffer, first.Token) > 0);
        }

        server.Process.Kill();
        var killed = Stopwatch.GetTimestamp();
        using var cancellation = new CancellationTokenSource(Bound);
        var failure = await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            while (await stream.ReadAsync(buffer, cancellation.Token) > 0)
            {
            }
        });

        output.WriteLine($"the client saw {failure.Message} {Stopwatch.GetElapsedTime(killed).TotalSeconds:0.0} s after the kill");
        Assert.IsType<SocketException>(failure.InnerException);
        Assert.Equal(SocketError.ConnectionReset, ((SocketException)failure.InnerException!).SocketErrorCode);
        await agent.Process.WaitForLineAsync("mtcp.agent.serve.idle-timeout", TimeSpan.FromSeconds(5));
    }

    public void Dispose() => _testbed.Dispose();
}

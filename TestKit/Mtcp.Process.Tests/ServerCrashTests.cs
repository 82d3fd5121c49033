using System.Diagnostics;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// A node killed under a live relay (SIGKILL: no drain, no FIN). Without replicated state no other node can take the
/// connection over, so the guarantee here is the bound: the agent notices the silence, tries the alternates, and
/// resets its client within <c>mtcp.migration.failover</c>'s time, long before any idle timeout.
/// </summary>
[Trait("Category", "Failover")]
[Collection(ProcessCollection.Name)]
public sealed class ServerCrashTests(ITestOutputHelper output) : IDisposable
{
    private const string SlowStream = """
        mtcp.hosts.server.stream { enabled = on, stream-length = 64MiB, degrade-after-chunks = 0, delay-step = 20ms, max-delay = 20ms }
        """;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_relay_whose_server_was_killed_must_be_reset_within_the_failover_bound_after_trying_the_alternates()
    {
        var server1 = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + SlowStream);
        var server2 = await _testbed.StartServerAsync("server2", server1, ProcessTestbed.MigrationConfig + "\n" + SlowStream);
        foreach (var node in new[] { server1, server2 })
        {
            await node.Process.WaitForLineAsync("cluster view: 6 service endpoints", Bound);
        }

        // The idle timeout is far away: only failover can end the relay in time.
        var agent = await _testbed.StartAgentAsync("agent", [server1.Service(ProcessTestbed.StreamPort)], ProcessTestbed.MigrationConfig + "\nmtcp.agent.serve.idle-timeout = 5m");
        using var client = new TcpClient();
        await client.ConnectAsync(agent.Listen);
        var stream = client.GetStream();
        await stream.WriteAsync("STREAM\n"u8.ToArray());
        var buffer = new byte[4096];
        using (var first = new CancellationTokenSource(Bound))
        {
            Assert.True(await stream.ReadAsync(buffer, first.Token) > 0);
        }

        server1.Process.Kill();
        var killed = Stopwatch.GetTimestamp();
        using var cancellation = new CancellationTokenSource(Bound);
        var failure = await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            while (await stream.ReadAsync(buffer, cancellation.Token) > 0)
            {
            }
        });
        var resetAfter = Stopwatch.GetElapsedTime(killed);

        output.WriteLine($"the client saw {failure.Message} {resetAfter.TotalSeconds:0.0} s after the kill");
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(failure.InnerException).SocketErrorCode);

        // Defaults: 2 s quiet, 3 probes at most 1 s apart, then the one alternate: its special SYN cannot be answered
        // (the origin is gone), so the failover ends when its 1 s runs out (about 4-5 s in all; 10 s at worst).
        Assert.True(resetAfter < TimeSpan.FromSeconds(12), $"reset only {resetAfter.TotalSeconds:0.0} s after the kill");
        await agent.Process.WaitForLineAsync($"server {server1.Service(ProcessTestbed.StreamPort)} fell silent", TimeSpan.FromSeconds(5));
        await agent.Process.WaitForLineAsync($"failover from silent server {server1.Service(ProcessTestbed.StreamPort)} gave up", TimeSpan.FromSeconds(5));
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("mtcp.agent.serve.idle-timeout", StringComparison.Ordinal));
    }

    public void Dispose() => _testbed.Dispose();
}

using System.Net.Sockets;
using Mtcp.Apps;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The agent's latency trigger (thesis 3.4 (1)) on the gaps between its reads of a stream the server is still sending,
/// judged by its fixed bound: the stream server of thesis 5.3.2, whose chunks come later and later after the first 64
/// of a visit, is left once its gaps pass the bound, and every byte of the stream arrives in order.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class LatencyPolicyTests(ITestOutputHelper output) : IDisposable
{
    private const int StreamBytes = 192 * 1024;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Stream_whose_gaps_grow_past_the_fixed_bound_must_be_left_by_the_latency_trigger()
    {
        // The stream server's reference degradation: 1 KiB chunks, 64 at full speed, then each 1 ms later than the one
        // before, up to 50 ms.
        var stream = $"\nmtcp.hosts.server.stream {{ enabled = on, stream-length = {StreamBytes} }}";
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + stream);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + stream);
        foreach (var server in new[] { first, second })
        {
            await server.Process.WaitForLineAsync("cluster view: 6 service endpoints", Bound);
        }

        var agent = await _testbed.StartAgentAsync(
            "agent",
            [first.Service(ProcessTestbed.StreamPort), second.Service(ProcessTestbed.StreamPort)],
            "mtcp.agent.policy = [latency]\nmtcp.policies.client.latency.fixed-bound = 10ms");

        using var client = new TcpClient();
        using (var timeout = new CancellationTokenSource(Bound))
        {
            await client.ConnectAsync(agent.Listen, timeout.Token);
            var connection = client.GetStream();
            await connection.WriteAsync("stream\r\n"u8.ToArray(), timeout.Token);
            var received = new byte[StreamBytes + 1];
            var length = 0;
            int read;
            while ((read = await connection.ReadAsync(received.AsMemory(length), timeout.Token)) > 0)
            {
                length += read;
            }

            Assert.Equal(StreamBytes, length);
            var firstWrong = Enumerable.Range(0, length).FirstOrDefault(offset => received[offset] != StreamServer.ByteAt(offset), -1);
            Assert.True(firstWrong < 0, $"byte {firstWrong} of the stream is wrong");
        }

        client.Close();
        var migrations = (await agent.ClosedRelayAsync(Bound)).GetProperty("migrations").EnumerateArray().ToList();
        Assert.NotEmpty(migrations);
        var moved = migrations[0];
        var reason = moved.GetProperty("reason").GetString()!;
        output.WriteLine($"{migrations.Count} migrations; the first at byte {moved.GetProperty("atByteFromService").GetInt64()}: {reason}");
        Assert.True(moved.GetProperty("completed").GetBoolean());
        Assert.Equal("policy", moved.GetProperty("cause").GetString());
        Assert.Equal(first.Service(ProcessTestbed.StreamPort), moved.GetProperty("from").GetString());
        Assert.StartsWith("SegmentDelay: ", reason, StringComparison.Ordinal);
        Assert.Contains("later than 10.0 ms", reason, StringComparison.Ordinal);
    }

    public void Dispose() => _testbed.Dispose();
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The agent's response-time trigger (thesis 3.4 (2)) on the request boundaries its relay sees: a key-value session
/// whose server degrades (each answer held back longer, mtcp.hosts.server.request.delay-step) is moved to the other
/// node with its values and without a request applied twice, while a steady download through agents with the same
/// policy is left alone.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class ResponseTimePolicyTests(ITestOutputHelper output) : IDisposable
{
    private const int Keys = 20;
    private const int MaxIncrements = 400;
    private const int FileBytes = 8 * 1000 * 1000;
    private const string Policy = "mtcp.agent.policy = [response-time]";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Degrading_key_value_server_must_be_left_for_its_response_time_with_every_value_applied_once()
    {
        var (first, second) = await StartServersAsync();
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.RequestPort), second.Service(ProcessTestbed.RequestPort)], Policy);
        using var client = new RespClient();
        await client.ConnectAsync(agent.Listen);

        // The first 30 answers of a visit are prompt (degrade-after-requests): the values are set on the first node.
        for (var key = 0; key < Keys; key++)
        {
            Assert.Equal("+OK", await client.CommandAsync("SET", $"key{key}", $"value{key}"));
        }

        // Then each answer comes 2 ms later than the one before until the policy moves the session; INCR is not
        // idempotent, so a request applied twice (or lost) across the migration shows in the counter.
        var increments = 0;
        var started = Stopwatch.StartNew();
        while (!MigratedByPolicy(agent))
        {
            Assert.True(increments < MaxIncrements, $"no policy migration after {increments} increments in {started.Elapsed.TotalSeconds:0.0} s");
            Assert.Equal($":{++increments}", await client.CommandAsync("INCR", "counter"));
        }

        var beforeMove = increments;
        for (var more = 0; more < 10; more++)
        {
            Assert.Equal($":{++increments}", await client.CommandAsync("INCR", "counter"));
        }

        for (var key = 0; key < Keys; key++)
        {
            Assert.Equal($"value{key}", await client.CommandAsync("GET", $"key{key}"));
        }

        Assert.Equal(increments.ToString(CultureInfo.InvariantCulture), await client.CommandAsync("GET", "counter"));
        Assert.Equal("+OK", await client.CommandAsync("QUIT"));
        Assert.Equal(0, await client.ReadAsync(new byte[16], Bound));
        client.Dispose();

        var migrations = (await agent.ClosedRelayAsync(Bound)).GetProperty("migrations").EnumerateArray().ToList();
        var moved = Assert.Single(migrations);
        var reason = moved.GetProperty("reason").GetString()!;
        output.WriteLine($"moved after {beforeMove} increments ({started.Elapsed.TotalSeconds:0.0} s): {reason}");
        Assert.True(moved.GetProperty("completed").GetBoolean());
        Assert.Equal("policy", moved.GetProperty("cause").GetString());
        Assert.StartsWith("ResponseTime: ", reason, StringComparison.Ordinal);
        Assert.Contains(" slow requests in a row: ", reason, StringComparison.Ordinal);
        Assert.Equal(first.Service(ProcessTestbed.RequestPort), moved.GetProperty("from").GetString());
        Assert.Equal(second.Service(ProcessTestbed.RequestPort), moved.GetProperty("to").GetString());
    }

    [Fact]
    public async Task Steady_download_must_not_be_migrated_by_the_response_time_trigger()
    {
        var (first, second) = await StartServersAsync();
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort), second.Service(ProcessTestbed.FilePort)], Policy);
        var expected = _testbed.WriteRandomFile("steady.bin", FileBytes, seed: 3);
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");

        var started = Stopwatch.StartNew();
        var (exitCode, curlOutput) = await Curl.RunAsync(["-sS", "--max-time", "120", "-o", downloaded, $"http://{agent.Listen}/steady.bin"]);
        var elapsed = started.Elapsed;

        Assert.True(exitCode == 0, $"curl exited with {exitCode}: {curlOutput}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        var relay = await agent.ClosedRelayAsync(Bound);
        output.WriteLine($"steady download: {FileBytes} bytes in {elapsed.TotalSeconds:0.0} s, {relay.GetProperty("migrations").GetArrayLength()} migrations");
        Assert.True(elapsed > TimeSpan.FromSeconds(2), $"the download took {elapsed.TotalSeconds:0.0} s: the pace did not hold");
        Assert.Equal(0, relay.GetProperty("migrations").GetArrayLength());
        Assert.DoesNotContain(agent.Process.Lines, line => line.Contains("the client policy migrates", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Interactive_session_with_pauses_must_not_be_migrated_by_the_default_policy()
    {
        var (first, second) = await StartServersAsync();
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.RequestPort), second.Service(ProcessTestbed.RequestPort)]);
        using var client = new RespClient();
        await client.ConnectAsync(agent.Listen);

        // A user's bursts of commands between pauses of uneven length, within the first node's 30 prompt answers: the
        // rate of answers falls with each long pause, which is the user's doing, not the server's.
        var commands = 0;
        foreach (var pause in new[] { 200, 200, 200, 2500, 200, 2500, 2500 })
        {
            for (var burst = 0; burst < 3; burst++)
            {
                Assert.Equal($":{++commands}", await client.CommandAsync("INCR", "commands"));
            }

            await Task.Delay(pause);
        }

        Assert.Equal("+OK", await client.CommandAsync("QUIT"));
        Assert.Equal(0, await client.ReadAsync(new byte[16], Bound));
        client.Dispose();
        var relay = await agent.ClosedRelayAsync(Bound);
        output.WriteLine($"interactive session: {commands} commands, {relay.GetProperty("migrations").GetArrayLength()} migrations");
        Assert.Equal(0, relay.GetProperty("migrations").GetArrayLength());
        Assert.Contains(agent.Process.Lines, line => line.Contains("client policy: throughput", StringComparison.Ordinal) && line.Contains("; response-time", StringComparison.Ordinal));
    }

    /// <summary>
    /// Two nodes in one cluster, each with the file server paced at 2 MiB/s and the key-value server; the first one's
    /// key-value server degrades after 30 answers of a visit by 2 ms more per answer, up to 60 ms.
    /// </summary>
    private async Task<(ServerHandle First, ServerHandle Second)> StartServersAsync()
    {
        const string Paced = "\nmtcp.hosts.server.file.pace.best-rate = 2MiB";
        const string Degrading = "\nmtcp.hosts.server.request { degrade-after-requests = 30, delay-step = 2ms, max-delay = 60ms }";
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + Paced + Degrading);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + Paced);
        foreach (var server in new[] { first, second })
        {
            await server.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        return (first, second);
    }

    private static bool MigratedByPolicy(AgentHandle agent) =>
        agent.Process.Lines.Any(line => line.Contains(": migrated ", StringComparison.Ordinal) && line.Contains("(policy: ResponseTime", StringComparison.Ordinal));

    public void Dispose() => _testbed.Dispose();
}

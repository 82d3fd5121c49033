using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// Half-close end to end (RFC 9293 §3.10.4): unmodified clients that send their request, then a FIN, then read the
/// answer to the server's FIN (<c>nc -N</c>, a one-shot <c>redis-cli</c>) get the whole answer through the agent, and
/// the relay closes within seconds of the answer instead of waiting for the idle timeout.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class HalfCloseTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan RelayCloseLimit = TimeSpan.FromSeconds(5);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Nc_N_must_get_a_whole_file_after_its_FIN_and_leave_no_relay_behind()
    {
        const int FileBytes = 2_000_000;
        var server = await _testbed.StartServerAsync("server");
        var expected = _testbed.WriteRandomFile("answer.bin", FileBytes, seed: 15);
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.FilePort)]);

        var (exitCode, stdout, stderr) = await NcAsync(agent, "GET /answer.bin HTTP/1.1\r\nHost: mtcp\r\n\r\n");

        Assert.True(exitCode == 0, $"nc exited {exitCode}: {stderr}");
        var headerEnd = stdout.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(headerEnd > 0, $"no HTTP header in {stdout.Length} bytes");
        Assert.StartsWith("HTTP/1.1 200 OK", Encoding.ASCII.GetString(stdout, 0, headerEnd), StringComparison.Ordinal);
        var body = stdout.AsSpan(headerEnd + 4);
        Assert.Equal(FileBytes, body.Length);
        Assert.Equal(expected, Convert.ToHexStringLower(SHA256.HashData(body)));
        await AssertNoRelayLeftAsync(agent, relays: 1);
        await agent.Process.WaitForLineAsync("closed its side", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Nc_N_must_get_a_whole_file_across_two_migrations_made_after_its_FIN()
    {
        // The client's FIN reaches each server before the connection leaves it (CLOSE-WAIT): the next server replays it
        // from the state reply, writes the rest of the file and closes. The paced file server keeps the answer going
        // for about 4 s, long enough for the operator's migrations.
        const int FileBytes = 16_000_000;
        const string Paced = "\nmtcp.hosts.server.file.pace { best-rate = 4MiB, degrade-after = 0, slowdown-per-chunk = 0, max-slowdown = 1 }";
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + Paced);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + Paced);
        foreach (var server in new[] { first, second })
        {
            await server.Process.WaitForLineAsync("cluster view: 4 service endpoints", ToolTimeout);
        }

        var expected = _testbed.WriteRandomFile("answer.bin", FileBytes, seed: 16);
        var agent = await _testbed.StartAgentAsync("agent", [first.Service(ProcessTestbed.FilePort), second.Service(ProcessTestbed.FilePort)], "mtcp.agent.policy = off");
        var nc = NcAsync(agent, "GET /answer.bin HTTP/1.1\r\nHost: mtcp\r\n\r\n");
        await agent.Process.WaitForLineAsync("closed its side", ToolTimeout);

        var migrated = 0;
        foreach (var (destination, share) in new[] { (second, 1), (first, 2) })
        {
            var relay = await agent.OpenRelayAsync(ToolTimeout, bytes: (long)FileBytes * share / 3);
            using var result = JsonDocument.Parse(await agent.AskAsync($"migrate {relay} {destination.Service(ProcessTestbed.FilePort)}", ToolTimeout));
            var outcome = result.RootElement.GetProperty("outcomes").EnumerateArray().Single();
            Assert.True(outcome.GetProperty("completed").GetBoolean(), $"migration {share} failed: {outcome}");
            migrated++;
        }

        var (exitCode, stdout, stderr) = await nc;
        Assert.True(exitCode == 0, $"nc exited {exitCode}: {stderr}");
        var headerEnd = stdout.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(headerEnd > 0, $"no HTTP header in {stdout.Length} bytes");
        Assert.Equal(expected, Convert.ToHexStringLower(SHA256.HashData(stdout.AsSpan(headerEnd + 4))));
        Assert.Equal(2, migrated);
        await AssertNoRelayLeftAsync(agent, relays: 1);
    }

    [Fact]
    public async Task Nc_N_must_get_every_answer_of_the_request_server_which_then_closes()
    {
        var server = await _testbed.StartServerAsync("server");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)]);

        var (exitCode, stdout, stderr) = await NcAsync(agent, "SET greeting bonjour\r\nGET greeting\r\nPING\r\n");

        Assert.True(exitCode == 0, $"nc exited {exitCode}: {stderr}");
        Assert.Equal("+OK\r\n$7\r\nbonjour\r\n+PONG\r\n", Encoding.ASCII.GetString(stdout));
        await AssertNoRelayLeftAsync(agent, relays: 1);
    }

    [Fact]
    public async Task One_shot_redis_cli_commands_must_each_be_answered_and_leave_no_relay_behind()
    {
        var server = await _testbed.StartServerAsync("server");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)]);

        Assert.Equal("PONG", await RedisCliAsync(agent, "PING"));
        Assert.Equal("OK", await RedisCliAsync(agent, "SET", "greeting", "bonjour"));
        Assert.Equal("hello world", await RedisCliAsync(agent, "ECHO", "hello world"));

        await AssertNoRelayLeftAsync(agent, relays: 3);
    }

    private async Task<(int ExitCode, byte[] Stdout, string Stderr)> NcAsync(AgentHandle agent, string request)
    {
        // -N: shutdown(2) the socket's sending side at the end of the input, then read to the server's FIN.
        var started = Stopwatch.GetTimestamp();
        var result = await CommandLineTool.RunAsync(
            "nc", "netcat-openbsd", ToolTimeout, Encoding.ASCII.GetBytes(request), "-N", agent.Listen.Address.ToString(), agent.Listen.Port.ToString(CultureInfo.InvariantCulture));
        output.WriteLine($"nc -N: exit {result.ExitCode}, {result.Stdout.Length} bytes in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms");
        return result;
    }

    private async Task<string> RedisCliAsync(AgentHandle agent, params string[] command)
    {
        var started = Stopwatch.GetTimestamp();
        var (exitCode, stdout, stderr) = await CommandLineTool.RunAsync(
            "redis-cli", "redis-tools", ToolTimeout, stdin: null, ["-h", agent.Listen.Address.ToString(), "-p", agent.Listen.Port.ToString(CultureInfo.InvariantCulture), .. command]);
        output.WriteLine($"redis-cli {string.Join(' ', command)}: exit {exitCode} in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms");
        Assert.True(exitCode == 0, $"redis-cli exited {exitCode}: {stderr}");
        return Encoding.UTF8.GetString(stdout).TrimEnd('\n');
    }

    /// <summary>status shows no open relay within <see cref="RelayCloseLimit"/>, and <paramref name="relays"/> closed ones.</summary>
    private async Task AssertNoRelayLeftAsync(AgentHandle agent, int relays)
    {
        var waiting = Stopwatch.StartNew();
        while (true)
        {
            using var status = JsonDocument.Parse(await agent.AskAsync("status", TimeSpan.FromSeconds(5)));
            var open = status.RootElement.GetProperty("connections").GetArrayLength();
            var closed = status.RootElement.GetProperty("recentlyClosed").GetArrayLength();
            if (open == 0 && closed == relays)
            {
                output.WriteLine($"no relay left {waiting.ElapsedMilliseconds} ms after the client's last answer");
                return;
            }

            Assert.True(waiting.Elapsed < RelayCloseLimit, $"{open} relays still open and {closed} closed {RelayCloseLimit.TotalSeconds:0} s after the answer: {status.RootElement}");
            await Task.Delay(50);
        }
    }

    public void Dispose() => _testbed.Dispose();
}

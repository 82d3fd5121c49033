using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class RequestServerTests(ITestOutputHelper output) : IDisposable
{
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Request_server_must_answer_a_redis_client_through_the_agent()
    {
        var server = await _testbed.StartServerAsync("server");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)]);
        using var client = new RespClient();
        await client.ConnectAsync(agent.Listen);

        Assert.Equal("+PONG", await client.CommandAsync("PING"));
        Assert.Equal("hello world", await client.CommandAsync("ECHO", "hello world"));
        Assert.Null(await client.CommandAsync("GET", "greeting"));
        Assert.Equal("+OK", await client.CommandAsync("SET", "greeting", "bonjour"));
        Assert.Equal("bonjour", await client.CommandAsync("GET", "greeting"));
        Assert.Equal(":1", await client.CommandAsync("INCR", "visits"));
        Assert.Equal(":2", await client.CommandAsync("INCR", "visits"));
        Assert.Equal("2", await client.CommandAsync("GET", "visits"));
        Assert.StartsWith("-ERR value is not an integer", await client.CommandAsync("INCR", "greeting"), StringComparison.Ordinal);
        Assert.Equal("+PONG", await client.RawAsync("PING\r\n"));
        Assert.StartsWith("-ERR unknown command 'FLUSHALL'", await client.CommandAsync("FLUSHALL"), StringComparison.Ordinal);
        Assert.StartsWith("-ERR wrong number of arguments for 'get'", await client.CommandAsync("GET"), StringComparison.Ordinal);
        Assert.Equal("+OK", await client.CommandAsync("QUIT"));
        Assert.Equal(0, await client.ReadAsync(new byte[16], TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Request_server_must_keep_each_connections_map_to_itself()
    {
        var server = await _testbed.StartServerAsync("server");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.RequestPort)]);
        using var first = new RespClient();
        using var second = new RespClient();
        await first.ConnectAsync(agent.Listen);
        await second.ConnectAsync(agent.Listen);

        Assert.Equal("+OK", await first.CommandAsync("SET", "key", "first"));
        Assert.Equal("+OK", await second.CommandAsync("SET", "key", "second"));

        Assert.Equal("first", await first.CommandAsync("GET", "key"));
        Assert.Equal("second", await second.CommandAsync("GET", "key"));
    }

    public void Dispose() => _testbed.Dispose();
}

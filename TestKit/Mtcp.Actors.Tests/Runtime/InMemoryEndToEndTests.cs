using System.Net;
using System.Net.Sockets;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>Client and server runtimes in one ActorSystem, joined by an in-memory fabric, used only through the API.</summary>
[Trait("Category", "Actors")]
public sealed class InMemoryEndToEndTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7000;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly MtcpRuntime _server;
    private readonly MtcpRuntime _client;

    public InMemoryEndToEndTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
    {
        _server = MtcpRuntime.Start(Sys, _fabric, NodeConfig("10.0.0.1"), "server");
        _client = MtcpRuntime.Start(Sys, _fabric, NodeConfig("10.0.0.2"), "client");
    }

    private IPEndPoint Service => new(IPAddress.Parse("10.0.0.1"), ServicePort);

    [Fact]
    public async Task Client_and_server_must_move_8_MB_each_way_intact_and_close_gracefully()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var client = new MtcpClient(_client);
        var clientStream = await client.ConnectAsync(Service, timeout.Token);
        await using var connection = await accepting;

        Assert.Equal(clientStream.LocalEndPoint, connection.RemoteEndPoint);
        Assert.Equal(Service, connection.LocalEndPoint);
        await ExchangeBothWaysAsync(clientStream, connection.Stream, 8L << 20, chunk: 48 * 1024, timeout.Token);

        var stats = await _server.GetStatisticsAsync(timeout.Token);
        Assert.Equal(0, stats.MalformedSegments);
        Assert.Equal(0, stats.StraySegments);

        await AwaitEndpointsStoppedAsync(timeout.Token);
    }

    [Fact]
    public async Task Full_backlog_must_drop_new_syns_until_accept_makes_room()
    {
        // One place in each queue and no cookies: the second SYN finds the first connection in one queue or the other.
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var backlogServer = MtcpRuntime.Start(Sys, _fabric, NodeConfig("10.0.0.3", extra: "mtcp.runtime { accept-backlog = 1, syn-backlog = 1, syn-cookies = off }"), "backlog-server");
        await using var listener = new MtcpListener(backlogServer, ServicePort);
        await listener.StartAsync(timeout.Token);
        var service = new IPEndPoint(IPAddress.Parse("10.0.0.3"), ServicePort);

        using var first = new MtcpClient(_client);
        await first.ConnectAsync(service, timeout.Token);
        using var second = new MtcpClient(_client);
        var secondConnecting = second.ConnectAsync(service, timeout.Token);

        await AwaitAssertAsync(async () => Assert.True((await backlogServer.GetStatisticsAsync(timeout.Token)).SynsDropped >= 1), TimeSpan.FromSeconds(5));
        Assert.False(secondConnecting.IsCompleted);

        // Accepting the first frees the backlog; the second client's retransmitted SYN gets in (after its 1 s RTO).
        await using var accepted = await listener.AcceptAsync(timeout.Token);
        var secondStream = await secondConnecting;
        await using var secondAccepted = await listener.AcceptAsync(timeout.Token);
        Assert.Equal(secondStream.LocalEndPoint, secondAccepted.RemoteEndPoint);
    }

    [Fact]
    public async Task Hundred_concurrent_connections_must_each_deliver_their_bytes_intact()
    {
        const int Connections = 100;
        const long Bytes = 256 * 1024;
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync(timeout.Token);

        var serverSide = Task.Run(async () =>
        {
            var served = new List<Task>();
            for (var i = 0; i < Connections; i++)
            {
                var connection = await listener.AcceptAsync(timeout.Token);
                served.Add(Task.Run(async () =>
                {
                    // Echo: whatever the client sends comes back, until its FIN.
                    var buffer = new byte[16 * 1024];
                    int read;
                    while ((read = await connection.Stream.ReadAsync(buffer, timeout.Token)) > 0)
                    {
                        await connection.Stream.WriteAsync(buffer.AsMemory(0, read), timeout.Token);
                    }

                    await connection.DisposeAsync();
                }, timeout.Token));
            }

            await Task.WhenAll(served);
        }, timeout.Token);

        var clients = Enumerable.Range(0, Connections).Select(i => Task.Run(async () =>
        {
            using var client = new MtcpClient(_client);
            var stream = await client.ConnectAsync(Service, timeout.Token);
            var reading = ReadAllAsync(stream, Bytes, timeout.Token);
            var sent = await WritePatternAsync(stream, (ulong)i, Bytes, 8 * 1024, timeout.Token);
            var received = await reading;
            Assert.Equal(Bytes, received.Length);
            Assert.Equal(Convert.ToHexString(sent), Convert.ToHexString(received.Sha256));
        }, timeout.Token)).ToArray();

        await Task.WhenAll(clients);
        await serverSide;
    }

    [Fact]
    public async Task Slow_reader_must_hold_the_writer_at_the_buffers_instead_of_growing_memory()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var client = new MtcpClient(_client);
        var writer = await client.ConnectAsync(Service, timeout.Token);
        await using var connection = await accepting;

        // The server reads nothing; the client writes far more than both buffers hold.
        const long Offered = 64L << 20;
        long accepted = 0;
        var chunk = new byte[16 * 1024];
        var writing = Task.Run(async () =>
        {
            for (long offset = 0; offset < Offered; offset += chunk.Length)
            {
                Mtcp.TestKit.StreamPattern.Fill(7, offset, chunk);
                await writer.WriteAsync(chunk, timeout.Token);
                Interlocked.Add(ref accepted, chunk.Length);
            }
        }, timeout.Token);

        // Wait until the writer has stalled: past the send buffer, and the accepted count no longer moves.
        var tcp = TcpSettings.Create(Sys.Settings.Config);
        long previous;
        do
        {
            previous = Interlocked.Read(ref accepted);
            await Task.Delay(500, timeout.Token);
        }
        while (Interlocked.Read(ref accepted) != previous || previous < tcp.SendBufferSize);

        var stalledAt = Interlocked.Read(ref accepted);
        var bound = tcp.SendBufferSize + tcp.ReceiveBufferSize + chunk.Length;
        Assert.False(writing.IsCompleted);
        Assert.True(stalledAt <= bound, $"the writer got {stalledAt} bytes accepted with nobody reading; the buffers hold {bound}");

        // The reader resumes: every byte arrives, in order, and the writer finishes.
        var received = await ReadAllAsync(connection.Stream, Offered, timeout.Token);
        await writing;
        Assert.Equal(Offered, received.Length);
        Assert.Equal(Convert.ToHexString(await PatternHashAsync(7, Offered)), Convert.ToHexString(received.Sha256));
    }

    [Fact]
    public async Task Connect_to_a_port_without_listener_must_fail_with_connection_reset()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(_client);

        var error = await Assert.ThrowsAsync<IOException>(() => client.ConnectAsync(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 7999), timeout.Token));

        Assert.Contains("reset", error.Message);
        var stats = await _server.GetStatisticsAsync(timeout.Token);
        Assert.Equal(1, stats.ResetsSent);
    }

    [Fact]
    public async Task Request_to_a_connection_whose_endpoint_has_stopped_must_fail_not_hang()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var client = new MtcpClient(_client);
        var clientStream = await client.ConnectAsync(Service, timeout.Token);
        await using (var connection = await accepting)
        {
            await connection.Stream.DisposeAsync();
        }

        Assert.Equal(0, await clientStream.ReadAsync(new byte[1], timeout.Token));
        await clientStream.DisposeAsync();
        await AwaitAssertAsync(async () => Assert.Equal(0, (await _client.GetStatisticsAsync(timeout.Token)).Endpoints), TimeSpan.FromSeconds(10));

        // Once the endpoint actor has stopped (the receive thread lets it go within one receive-poll-interval of leaving
        // the table), the request reaches no actor (a dead letter): the call must say so rather than wait forever.
        await AwaitAssertAsync(async () =>
        {
            var asking = client.GetAlternateServersAsync(timeout.Token);
            Assert.Same(asking, await Task.WhenAny(asking, Task.Delay(TimeSpan.FromSeconds(10), timeout.Token)));
            await Assert.ThrowsAsync<InvalidOperationException>(() => asking);
        }, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Cancelled_read_must_end_with_OperationCanceledException_and_leave_the_stream_usable()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var client = new MtcpClient(_client);
        var stream = await client.ConnectAsync(Service, timeout.Token);
        await using var connection = await accepting;

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => _ = await stream.ReadAsync(new byte[10], cancel.Token));

        await connection.Stream.WriteAsync("hello"u8.ToArray(), timeout.Token);
        var buffer = new byte[10];
        var read = await stream.ReadAsync(buffer, timeout.Token);
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, read));
    }

    [Fact]
    public async Task Disposed_listener_must_fail_pending_accepts_and_keep_accepted_connections()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var client = new MtcpClient(_client);
        var stream = await client.ConnectAsync(Service, timeout.Token);
        await using var connection = await accepting;
        var pending = listener.AcceptAsync(timeout.Token);

        await listener.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pending);
        await stream.WriteAsync("still here"u8.ToArray(), timeout.Token);
        var buffer = new byte[32];
        var read = await connection.Stream.ReadAsync(buffer, timeout.Token);
        Assert.Equal("still here", System.Text.Encoding.ASCII.GetString(buffer, 0, read));
    }

    [Fact]
    public async Task Client_shutting_down_writing_must_let_the_server_read_to_the_end_and_still_answer_in_full()
    {
        // nc -N: the request, a FIN, then the answer is read to the server's FIN (RFC 9293 §3.10.4 half-close).
        const long Answer = 1L << 20;
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var pair = await ConnectedPair.OpenAsync(_server, _client, Service, timeout.Token);
        var (clientStream, connection) = (pair.ClientStream, pair.Connection);

        var request = await WritePatternAsync(clientStream, key: 1, 100_000, chunk: 16 * 1024, timeout.Token);
        clientStream.Shutdown(SocketShutdown.Send);
        Assert.False(clientStream.CanWrite);
        await Assert.ThrowsAsync<IOException>(async () => await clientStream.WriteAsync(new byte[1], timeout.Token));

        var (requestLength, requestHash) = await ReadAllAsync(connection.Stream, length: null, timeout.Token);
        Assert.Equal(100_000, requestLength);
        Assert.Equal(Convert.ToHexString(request), Convert.ToHexString(requestHash));
        Assert.Equal(0, await connection.Stream.ReadAsync(new byte[16], timeout.Token));
        var answering = Task.Run(
            async () =>
            {
                var sent = await WritePatternAsync(connection.Stream, key: 2, Answer, chunk: 48 * 1024, timeout.Token);
                await connection.DisposeAsync();
                return sent;
            },
            timeout.Token);

        var (answerLength, answerHash) = await ReadAllAsync(clientStream, length: null, timeout.Token);
        Assert.Equal(Answer, answerLength);
        Assert.Equal(Convert.ToHexString(await answering), Convert.ToHexString(answerHash));
        await clientStream.DisposeAsync();
        await AwaitEndpointsStoppedAsync(timeout.Token);
    }

    [Fact]
    public async Task Server_shutting_down_writing_must_end_the_clients_reads_while_the_client_keeps_sending()
    {
        const long Upload = 1L << 20;
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var pair = await ConnectedPair.OpenAsync(_server, _client, Service, timeout.Token);
        var (clientStream, connection) = (pair.ClientStream, pair.Connection);

        await connection.Stream.WriteAsync("ready\n"u8.ToArray(), timeout.Token);
        connection.Stream.Shutdown(SocketShutdown.Send);
        var (greetingLength, _) = await ReadAllAsync(clientStream, length: null, timeout.Token);
        Assert.Equal(6, greetingLength);

        var reading = ReadAllAsync(connection.Stream, length: null, timeout.Token);
        var sent = await WritePatternAsync(clientStream, key: 3, Upload, chunk: 48 * 1024, timeout.Token);
        await clientStream.DisposeAsync();
        var (received, hash) = await reading;
        Assert.Equal(Upload, received);
        Assert.Equal(Convert.ToHexString(sent), Convert.ToHexString(hash));
    }

    [Fact]
    public async Task Shutting_down_reading_must_end_the_pending_read_and_leave_writing_open()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var pair = await ConnectedPair.OpenAsync(_server, _client, Service, timeout.Token);
        var (clientStream, connection) = (pair.ClientStream, pair.Connection);

        var pending = clientStream.ReadAsync(new byte[16], timeout.Token).AsTask();
        clientStream.Shutdown(SocketShutdown.Receive);
        Assert.Equal(0, await pending);
        Assert.Equal(0, await clientStream.ReadAsync(new byte[16], timeout.Token));

        await clientStream.WriteAsync("still writing"u8.ToArray(), timeout.Token);
        clientStream.Shutdown(SocketShutdown.Send);
        var (length, _) = await ReadAllAsync(connection.Stream, length: null, timeout.Token);
        Assert.Equal(13, length);
    }

    /// <summary>Both runtimes' endpoints leave TIME-WAIT or LAST-ACK for CLOSED, stop, and free their 4-tuples.</summary>
    private Task AwaitEndpointsStoppedAsync(CancellationToken cancellationToken) => AwaitAssertAsync(
        async () =>
        {
            Assert.Equal(0, (await _server.GetStatisticsAsync(cancellationToken)).Endpoints);
            Assert.Equal(0, (await _client.GetStatisticsAsync(cancellationToken)).Endpoints);
        },
        TimeSpan.FromSeconds(10));

    /// <summary>A listener on the service port and one connection to it, the client's stream and the server's connection.</summary>
    private sealed class ConnectedPair(MtcpListener listener, MtcpClient client, MtcpStream clientStream, MtcpConnection connection) : IAsyncDisposable
    {
        public MtcpStream ClientStream => clientStream;

        public MtcpConnection Connection => connection;

        public static async Task<ConnectedPair> OpenAsync(MtcpRuntime server, MtcpRuntime clientRuntime, IPEndPoint service, CancellationToken cancellationToken)
        {
            var listener = new MtcpListener(server, (ushort)service.Port);
            await listener.StartAsync(cancellationToken);
            var accepting = listener.AcceptAsync(cancellationToken);
            var client = new MtcpClient(clientRuntime);
            var clientStream = await client.ConnectAsync(service, cancellationToken);
            return new ConnectedPair(listener, client, clientStream, await accepting);
        }

        public async ValueTask DisposeAsync()
        {
            await connection.DisposeAsync();
            client.Dispose();
            await listener.DisposeAsync();
        }
    }

    private static async Task<byte[]> PatternHashAsync(ulong key, long length)
    {
        using var sink = Stream.Null;
        return await WritePatternAsync(sink, key, length, 64 * 1024, CancellationToken.None);
    }

    protected override void AfterAll()
    {
        _client.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        _server.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        base.AfterAll();
    }
}

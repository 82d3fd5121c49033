using System.Buffers.Binary;
using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// One endpoint actor crashes (its transport throws when it sends); the supervision strategy must confine the
/// failure to that endpoint.
/// </summary>
[Trait("Category", "Actors")]
public sealed class SupervisionTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7100;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly FaultInjectingTransport _clientTransport;
    private readonly MtcpRuntime _server;
    private readonly MtcpRuntime _client;

    public SupervisionTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
    {
        _server = MtcpRuntime.Start(Sys, _fabric, NodeConfig("10.3.0.1"), "server");
        _clientTransport = new FaultInjectingTransport(_fabric.Attach(IpAddress.Parse("10.3.0.2")));
        _client = MtcpRuntime.Start(Sys, _clientTransport, overrides: null, "client");
    }

    [Fact]
    public async Task Crash_of_one_endpoint_must_fail_only_its_stream_while_its_sibling_completes()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var service = new IPEndPoint(IPAddress.Parse("10.3.0.1"), ServicePort);

        using var victimClient = new MtcpClient(_client);
        var victim = await victimClient.ConnectAsync(service, timeout.Token);
        await using var victimServerSide = await listener.AcceptAsync(timeout.Token);
        using var survivorClient = new MtcpClient(_client);
        var survivor = await survivorClient.ConnectAsync(service, timeout.Token);
        await using var survivorServerSide = await listener.AcceptAsync(timeout.Token);

        var pendingRead = victim.ReadAsync(new byte[16], timeout.Token).AsTask();
        _clientTransport.FailSendsFrom((ushort)victim.LocalEndPoint.Port);
        await victim.WriteAsync("this send crashes the endpoint"u8.ToArray(), timeout.Token);

        var failure = await Assert.ThrowsAsync<IOException>(() => pendingRead);
        Assert.Contains("stopped", failure.Message);
        await Assert.ThrowsAsync<IOException>(async () => await victim.WriteAsync(new byte[1], timeout.Token));

        // Stopped, not restarted (a restart would keep the actor alive with an engine that knows nothing of the stream).
        await AwaitAssertAsync(async () => await Assert.ThrowsAsync<ActorNotFoundException>(
            () => Sys.ActorSelection($"/user/client/endpoint-{victim.LocalEndPoint.Port}-*").ResolveOne(TimeSpan.FromMilliseconds(300))));
        Assert.NotNull(await Sys.ActorSelection($"/user/client/endpoint-{survivor.LocalEndPoint.Port}-*").ResolveOne(TimeSpan.FromSeconds(5)));

        // The stopping endpoint aborted its connection: the server's side sees the RST.
        var serverRead = await Assert.ThrowsAsync<IOException>(async () => _ = await victimServerSide.Stream.ReadAsync(new byte[16], timeout.Token));
        Assert.Contains("reset", serverRead.Message);

        await ExchangeBothWaysAsync(survivor, survivorServerSide.Stream, 1L << 20, chunk: 32 * 1024, timeout.Token);
        var stats = await _client.GetStatisticsAsync(timeout.Token);
        Assert.Equal(0, stats.MalformedSegments);
    }

    protected override void AfterAll()
    {
        _client.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        _server.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        base.AfterAll();
    }

    /// <summary>A transport that throws on sends from one TCP source port, standing in for any fault inside an endpoint.</summary>
    private sealed class FaultInjectingTransport(IPacketTransport inner) : IPacketTransport
    {
        private int _failingPort = -1;

        public IpAddress LocalAddress => inner.LocalAddress;

        public int MaxSegmentLength => inner.MaxSegmentLength;

        public int ReceiveBufferLength => inner.ReceiveBufferLength;

        public void FailSendsFrom(ushort sourcePort) => Volatile.Write(ref _failingPort, sourcePort);

        public bool Send(IpAddress destination, ReadOnlySpan<byte> segment)
        {
            // One-shot, so that the endpoint's own RST while it stops goes out.
            var port = BinaryPrimitives.ReadUInt16BigEndian(segment);
            if (port == Volatile.Read(ref _failingPort) && Interlocked.CompareExchange(ref _failingPort, -1, port) == port)
            {
                throw new IOException("injected send failure");
            }

            return inner.Send(destination, segment);
        }

        public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received) => inner.Receive(buffer, timeout, out received);

        public void Dispose() => inner.Dispose();
    }
}

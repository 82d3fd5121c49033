using System.Net;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Transports;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>Client and server runtimes on two loopback addresses, over real sockets chosen from HOCON.</summary>
public abstract class SocketTransportEndToEndTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7200;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(120);

    protected SocketTransportEndToEndTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
    {
    }

    protected async Task Exchange_8_MB_each_way(string transport, string serverAddress, string clientAddress, string extra = "")
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        var server = MtcpRuntime.Start(Sys, fabric: null, NodeConfig(serverAddress, transport, extra), "server");
        await using var serverRuntime = server;
        await using var clientRuntime = MtcpRuntime.Start(Sys, fabric: null, NodeConfig(clientAddress, transport, extra), "client");
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var client = new MtcpClient(clientRuntime);
        var stream = await client.ConnectAsync(new IPEndPoint(IPAddress.Parse(serverAddress), ServicePort), timeout.Token);
        await using var connection = await accepting;

        await ExchangeBothWaysAsync(stream, connection.Stream, 8L << 20, chunk: 64 * 1024, timeout.Token);

        var stats = await server.GetStatisticsAsync(timeout.Token);
        Assert.Equal(0, stats.MalformedSegments);
    }
}

[Trait("Category", "Actors")]
[Collection(MultiNodeCollection.Name)]
public sealed class UdpEndToEndTests : SocketTransportEndToEndTests
{
    [Fact]
    public Task Client_and_server_must_move_8_MB_each_way_over_udp_on_loopback() =>
        Exchange_8_MB_each_way("udp", "127.0.0.20", "127.0.0.21", "mtcp.runtime.udp.port = 15253\nmtcp.runtime.udp.peer-port = 15253");
}

/// <summary>Raw IP protocol 253 needs CAP_NET_RAW.</summary>
[Trait("Category", "Actors")]
[Trait("Category", "Netns")]
[Collection(MultiNodeCollection.Name)]
public sealed class RawEndToEndTests : SocketTransportEndToEndTests
{
    private static void RequireRawSockets()
    {
        try
        {
            RawIPv4Transport.OpenExperimental(Mtcp.Wire.IpAddress.Parse("127.0.0.2")).Dispose();
        }
        catch (InsufficientPrivilegeException e)
        {
            Assert.Fail($"this test needs raw sockets (root or CAP_NET_RAW): {e.Message}");
        }
    }

    [Fact]
    public async Task Client_and_server_must_move_8_MB_each_way_over_raw_protocol_253_on_loopback()
    {
        RequireRawSockets();

        await Exchange_8_MB_each_way("raw", "127.0.0.2", "127.0.0.3");
    }

    [Fact]
    public void Auto_transport_must_choose_raw_protocol_253_when_raw_sockets_are_permitted()
    {
        RequireRawSockets();
        var settings = RuntimeSettings.Create(MtcpConfig.WithFallback(NodeConfig("127.0.0.4", "auto")));

        var opened = Mtcp.Actors.Packets.PacketTransports.Open(settings);
        using var transport = opened.Transport;

        var raw = Assert.IsType<RawIPv4Transport>(transport);
        Assert.Equal(RawIPv4Transport.ExperimentalProtocol, raw.Protocol);
        Assert.Contains("CAP_NET_RAW", opened.Reason);
    }
}

using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Tests.Migration;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// Many quiet client connections of one runtime to one server (the scale benchmark's 50,000): the failover's keep-alive
/// probes go only to a server not heard from on any of them (<c>TcpConnection.PeerHostHeard</c>) and not already probed
/// by one of them awaiting its answer (<c>TcpConnection.PeerHostProbed</c>), so the server answers about one probe per
/// interval, not one per connection.
/// </summary>
[Trait("Category", "Actors")]
public sealed class QuietConnectionProbeTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7000;
    private const int Connections = 200;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(500);
    private static readonly IpAddress ServerAddress = IpAddress.Parse("10.5.0.1");
    private static readonly IpAddress ClientAddress = IpAddress.Parse("10.5.0.9");

    private readonly ITestOutputHelper _output;
    private readonly InMemoryPacketFabric _fabric = new();
    private readonly MtcpRuntime _server;
    private readonly MtcpRuntime _client;
    private readonly MigrationAuthenticator _authenticator = MigrationAuthenticator.FromKey("quiet connections test key......"u8);

    public QuietConnectionProbeTests(ITestOutputHelper output)
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING")))
    {
        _output = output;
        _server = MtcpRuntime.Start(Sys, _fabric, NodeConfig(ServerAddress.ToString()), "server");
        _client = MtcpRuntime.Start(Sys, _fabric, NodeConfig(ClientAddress.ToString()), "client");
    }

    [Fact]
    public async Task Quiet_connections_to_one_server_must_cost_a_few_probes_per_interval_not_one_each()
    {
        var control = Sys.ActorOf(InProcessControl.Props(new Address("akka.tcp", "mtcp", "127.0.0.1", 2600), new Dictionary<Address, IActorRef>()), "server-control");
        await _server.EnableMigrationAsync(new MigrationSupport(_authenticator, control));
        await _client.EnableMigrationAsync(new MigrationSupport(_authenticator, Failover: new ClientFailover
        {
            ProbeInterval = ProbeInterval,
            SilentAfter = 3,
            SpecialSynTimeout = TimeSpan.FromSeconds(1),
            GiveUpAfter = TimeSpan.FromSeconds(4),
        }));

        await using var listener = new MtcpListener(_server, ServicePort);
        await listener.StartAsync();
        var clients = new List<MtcpClient>();
        var accepted = new List<MtcpConnection>();
        for (var i = 0; i < Connections; i++)
        {
            var accepting = listener.AcceptAsync();
            clients.Add(new MtcpClient(_client));
            await clients[^1].ConnectAsync(new IPEndPoint(ServerAddress.ToIPAddress(), ServicePort));
            accepted.Add(await accepting.AsTask().WaitAsync(Patience));
        }

        // Ten probe intervals with nothing to send: per-connection probes would bring the server 2,000 segments. Shared
        // probes, where each connection waits for the answer to the first probe of the host, bring about a dozen (12-15
        // measured, idle or with three busy loops on two cores); without that wait, only spread deadlines, a loaded
        // machine brought 876, as answers came late and every connection coming due meanwhile probed.
        var before = (await _server.GetStatisticsAsync()).SegmentsReceived;
        await Task.Delay(ProbeInterval * 10);
        var received = (await _server.GetStatisticsAsync()).SegmentsReceived - before;
        _output.WriteLine($"{received} segments reached the server in {(ProbeInterval * 10).TotalSeconds} s from {Connections} quiet connections");
        Assert.True(received < Connections, $"{received} segments in ten probe intervals from {Connections} quiet connections");
        Assert.True(received > 0, "no connection probed the server");

        Assert.Equal(Connections, accepted.Count);
        foreach (var client in clients)
        {
            client.Dispose();
        }
    }
}

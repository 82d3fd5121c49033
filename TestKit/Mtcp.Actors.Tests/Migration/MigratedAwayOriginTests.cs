using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Transports;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// What an origin keeps of a connection it migrated away (thesis 4.2.3 at S1, on the state ack): with the shipped MSL
/// (30 s) it owes the old 4-tuple 2 MSL of silence, and keeps for it nothing but the 4-tuple and that deadline.
/// </summary>
[Trait("Category", "Actors")]
public sealed class MigratedAwayOriginTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7000;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly IpAddress OriginAddress = IpAddress.Parse("10.3.0.1");
    private static readonly IpAddress ClientAddress = IpAddress.Parse("10.3.0.9");
    private static readonly Address OriginNode = new("akka.tcp", "mtcp", "127.0.0.1", 2551);

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly MtcpRuntime _origin;
    private readonly MtcpRuntime _client;
    private readonly MigrationAuthenticator _authenticator = MigrationAuthenticator.FromKey("migrated-away test cluster key.."u8);

    public MigratedAwayOriginTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = INFO")))
    {
        _origin = MtcpRuntime.Start(Sys, _fabric, NodeConfig(OriginAddress.ToString()), "origin");
        _client = MtcpRuntime.Start(Sys, _fabric, NodeConfig(ClientAddress.ToString()), "client");
    }

    [Fact]
    public async Task Origin_must_hold_no_endpoint_actor_and_no_connection_after_migrating_away()
    {
        var control = Sys.ActorOf(InProcessControl.Props(new Address("akka.tcp", "mtcp", "127.0.0.1", 2600), new Dictionary<Address, IActorRef>()), "origin-control");
        await _origin.EnableMigrationAsync(new MigrationSupport(_authenticator, control));
        await _client.EnableMigrationAsync(new MigrationSupport(_authenticator));

        await using var listener = new MtcpListener(_origin, ServicePort);
        await listener.StartAsync();
        var accepting = listener.AcceptAsync();
        using var client = new MtcpClient(_client);
        var stream = await client.ConnectAsync(new IPEndPoint(OriginAddress.ToIPAddress(), ServicePort));
        var server = await accepting.AsTask().WaitAsync(Patience);
        await stream.WriteAsync(new byte[5000]);
        await server.Stream.WriteAsync(new byte[5000]);

        var identity = await Sys.ActorSelection(_origin.PacketActor.Path / "*" / "endpoint-*").Ask<ActorIdentity>(new Identify(1), Patience);
        var endpoint = identity.Subject ?? throw new InvalidOperationException("no server endpoint actor");
        var watcher = CreateTestProbe();
        watcher.Watch(endpoint);
        var before = await _origin.GetStatisticsAsync();
        Assert.Equal(1, before.Endpoints);
        var clientPort = (ushort)server.RemoteEndPoint.Port;
        var migratingCid = new ConnectionId(ClientAddress, clientPort, OriginAddress, ServicePort);

        // Dropped as after any migration away: here its buddy took over the incarnation served (no migration yet: epoch 0).
        _origin.ConnectionRegistry.Tell(new TakenOverReceived(OriginNode, new ConnectionTakenOver(9, migratingCid, 0)), CreateTestProbe().Ref);

        await server.MigratedAway.WaitAsync(Patience);
        await watcher.ExpectTerminatedAsync(endpoint, Patience);
        var after = await _origin.GetStatisticsAsync();
        Assert.Equal(0, after.Endpoints);
        Assert.Equal(1, after.SilencedTuples);

        // The client, unaware, keeps sending to the old 4-tuple: the table silences it (no RST) without any actor.
        await stream.WriteAsync(new byte[100]);
        await AwaitAssertAsync(async () => Assert.True((await _origin.GetStatisticsAsync()).SilencedSegments > 0), Patience);
        Assert.Equal(before.ResetsSent, (await _origin.GetStatisticsAsync()).ResetsSent);
        await Assert.ThrowsAsync<ConnectionMigratedException>(async () => await server.Stream.WriteAsync(new byte[16]));
        stream.Abort();
    }
}

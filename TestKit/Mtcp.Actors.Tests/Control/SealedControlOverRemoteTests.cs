using System.Text;
using Akka.Actor;
using Akka.TestKit;
using Mtcp.Actors.Control;
using Mtcp.Actors.Tests.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// Control messages MACed per association over Akka.Remote (docs/threat-model.md): between two nodes holding the
/// cluster key a state transfer, a 1 MB reply included, works sealed; a node that sends what does not open under the
/// key for this association (another key, another receiver, no envelope) reaches nothing and is counted.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class SealedControlOverRemoteTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private static readonly MigrationAuthenticator ClusterKey = MigrationAuthenticator.FromKey("sealed control test cluster key!"u8);
    private static readonly MigrationAuthenticator OtherKey = MigrationAuthenticator.FromKey("a key of some other cluster, 32b"u8);

    private readonly ActorSystem _origin;
    private readonly ActorSystem _intruder;
    private readonly TestProbe _originRegistry;
    private readonly IActorRef _destinationManager;
    private readonly Address _originAddress;

    public SealedControlOverRemoteTests()
        : base(TestNodes.Remote(), "destination")
    {
        _origin = ActorSystem.Create("origin", TestNodes.Remote().WithFallback(DefaultConfig));
        _intruder = ActorSystem.Create("intruder", TestNodes.Remote().WithFallback(DefaultConfig));
        _originRegistry = CreateTestProbe(_origin);
        var originManager = _origin.StartControlConnectionManager(_originRegistry.Ref);
        _destinationManager = Sys.StartControlConnectionManager(CreateTestProbe().Ref);
        _originAddress = TestNodes.AddressOf(_origin);
        foreach (var manager in new[] { originManager, _destinationManager })
        {
            manager.Ask<ControlAuthenticatorInUse>(new UseControlAuthenticator(ClusterKey), Patience).Wait();
        }
    }

    protected override void AfterAll()
    {
        Shutdown(_origin, verifySystemShutdown: true);
        Shutdown(_intruder, verifySystemShutdown: true);
        base.AfterAll();
    }

    [Fact]
    public async Task Sealed_state_transfer_with_a_1_MB_reply_must_arrive_intact()
    {
        var appState = ControlSamples.RandomBytes(1 << 20, seed: 4242);
        _originRegistry.SetAutoPilot(new ReplyingRegistry(id => ControlSamples.Replying(id, appState)));
        var endpoint = CreateTestProbe();

        _destinationManager.Tell(new RequestState(_originAddress, ControlSamples.Request, endpoint.Ref));

        var reply = await endpoint.ExpectMsgAsync<StateReply>(Patience);
        Assert.True(appState.AsSpan().SequenceEqual(reply.AppState.Span), "application state bytes differ");
        Assert.Equal(ControlSamples.Request.RequestId, reply.RequestId);
    }

    /// <param name="takeoverNotice">the messages are a buddy's <see cref="ConnectionTakenOver"/> (which drops a connection) rather than state acks.</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Control_messages_that_do_not_open_must_be_dropped_and_counted(bool takeoverNotice)
    {
        ControlMessage Ack(ulong requestId) => takeoverNotice ? new ConnectionTakenOver(requestId, ControlSamples.MigratingCid, 0) : new StateAck(requestId, ControlSamples.MigratingCid);

        using var dropped = new MigrationMeasurements("mtcp.control.dropped", tagKey: "reason");
        var sender = _intruder.ActorOf(Props.Create(() => new SilentActor()), "intruder");
        var originManager = _intruder.ActorSelection(new RootActorPath(_originAddress) / "user" / ControlConnectionManager.ActorName);
        var intruder = Encoding.UTF8.GetBytes(TestNodes.AddressOf(_intruder).ToString());
        var origin = Encoding.UTF8.GetBytes(_originAddress.ToString());
        var someoneElse = Encoding.UTF8.GetBytes("akka.tcp://mtcp@127.0.0.1:1");

        originManager.Tell(new SealedControlMessage(ControlMessageSealing.Seal(OtherKey, Ack(1), intruder, origin)), sender);
        originManager.Tell(new SealedControlMessage(ControlMessageSealing.Seal(ClusterKey, Ack(2), intruder, someoneElse)), sender);
        originManager.Tell(Ack(3), sender);
        var altered = ControlMessageSealing.Seal(ClusterKey, Ack(4), intruder, origin);
        altered[^1] ^= 1;
        originManager.Tell(new SealedControlMessage(altered), sender);

        // The same association, sealed under the cluster key: it opens (what a cooperating server can do), and being
        // sent last on the association, it arrives after the four above.
        originManager.Tell(new SealedControlMessage(ControlMessageSealing.Seal(ClusterKey, Ack(5), intruder, origin)), sender);

        var received = await _originRegistry.ExpectMsgAsync<object>(Patience);
        Assert.Equal(5UL, received switch
        {
            StateAckReceived ack when !takeoverNotice => ack.Ack.RequestId,
            TakenOverReceived notice when takeoverNotice => notice.Notice.RequestId,
            _ => throw new InvalidOperationException($"the registry got {received}"),
        });
        Assert.Equal(["BadMac", "BadMac", "Unsealed", "WrongPeer"], dropped.Tags.Order(StringComparer.Ordinal));
    }

    private sealed class SilentActor : ReceiveActor
    {
        public SilentActor() => ReceiveAny(_ => { });
    }
}

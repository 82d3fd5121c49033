using Akka.Actor;
using Akka.TestKit;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Replication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// The control connection's side of takeover from a silent origin, between two real nodes over Akka.Remote: the
/// requesting node's connection to the origin, with a TestProbe as its replica keeper, and the origin's real manager
/// with a TestProbe as its registry, which answers when the test says. Exactly one answer reaches the requester in
/// every order of the origin's answer, the keeper's word and the request's deadline.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class SilentOriginControlConnectionTests : Akka.TestKit.Xunit2.TestKit
{
    /// <summary>Long enough for the origin's registry probe to answer in time on a loaded machine.</summary>
    private static readonly TimeSpan SilentOriginTakeover = TimeSpan.FromMilliseconds(1000);
    private static readonly TimeSpan StateRequestTimeout = TimeSpan.FromMilliseconds(2500);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly ActorSystem _origin;
    private readonly TestProbe _originRegistry;
    private readonly TestProbe _keeper;
    private readonly TestProbe _endpoint;
    private readonly IActorRef _connection;
    private readonly Address _originAddress;

    public SilentOriginControlConnectionTests()
        : base(NodeConfig(), "destination")
    {
        _origin = ActorSystem.Create("origin", NodeConfig().WithFallback(DefaultConfig));
        _originRegistry = CreateTestProbe(_origin);
        _origin.StartControlConnectionManager(_originRegistry.Ref);
        _originAddress = TestNodes.AddressOf(_origin);
        _keeper = CreateTestProbe();
        _endpoint = CreateTestProbe();
        var settings = ControlSettings.Create(MtcpConfig.WithFallback(Sys.Settings.Config));
        _connection = Sys.ActorOf(ControlConnection.Props(_originAddress, CreateTestProbe().Ref, settings, authenticator: null, replicas: _keeper.Ref));

        // Associated before the first request, so that its round trip is not the association's handshake.
        Sys.ActorSelection(new RootActorPath(_originAddress) / "user" / ControlConnectionManager.ActorName).Ask<ActorIdentity>(new Identify(0), Patience).GetAwaiter().GetResult();
    }

    private static Akka.Configuration.Config NodeConfig() => TestNodes.Remote($"""
        mtcp.control.state-request-timeout = {(int)StateRequestTimeout.TotalMilliseconds}ms
        mtcp.control.silent-origin-takeover = {(int)SilentOriginTakeover.TotalMilliseconds}ms
        """);

    protected override void AfterAll()
    {
        Shutdown(_origin, verifySystemShutdown: true);
        base.AfterAll();
    }

    [Fact]
    public async Task An_origin_that_answers_in_time_must_be_delivered_and_the_keeper_never_asked()
    {
        var received = await RequestAsync(1);
        _originRegistry.Reply(ControlSamples.Replying(received.Request.RequestId, "origin"u8.ToArray()));

        Assert.Equal("origin"u8.ToArray(), (await _endpoint.ExpectMsgAsync<StateReply>(Patience)).AppState.ToArray());
        await _keeper.ExpectNoMsgAsync(SilentOriginTakeover + TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task An_origin_answer_that_comes_while_the_keeper_decides_must_be_held_and_acknowledged_when_the_replica_answered()
    {
        var received = await RequestAsync(2);
        var asked = await _keeper.ExpectMsgAsync<TakeOverFromSilentOrigin>(Patience);
        Assert.Equal(_originAddress, asked.Origin);
        Assert.Equal(_endpoint.Ref, asked.ReplyTo);

        _originRegistry.Reply(ControlSamples.Replying(received.Request.RequestId, "late"u8.ToArray()));
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));

        // The keeper answered the endpoint itself: the origin's reply is not delivered, then or later, but acknowledged:
        // the origin's endpoint that sent it drops the connection, as after a migration.
        _keeper.Reply(new SilentOriginDecided(2, AnsweredFromReplica: true, TookOver: true));
        var fence = await _originRegistry.ExpectMsgAsync<StateAckReceived>(Patience);
        Assert.Equal(new StateAck(2, ControlSamples.MigratingCid), fence.Ack);
        await _endpoint.ExpectNoMsgAsync(StateRequestTimeout);
    }

    [Fact]
    public async Task An_origin_reply_after_the_replica_took_over_must_be_acknowledged_and_one_after_the_replica_refused_or_a_late_reject_must_not()
    {
        var received = await RequestAsync(6);
        await _keeper.ExpectMsgAsync<TakeOverFromSilentOrigin>(Patience);
        _keeper.Reply(new SilentOriginDecided(6, AnsweredFromReplica: true, TookOver: true));
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));

        _originRegistry.Reply(ControlSamples.Replying(received.Request.RequestId, "late"u8.ToArray()));
        Assert.Equal(new StateAck(6, ControlSamples.MigratingCid), (await _originRegistry.ExpectMsgAsync<StateAckReceived>(Patience)).Ack);

        // The replica refused the special SYN (its authenticator did not verify): the origin's reply is not acknowledged.
        var refused = await RequestAsync(8);
        await _keeper.ExpectMsgAsync<TakeOverFromSilentOrigin>(Patience);
        _keeper.Reply(new SilentOriginDecided(8, AnsweredFromReplica: true, TookOver: false));
        _originRegistry.Reply(ControlSamples.Replying(refused.Request.RequestId, "late"u8.ToArray()));
        await _originRegistry.ExpectMsgAsync<StateTransferAbandoned>(Patience);
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));

        var rejected = await RequestAsync(7);
        await _keeper.ExpectMsgAsync<TakeOverFromSilentOrigin>(Patience);
        _keeper.Reply(new SilentOriginDecided(7, AnsweredFromReplica: true, TookOver: true));
        _originRegistry.Reply(new StateReject(rejected.Request.RequestId, ControlSamples.NewEndpointCid, StateRejectReason.CbNotFound, "gone"));
        await _originRegistry.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task An_origin_answer_held_while_a_keeper_without_the_replica_decided_must_then_be_delivered()
    {
        var received = await RequestAsync(3);
        await _keeper.ExpectMsgAsync<TakeOverFromSilentOrigin>(Patience);
        _originRegistry.Reply(ControlSamples.Replying(received.Request.RequestId, "origin"u8.ToArray()));
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));

        _keeper.Reply(new SilentOriginDecided(3, AnsweredFromReplica: false, TookOver: false));
        Assert.Equal("origin"u8.ToArray(), (await _endpoint.ExpectMsgAsync<StateReply>(Patience)).AppState.ToArray());
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task A_deadline_that_passes_while_the_keeper_decides_must_wait_for_its_word()
    {
        await RequestAsync(4);
        await _keeper.ExpectMsgAsync<TakeOverFromSilentOrigin>(Patience);
        await _endpoint.ExpectNoMsgAsync(StateRequestTimeout);

        _keeper.Reply(new SilentOriginDecided(4, AnsweredFromReplica: false, TookOver: false));
        Assert.Equal(4UL, (await _endpoint.ExpectMsgAsync<StateRequestTimedOut>(Patience)).RequestId);
    }

    [Fact]
    public async Task A_keepers_word_for_no_pending_request_must_change_nothing()
    {
        var received = await RequestAsync(5);
        _connection.Tell(new SilentOriginDecided(99, AnsweredFromReplica: true, TookOver: true), _keeper.Ref);
        await _keeper.ExpectMsgAsync<TakeOverFromSilentOrigin>(Patience);
        _keeper.Reply(new SilentOriginDecided(5, AnsweredFromReplica: false, TookOver: false));
        _originRegistry.Reply(ControlSamples.Replying(received.Request.RequestId, "origin"u8.ToArray()));

        Assert.Equal("origin"u8.ToArray(), (await _endpoint.ExpectMsgAsync<StateReply>(Patience)).AppState.ToArray());
    }

    private async Task<StateRequestReceived> RequestAsync(ulong requestId)
    {
        var request = new StateRequest(requestId, ControlSamples.MigratingCid, ControlSamples.NewEndpointCid, new SeqNumber(1000), ReadOnlyMemory<byte>.Empty);
        _connection.Tell(new RequestState(_originAddress, request, _endpoint.Ref));
        return await _originRegistry.ExpectMsgAsync<StateRequestReceived>(Patience);
    }
}

using Akka.Actor;
using Akka.TestKit;
using Mtcp.Actors.Control;
using Mtcp.Actors.Replication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// The control-connection protocol between two real nodes over Akka.Remote on loopback: the new server S2 (the
/// TestKit's system) requests state from the origin S1; TestProbes stand in for each node's connection registry
/// and for the requesting endpoint.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class ControlConnectionTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan StateRequestTimeout = TimeSpan.FromMilliseconds(750);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly ActorSystem _origin;
    private readonly TestProbe _originRegistry;
    private readonly TestProbe _destinationRegistry;
    private readonly IActorRef _destinationManager;
    private readonly TestProbe _endpoint;
    private readonly Address _originAddress;
    private readonly Address _destinationAddress;

    public ControlConnectionTests()
        : base(NodeConfig(), "destination")
    {
        _origin = ActorSystem.Create("origin", NodeConfig().WithFallback(DefaultConfig));
        _originRegistry = CreateTestProbe(_origin);
        _origin.StartControlConnectionManager(_originRegistry.Ref);
        _destinationRegistry = CreateTestProbe();
        _destinationManager = Sys.StartControlConnectionManager(_destinationRegistry.Ref);
        _endpoint = CreateTestProbe();
        _originAddress = TestNodes.AddressOf(_origin);
        _destinationAddress = TestNodes.AddressOf(Sys);
    }

    // The requester refuses replies above 200 KiB so that a refused reply can be tested; 1 MB replies are
    // tested with the reference limits in ControlMultiplexingOverRemoteTests.
    private static Akka.Configuration.Config NodeConfig() => TestNodes.Remote($"""
        mtcp.control.state-request-timeout = {(int)StateRequestTimeout.TotalMilliseconds}ms
        mtcp.control.max-state-reply-size = 200KiB
        """);

    protected override void AfterAll()
    {
        Shutdown(_origin, verifySystemShutdown: true);
        base.AfterAll();
    }

    private static StateRequest Request(ulong requestId) => new(
        requestId, ControlSamples.MigratingCid, ControlSamples.NewEndpointCid, new Mtcp.Wire.SeqNumber(1000), ReadOnlyMemory<byte>.Empty);

    private async Task<StateRequestReceived> RequestAndReceiveAtOriginAsync(ulong requestId)
    {
        _destinationManager.Tell(new RequestState(_originAddress, Request(requestId), _endpoint.Ref));
        var received = await _originRegistry.ExpectMsgAsync<StateRequestReceived>(Patience);
        Assert.Equal(_destinationAddress, received.Peer);
        Assert.Equal(Request(requestId), received.Request);
        return received;
    }

    [Fact]
    public async Task State_request_must_reach_the_origin_registry_and_its_reply_the_endpoint()
    {
        await RequestAndReceiveAtOriginAsync(1);
        var reply = ControlSamples.Replying(1, "state"u8.ToArray());
        _originRegistry.Reply(reply);

        Assert.Equal(reply, await _endpoint.ExpectMsgAsync<StateReply>(Patience));
    }

    [Fact]
    public async Task State_ack_from_the_endpoint_must_reach_the_origin_registry()
    {
        await RequestAndReceiveAtOriginAsync(2);
        _originRegistry.Reply(ControlSamples.Replying(2, "state"u8.ToArray()));
        await _endpoint.ExpectMsgAsync<StateReply>(Patience);

        var ack = new StateAck(2, ControlSamples.MigratingCid);
        _endpoint.Reply(ack);

        var received = await _originRegistry.ExpectMsgAsync<StateAckReceived>(Patience);
        Assert.Equal(_destinationAddress, received.Peer);
        Assert.Equal(ack, received.Ack);
    }

    [Fact]
    public async Task State_ack_sent_through_the_manager_must_reach_the_origin_registry()
    {
        await RequestAndReceiveAtOriginAsync(12);
        _originRegistry.Reply(ControlSamples.Replying(12, "state"u8.ToArray()));
        await _endpoint.ExpectMsgAsync<StateReply>(Patience);

        var ack = new StateAck(12, ControlSamples.MigratingCid);
        _destinationManager.Tell(new AcknowledgeState(_originAddress, ack));

        Assert.Equal(new StateAckReceived(_destinationAddress, ack), await _originRegistry.ExpectMsgAsync<StateAckReceived>(Patience));
    }

    [Theory]
    [InlineData(StateRejectReason.CbNotFound)]
    [InlineData(StateRejectReason.InvalidState)]
    [InlineData(StateRejectReason.AuthFailed)]
    public async Task Reject_from_the_origin_registry_must_reach_the_endpoint_with_its_reason(StateRejectReason reason)
    {
        await RequestAndReceiveAtOriginAsync(3);
        _originRegistry.Reply(new StateReject(3, ControlSamples.NewEndpointCid, reason, "test"));

        var reject = await _endpoint.ExpectMsgAsync<StateReject>(Patience);
        Assert.Equal(reason, reject.Reason);
        Assert.Equal(3UL, reject.RequestId);
        await _originRegistry.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task Unanswered_request_must_time_out_and_the_late_reply_must_be_neither_delivered_nor_acked()
    {
        await RequestAndReceiveAtOriginAsync(4);

        var timedOut = await _endpoint.ExpectMsgAsync<StateRequestTimedOut>(StateRequestTimeout + Patience);
        Assert.Equal(new StateRequestTimedOut(_originAddress, 4, ControlSamples.NewEndpointCid, StateRequestTimeout), timedOut);
        var abandoned = await _originRegistry.ExpectMsgAsync<StateTransferAbandoned>(Patience);
        Assert.Equal(new StateTransferAbandoned(_destinationAddress, 4, StateTransferAbandonReason.TimedOut), abandoned);

        _originRegistry.Reply(ControlSamples.Replying(4, "late"u8.ToArray()));

        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));
        await _originRegistry.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task Reply_arriving_after_the_request_ended_must_be_answered_with_an_abandon_notice()
    {
        // A reply already on the wire when the request timed out reaches the requester late: simulate it by
        // sending an unrequested reply from the origin node.
        var lateSender = CreateTestProbe(_origin);
        var destinationManager = _origin.ActorSelection(new RootActorPath(_destinationAddress) / "user" / ControlConnectionManager.ActorName);
        destinationManager.Tell(ControlSamples.Replying(5, "late"u8.ToArray()), lateSender.Ref);

        var notice = await lateSender.ExpectMsgAsync<AbandonStateTransfer>(Patience);
        Assert.Equal(5UL, notice.RequestId);
        Assert.Equal(StateTransferAbandonReason.TimedOut, notice.Reason);
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
        await _destinationRegistry.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task Reply_above_the_size_limit_must_fail_the_request_and_tell_the_origin()
    {
        await RequestAndReceiveAtOriginAsync(6);
        _originRegistry.Reply(ControlSamples.Replying(6, ControlSamples.RandomBytes(300_000, seed: 6)));

        var failed = await _endpoint.ExpectMsgAsync<StateRequestFailed>(Patience);
        Assert.Equal(new StateRequestFailed(_originAddress, 6, ControlSamples.NewEndpointCid, StateRequestFailure.ReplyTooLarge), failed);
        var abandoned = await _originRegistry.ExpectMsgAsync<StateTransferAbandoned>(Patience);
        Assert.Equal(StateTransferAbandonReason.ReplyRefused, abandoned.Reason);
        await _endpoint.ExpectNoMsgAsync(StateRequestTimeout + TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task Second_request_with_an_id_in_flight_must_fail_without_reaching_the_origin()
    {
        await RequestAndReceiveAtOriginAsync(7);
        var other = CreateTestProbe();

        _destinationManager.Tell(new RequestState(_originAddress, Request(7), other.Ref));

        var failed = await other.ExpectMsgAsync<StateRequestFailed>(Patience);
        Assert.Equal(StateRequestFailure.DuplicateRequestId, failed.Reason);
        await _originRegistry.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task Many_concurrent_requests_must_share_exactly_one_control_connection_per_peer()
    {
        const int Requests = 100;
        var originRegistryAnswers = new ReplyingRegistry(requestId => ControlSamples.Replying(requestId, StateOf(requestId)));
        _originRegistry.SetAutoPilot(originRegistryAnswers);

        for (var id = 1UL; id <= Requests; id++)
        {
            _destinationManager.Tell(new RequestState(_originAddress, Request(id), _endpoint.Ref));
        }

        var replies = new HashSet<ulong>();
        for (var index = 0; index < Requests; index++)
        {
            var reply = await _endpoint.ExpectMsgAsync<StateReply>(Patience);
            Assert.True(reply.AppState.Span.SequenceEqual(StateOf(reply.RequestId)), $"reply {reply.RequestId} carries another request's state");
            Assert.True(replies.Add(reply.RequestId), $"reply {reply.RequestId} delivered twice");
        }

        _destinationManager.Tell(GetControlConnections.Instance, TestActor);
        var destinationSide = await ExpectMsgAsync<ControlConnections>(Patience);
        Assert.Equal([_originAddress], destinationSide.ByPeer.Keys);

        var probe = CreateTestProbe(_origin);
        _origin.ActorSelection("/user/" + ControlConnectionManager.ActorName).Tell(GetControlConnections.Instance, probe.Ref);
        var originSide = await probe.ExpectMsgAsync<ControlConnections>(Patience);
        Assert.Equal([_destinationAddress], originSide.ByPeer.Keys);
    }

    [Fact]
    public async Task Control_message_from_a_local_sender_to_the_manager_must_be_dropped()
    {
        _destinationManager.Tell(ControlSamples.Replying(8, "x"u8.ToArray()), _endpoint.Ref);
        _destinationManager.Tell(GetControlConnections.Instance, TestActor);

        var connections = await ExpectMsgAsync<ControlConnections>(Patience);
        Assert.Empty(connections.ByPeer);
        await _endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task Replica_ack_must_reach_the_endpoint_that_replicated_the_connection_and_the_registry_once_it_stopped()
    {
        // The origin's replica keeper holds no state of the connection: it answers a read log with NeedsState, an ack all the same.
        var replicating = CreateTestProbe();
        _destinationManager.Tell(new ReplicateTo(_originAddress, ReadLog(1)), replicating.Ref);

        var received = await replicating.ExpectMsgAsync<ReplicaAckReceived>(Patience);
        Assert.Equal(_originAddress, received.Buddy);
        Assert.Equal(new ReplicaAck(1, ControlSamples.MigratingCid, ReplicaAckStatus.NeedsState), received.Ack);
        await _destinationRegistry.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));

        // Stopped, the endpoint is forgotten: the ack of an update sent on its connection's behalf goes to the registry.
        await WatchAsync(replicating.Ref);
        replicating.Ref.Tell(PoisonPill.Instance);
        await ExpectTerminatedAsync(replicating.Ref, Patience);
        _destinationManager.Tell(new ReplicateTo(_originAddress, ReadLog(2)), ActorRefs.NoSender);

        Assert.Equal(2UL, (await _destinationRegistry.ExpectMsgAsync<ReplicaAckReceived>(Patience)).Ack.RequestId);
    }

    [Fact]
    public async Task Replica_ack_must_reach_the_registry_after_the_endpoint_released_the_replica()
    {
        var replicating = CreateTestProbe();
        _destinationManager.Tell(new ReplicateTo(_originAddress, ReadLog(1)), replicating.Ref);
        await replicating.ExpectMsgAsync<ReplicaAckReceived>(Patience);

        _destinationManager.Tell(new ReplicateTo(_originAddress, new ReplicaRelease(2, ControlSamples.MigratingCid)), replicating.Ref);
        _destinationManager.Tell(new ReplicateTo(_originAddress, ReadLog(3)), ActorRefs.NoSender);

        Assert.Equal(3UL, (await _destinationRegistry.ExpectMsgAsync<ReplicaAckReceived>(Patience)).Ack.RequestId);
        await replicating.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
    }

    private static ReplicaReadLog ReadLog(ulong update) => new(update, ControlSamples.MigratingCid, 1, new SeqNumber(1000), "bytes"u8.ToArray());

    /// <summary>Eight big-endian bytes of the id: each reply's state names its request.</summary>
    private static byte[] StateOf(ulong requestId)
    {
        var bytes = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes, requestId);
        return bytes;
    }
}

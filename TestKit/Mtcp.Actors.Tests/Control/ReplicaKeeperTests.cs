using System.Buffers.Binary;
using Akka.Actor;
using Akka.Cluster;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Replication;
using Mtcp.Actors.Tests.Migration;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// The buddy's <see cref="ReplicaKeeper"/> with the cluster's events fed by hand: it acks replica updates, sends a
/// trigger the client accepts when the origin is unreachable, answers the special SYN's state request from the replica
/// only for a lost origin, and fences the origin (a state ack) when it is reachable again.
/// </summary>
[Trait("Category", "Failover")]
public sealed class ReplicaKeeperTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly ConnectionId Cid = ControlSamples.MigratingCid;
    private static readonly ConnectionId NewCid = ControlSamples.NewEndpointCid;
    private static readonly IpAddress BuddyAddress = IpAddress.Parse("10.0.0.3");
    private static readonly SeqNumber ClientRcvNxt = new(5_000);

    private readonly Address _origin;
    private readonly Member _originMember;
    private readonly IActorRef _keeper;
    private readonly MigrationSecret _secret;
    private readonly uint _epoch;

    /// <summary>A cluster node that never joins: its own member stands for the origin, whose events are fed by hand.</summary>
    public ReplicaKeeperTests()
        : base(TestNodes.ClusterMember([]))
    {
        _originMember = Akka.Cluster.Cluster.Get(Sys).SelfMember;
        _origin = _originMember.Address;
        _keeper = ChildActorOf(ReplicaKeeper.Props(ControlSettings.Create(MtcpConfig.WithFallback(Akka.Configuration.Config.Empty))));
        _keeper.Tell(new UseControlAuthenticator(MigrationCluster.Authenticator));
        var credential = ServerMigration.IssueCredential(MigrationCluster.Authenticator, Cid, new SeqNumber(100), ClientRcvNxt - 1, out _secret);
        _epoch = credential.Credential.Epoch;
        var state = new StateReply(
            0,
            Cid,
            lastAckSent: new SeqNumber(200),
            sndBytesDiscard: 0,
            sndMaxSeen: ClientRcvNxt,
            new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.Migrate, 1460, 0, 0),
            new SocketSnapshot(SocketStateFlags.None, SocketOptionFlags.MigrationSupport, 0),
            "APP"u8.ToArray(),
            writeBufferState: new byte[] { 1, 2, 3 },
            readBufferState: new byte[] { 9 },
            [],
            credential.ToBytes()).ToArray();
        _keeper.Tell(new ReplicaUpdateReceived(_origin, new ReplicaState(1, Cid, 1, (uint)state.Length, 0, state)));
        var ack = Assert.IsType<ReplicaAck>(ExpectMsg<ReplicateToPeer>().Message);
        Assert.Equal(ReplicaAckStatus.Held, ack.Status);
        Assert.Equal(1ul, ack.RequestId);
    }

    [Fact]
    public void A_lost_origin_must_get_its_client_a_trigger_naming_the_buddy_and_its_state_request_answered_from_the_replica()
    {
        var transport = CreateTestProbe();
        _keeper.Tell(new ReplicaTakeoverTransport(BuddyAddress, transport.Ref));
        var request = Request(7);

        // Not lost: the replica is not served.
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(request, endpoint.Ref, Origin: null, StateRequestFailure.PeerRemoved));
        Assert.Equal(StateRequestFailure.PeerRemoved, endpoint.ExpectMsg<StateRequestFailed>().Reason);

        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        var send = transport.ExpectMsg<SendTakeoverTrigger>();
        Assert.Equal(Cid, send.Cid);
        var buddy = new ServerEndpoint(BuddyAddress, Cid.ServerPort);
        var trigger = Assert.IsType<MtcpMigrateTrigger>(send.Segment.Options.MigrateTrigger);
        Assert.Equal(TriggerCheck.Accepted, new ConnectionAuthenticator(_secret).VerifyTrigger(trigger, Cid, buddy, _epoch));
        Assert.Equal(Cid, trigger.ToConnectionId(buddy, Cid.ClientAddress, Cid.ClientPort));

        _keeper.Tell(new AnswerFromReplica(request, endpoint.Ref, Origin: null, StateRequestFailure.PeerRemoved));
        var reply = endpoint.ExpectMsg<StateReply>();
        Assert.Equal(NewCid, reply.NewEndpointCid);
        Assert.Equal("APP"u8.ToArray(), reply.AppState.ToArray());
        Assert.True(ServerMigration.TryAdoptCredential(reply, MigrationCluster.Authenticator, out _));
        Assert.Equal(_keeper, endpoint.LastSender);
    }

    [Fact]
    public void A_forged_state_request_must_be_refused_even_for_a_lost_origin()
    {
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(new StateRequest(8, Cid, NewCid, ClientRcvNxt, new byte[8]), endpoint.Ref, _origin, StateRequestFailure.PeerUnreachable));
        Assert.Equal(StateRejectReason.AuthFailed, endpoint.ExpectMsg<StateReject>().Reason);
    }

    [Fact]
    public void An_origin_reachable_again_must_be_told_to_drop_what_was_taken_over()
    {
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(Request(9), endpoint.Ref, _origin, StateRequestFailure.PeerUnreachable));
        endpoint.ExpectMsg<StateReply>();
        _keeper.Tell(new StateAck(9, Cid), endpoint.Ref);
        _keeper.Tell(GetReplicaStatistics.Instance);
        var statistics = ExpectMsg<ReplicaStatistics>();
        Assert.Equal(1, statistics.TakenOver[_origin]);
        Assert.Equal(0, statistics.Held);

        _keeper.Tell(new ClusterEvent.ReachableMember(_originMember));
        var fence = ExpectMsg<AcknowledgeState>();
        Assert.Equal(_origin, fence.Peer);
        Assert.Equal(Cid, fence.Ack.MigratingCid);
    }

    private StateRequest Request(ulong requestId)
    {
        var authenticator = new byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(authenticator, new ConnectionAuthenticator(_secret).MigratedConnection(Cid, NewCid, ClientRcvNxt, 0));
        return new StateRequest(requestId, Cid, NewCid, ClientRcvNxt, authenticator);
    }
}

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
/// only for a lost origin, and fences the origin (a state ack) when it is reachable again. It does so only on the side
/// the split-brain resolver keeps (<see cref="Mtcp.Actors.Cluster.KeptSide"/>): on the other, or once downed itself,
/// it takes nothing over.
/// </summary>
[Trait("Category", "Failover")]
public sealed class ReplicaKeeperTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly ConnectionId Cid = ControlSamples.MigratingCid;
    private static readonly ConnectionId NewCid = ControlSamples.NewEndpointCid;
    private static readonly IpAddress BuddyAddress = IpAddress.Parse("10.0.0.3");
    private static readonly SeqNumber ClientRcvNxt = new(5_000);
    private static readonly TimeSpan StableAfter = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan TriggerInterval = TimeSpan.FromMilliseconds(200);
    private const int TriggerResends = 3;

    /// <summary>Longer than <see cref="StableAfter"/>, with room for a loaded machine.</summary>
    private static readonly TimeSpan Settled = TimeSpan.FromMilliseconds(1_000);

    private readonly Address _origin;
    private readonly Member _originMember;
    private readonly Member _selfMember;
    private readonly Member _thirdMember;
    private readonly IActorRef _keeper;
    private readonly MigrationSecret _secret;
    private readonly uint _epoch;

    /// <summary>
    /// A cluster node that never joins: the membership its keeper sees (this node, the origin, a third member, all Up)
    /// is fed by hand. The origin's address sorts below this node's (127.0.0.1), the third member's above. The view must
    /// stay unchanged for mtcp.cluster.takeover-settle before an unreachable origin is taken over: short here.
    /// </summary>
    public ReplicaKeeperTests()
        : base(TestNodes.ClusterMember([], $"""
            mtcp.cluster.takeover-settle = {StableAfter.TotalMilliseconds}ms
            mtcp.cluster.takeover-trigger-interval = {TriggerInterval.TotalMilliseconds}ms
            mtcp.cluster.takeover-trigger-resends = {TriggerResends}

            """))
    {
        _selfMember = ClusterMembers.Of(Akka.Cluster.Cluster.Get(Sys).SelfUniqueAddress, MemberStatus.Up);
        _originMember = ClusterMembers.Of(ClusterMembers.Node("127.0.0.0", 4053), MemberStatus.Up);
        _thirdMember = ClusterMembers.Of(ClusterMembers.Node("127.0.0.9", 4053), MemberStatus.Up);
        _origin = _originMember.Address;
        _keeper = ChildActorOf(ReplicaKeeper.Props(ControlSettings.Create(MtcpConfig.WithFallback(Akka.Configuration.Config.Empty))));
        _keeper.Tell(new ClusterEvent.MemberUp(_selfMember));
        _keeper.Tell(new ClusterEvent.MemberUp(_originMember));
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

        _keeper.Tell(new ClusterEvent.MemberUp(_thirdMember));
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
    public void A_takeover_trigger_must_go_again_until_the_clients_special_syn_comes_and_no_more_than_configured()
    {
        var transport = CreateTestProbe();
        _keeper.Tell(new ReplicaTakeoverTransport(BuddyAddress, transport.Ref));
        _keeper.Tell(new ClusterEvent.MemberUp(_thirdMember));
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        var first = transport.ExpectMsg<SendTakeoverTrigger>();
        var again = transport.ExpectMsg<SendTakeoverTrigger>(TriggerInterval + Settled);
        Assert.Equal(first.Cid, again.Cid);

        // The client's special SYN came: no trigger after it.
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(Request(30), endpoint.Ref, Origin: null, StateRequestFailure.PeerRemoved));
        endpoint.ExpectMsg<StateReply>();
        transport.ReceiveWhile(TriggerInterval, message => message as SendTakeoverTrigger);
        transport.ExpectNoMsg(TriggerInterval * (TriggerResends + 2));
    }

    [Fact]
    public void A_takeover_trigger_whose_client_never_answers_must_go_at_most_the_configured_number_of_times_more()
    {
        var transport = CreateTestProbe();
        _keeper.Tell(new ReplicaTakeoverTransport(BuddyAddress, transport.Ref));
        _keeper.Tell(new ClusterEvent.MemberUp(_thirdMember));
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));

        var sent = transport.ReceiveWhile(Settled + (TriggerInterval * (TriggerResends + 3)), message => message as SendTakeoverTrigger, msgs: TriggerResends + 2);
        Assert.Equal(1 + TriggerResends, sent.Count);
        Assert.All(sent, trigger => Assert.Equal(Cid, trigger!.Cid));
    }

    [Fact]
    public void An_origin_unreachable_on_an_even_split_it_wins_must_not_be_taken_over_until_it_is_downed()
    {
        var transport = CreateTestProbe();
        _keeper.Tell(new ReplicaTakeoverTransport(BuddyAddress, transport.Ref));

        // A pair: the origin holds the lowest address, so the resolver keeps its side and downs this one.
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(Request(10), endpoint.Ref, _origin, StateRequestFailure.PeerUnreachable));
        Assert.Equal(StateRequestFailure.PeerUnreachable, endpoint.ExpectMsg<StateRequestFailed>().Reason);
        transport.ExpectNoMsg(Settled);
        _keeper.Tell(new AnswerFromReplica(Request(13), endpoint.Ref, _origin, StateRequestFailure.PeerUnreachable));
        endpoint.ExpectMsg<StateRequestFailed>();

        // Downed after all (its control port refused: it crashed): this node is alone, and takes it over.
        _keeper.Tell(new ClusterEvent.MemberDowned(_originMember.Copy(MemberStatus.Down)));
        Assert.Equal(Cid, transport.ExpectMsg<SendTakeoverTrigger>().Cid);
        _keeper.Tell(new AnswerFromReplica(Request(11), endpoint.Ref, _origin, StateRequestFailure.PeerRemoved));
        endpoint.ExpectMsg<StateReply>();
    }

    [Fact]
    public void An_origin_on_the_side_the_resolver_keeps_must_not_be_taken_over_and_a_node_downed_itself_must_take_nothing_over()
    {
        var transport = CreateTestProbe();
        _keeper.Tell(new ReplicaTakeoverTransport(BuddyAddress, transport.Ref));
        _keeper.Tell(new ClusterEvent.MemberUp(_thirdMember));

        // Cut off from both others: one against two.
        _keeper.Tell(new ClusterEvent.UnreachableMember(_thirdMember));
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        transport.ExpectNoMsg(Settled);

        // The resolver on this side downs this node; the others then look gone from here, and are not taken over.
        _keeper.Tell(new ClusterEvent.MemberDowned(_selfMember.Copy(MemberStatus.Down)));
        _keeper.Tell(new ClusterEvent.MemberDowned(_originMember.Copy(MemberStatus.Down)));
        _keeper.Tell(new ClusterEvent.MemberRemoved(_originMember.Copy(MemberStatus.Down).Copy(MemberStatus.Removed), MemberStatus.Down));
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(Request(12), endpoint.Ref, _origin, StateRequestFailure.PeerRemoved));
        endpoint.ExpectMsg<StateRequestFailed>();
        transport.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void A_forged_state_request_must_be_refused_even_for_a_lost_origin()
    {
        _keeper.Tell(new ClusterEvent.MemberUp(_thirdMember));
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        ExpectNoMsg(Settled);
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(new StateRequest(8, Cid, NewCid, ClientRcvNxt, new byte[8]), endpoint.Ref, _origin, StateRequestFailure.PeerUnreachable));
        Assert.Equal(StateRejectReason.AuthFailed, endpoint.ExpectMsg<StateReject>().Reason);
    }

    [Fact]
    public void An_origin_reachable_again_must_be_told_to_drop_what_was_taken_over()
    {
        _keeper.Tell(new ClusterEvent.MemberUp(_thirdMember));
        _keeper.Tell(new ClusterEvent.UnreachableMember(_originMember));
        ExpectNoMsg(Settled);
        var endpoint = CreateTestProbe();
        _keeper.Tell(new AnswerFromReplica(Request(9), endpoint.Ref, _origin, StateRequestFailure.PeerUnreachable));
        endpoint.ExpectMsg<StateReply>();
        _keeper.Tell(new StateAck(9, Cid), endpoint.Ref);
        _keeper.Tell(GetReplicaStatistics.Instance);
        var statistics = ExpectMsg<ReplicaStatistics>();
        Assert.Equal(1, statistics.TakenOver[_origin]);
        Assert.Equal(0, statistics.Held);

        _keeper.Tell(new ClusterEvent.ReachableMember(_originMember));
        var fence = ExpectMsg<NotifyTakenOver>();
        Assert.Equal(_origin, fence.Peer);
        Assert.Equal(Cid, fence.Notice.MigratingCid);
    }

    [Fact]
    public void A_live_origin_silent_on_a_state_request_must_be_answered_for_from_the_replica_and_its_updates_left_unacknowledged()
    {
        var endpoint = CreateTestProbe();
        _keeper.Tell(new TakeOverFromSilentOrigin(Request(20), endpoint.Ref, _origin));
        Assert.Equal(new SilentOriginDecided(20, AnsweredFromReplica: true, TookOver: true), ExpectMsg<SilentOriginDecided>());
        var reply = endpoint.ExpectMsg<StateReply>();
        Assert.Equal(NewCid, reply.NewEndpointCid);
        Assert.Equal(_keeper, endpoint.LastSender);

        // Client bytes the origin replicates meanwhile are in no reply: their update is never acknowledged.
        _keeper.Tell(new ReplicaUpdateReceived(_origin, new ReplicaReadLog(2, Cid, 1, new SeqNumber(200), "late"u8.ToArray())));
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        // Reinstated: the origin is told at once, whether or not its late answer ever comes; the notice names the
        // incarnation taken over (the replica's epoch), so it cannot drop a later one on the same 4-tuple.
        _keeper.Tell(new StateAck(20, Cid), endpoint.Ref);
        var fence = ExpectMsg<NotifyTakenOver>();
        Assert.Equal(_origin, fence.Peer);
        Assert.Equal(new ConnectionTakenOver(20, Cid, 0), fence.Notice);
        _keeper.Tell(GetReplicaStatistics.Instance);
        var statistics = ExpectMsg<ReplicaStatistics>();
        Assert.Equal(1, statistics.TakenOverFromSilentOrigins);
        Assert.Empty(statistics.TakenOver);
        Assert.Equal(0, statistics.Held);
    }

    [Fact]
    public void A_silent_origin_whose_replica_is_not_held_here_a_strangers_request_and_a_forgery_must_take_nothing_over()
    {
        var endpoint = CreateTestProbe();

        // The replica here is the origin's, not the third member's: this node is not that connection's buddy.
        _keeper.Tell(new TakeOverFromSilentOrigin(Request(21), endpoint.Ref, _thirdMember.Address));
        Assert.False(ExpectMsg<SilentOriginDecided>().AnsweredFromReplica);
        var stranger = Cid with { ClientPort = (ushort)(Cid.ClientPort + 1) };
        _keeper.Tell(new TakeOverFromSilentOrigin(new StateRequest(22, stranger, NewCid with { ClientPort = stranger.ClientPort }, ClientRcvNxt, new byte[8]), endpoint.Ref, _origin));
        Assert.False(ExpectMsg<SilentOriginDecided>().AnsweredFromReplica);
        endpoint.ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        // A forged special SYN is refused from the replica, and takes nothing over: the origin is not fenced.
        _keeper.Tell(new TakeOverFromSilentOrigin(new StateRequest(24, Cid, NewCid, ClientRcvNxt, new byte[8]), endpoint.Ref, _origin));
        Assert.Equal(new SilentOriginDecided(24, AnsweredFromReplica: true, TookOver: false), ExpectMsg<SilentOriginDecided>());
        Assert.Equal(StateRejectReason.AuthFailed, endpoint.ExpectMsg<StateReject>().Reason);

        // Nothing was taken over: the origin's updates are acknowledged as before.
        _keeper.Tell(new ReplicaUpdateReceived(_origin, new ReplicaReadLog(2, Cid, 1, new SeqNumber(200), "more"u8.ToArray())));
        Assert.Equal(ReplicaAckStatus.Held, Assert.IsType<ReplicaAck>(ExpectMsg<ReplicateToPeer>().Message).Status);
    }

    [Fact]
    public void A_node_downed_itself_must_not_answer_for_a_silent_origin()
    {
        _keeper.Tell(new ClusterEvent.MemberDowned(_selfMember.Copy(MemberStatus.Down)));
        var endpoint = CreateTestProbe();
        _keeper.Tell(new TakeOverFromSilentOrigin(Request(23), endpoint.Ref, _origin));

        Assert.False(ExpectMsg<SilentOriginDecided>().AnsweredFromReplica);
        endpoint.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    private StateRequest Request(ulong requestId)
    {
        var authenticator = new byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(authenticator, new ConnectionAuthenticator(_secret).MigratedConnection(Cid, NewCid, ClientRcvNxt, 0));
        return new StateRequest(requestId, Cid, NewCid, ClientRcvNxt, authenticator);
    }
}

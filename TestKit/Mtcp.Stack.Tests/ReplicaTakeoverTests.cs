using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Stack.Tests.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The buddy's decisions, sans-IO (<see cref="ReplicaTakeover{TOrigin}"/>, what the runtime's replica keeper and the
/// simulator both drive): a replica answers for its origin only once that origin is lost, the state ack completes the
/// takeover, a partitioned origin that comes back is fenced, and a new incarnation is neither lost nor fenced.
/// </summary>
[Trait("Category", "Stack")]
public sealed class ReplicaTakeoverTests
{
    private static readonly TcpConfig ServerConfig = TcpConfig.Default with { RetainReadLog = true, DelayedAckTimeout = TimeSpan.Zero };
    private static readonly TcpConfig ClientConfig = TcpConfig.Default with { DelayedAckTimeout = TimeSpan.Zero };
    private static readonly TimeSpan AckTimeout = TimeSpan.FromMilliseconds(500);

    [Fact]
    public void A_replica_must_answer_only_for_a_lost_origin_and_the_state_ack_must_complete_the_takeover()
    {
        var (takeover, good, authenticator) = Replicated();

        Assert.Null(takeover.AnswerStateRequest(good, authenticator, out _, out _, out _));
        Assert.Equal([AuthenticationFixture.Cid], takeover.Lose("S1"));
        Assert.Empty(takeover.Lose("S1"));

        var reply = Assert.IsType<StateReply>(takeover.AnswerStateRequest(good, authenticator, out var origin, out var firstCid, out var check));
        Assert.Equal(MigratedConnectionCheck.Accepted, check);
        Assert.Equal("S1", origin);
        Assert.Equal(AuthenticationFixture.Cid, firstCid);
        Assert.Equal(AuthenticationFixture.NewEndpointCid, reply.NewEndpointCid);
        Assert.Equal(1, takeover.AnsweredFromReplica);

        Assert.False(takeover.Reinstated(AuthenticationFixture.NewEndpointCid, out _, out _, out _));
        Assert.True(takeover.Reinstated(AuthenticationFixture.Cid, out var from, out _, out var fence));
        Assert.Equal("S1", from);
        Assert.Null(fence);
        Assert.Equal(0, takeover.Store.Count);
        Assert.Equal(1, takeover.TakenOverCount);
        Assert.Equal(1, takeover.TakenOverByOrigin()["S1"]);
    }

    [Fact]
    public void A_request_the_control_connection_could_not_carry_must_mark_its_origin_lost_and_be_answered_only_from_that_origins_replica()
    {
        var (takeover, good, authenticator) = Replicated();

        Assert.Null(takeover.AnswerStateRequest(good, "S3", authenticator, out _, out _, out _));
        Assert.True(takeover.IsLost("S3"));
        Assert.IsType<StateReply>(takeover.AnswerStateRequest(good, "S1", authenticator, out _, out _, out _));

        // Seen lost by the control connection first: the failure detector's event sends no trigger any more, the
        // client is already on its way.
        Assert.Empty(takeover.Lose("S1"));
    }

    [Fact]
    public void An_origin_that_was_only_partitioned_must_be_fenced_and_a_new_incarnation_must_not()
    {
        var buddy = ReplicatedBuddy(epoch: 3);
        var takeover = buddy.Takeover;
        takeover.Lose("S1");
        takeover.AnswerStateRequest(buddy.Good, buddy.Authenticator, out _, out _, out _);
        takeover.Reinstated(AuthenticationFixture.Cid, out _, out _, out _);

        // The notice names the incarnation whose replica was taken over, so that it cannot drop a later one.
        var notice = Assert.Single(takeover.Reachable("S1"));
        Assert.Equal(AuthenticationFixture.Cid, notice.MigratingCid);
        Assert.Equal(3u, notice.Epoch);
        Assert.False(takeover.IsLost("S1"));
        Assert.Empty(takeover.Reachable("S1"));

        var (again, request, key) = Replicated();
        again.Lose("S1");
        again.AnswerStateRequest(request, key, out _, out _, out _);
        again.Reinstated(AuthenticationFixture.Cid, out _, out _, out _);
        again.Rejoined("S1");
        Assert.False(again.IsLost("S1"));
        Assert.Empty(again.Reachable("S1"));
        Assert.Empty(again.TakenOverByOrigin());
    }

    [Fact]
    public void Without_a_cluster_key_no_replica_must_answer()
    {
        var (takeover, good, _) = Replicated();
        takeover.Lose("S1");

        Assert.Null(takeover.AnswerStateRequest(good, authenticator: null, out _, out _, out _));
        Assert.Equal(1, takeover.Store.Count);
    }

    [Fact]
    public void A_live_origin_silent_past_the_takeover_time_must_be_answered_for_from_its_replica()
    {
        var (takeover, good, authenticator) = Replicated();

        var reply = Assert.IsType<StateReply>(takeover.AnswerForSilentOrigin(good, "S1", authenticator, out var firstCid, out var check));
        Assert.Equal(MigratedConnectionCheck.Accepted, check);
        Assert.Equal(AuthenticationFixture.Cid, firstCid);
        Assert.Equal(AuthenticationFixture.NewEndpointCid, reply.NewEndpointCid);
        Assert.False(takeover.IsLost("S1"));

        Assert.True(takeover.Reinstated(AuthenticationFixture.Cid, out var origin, out _, out var fence));
        Assert.Equal("S1", origin);
        Assert.NotNull(fence);
        Assert.Equal(1, takeover.TakenOverCount);
        Assert.Equal(1, takeover.TakenOverFromSilentOrigin);

        // Fenced already: a later partition and its healing fence nothing twice.
        Assert.Empty(takeover.TakenOverByOrigin());
        takeover.Lose("S1");
        Assert.Empty(takeover.Reachable("S1"));
    }

    [Fact]
    public void A_silent_origin_must_be_told_of_the_takeover_once_reinstated_naming_the_incarnation_taken_over()
    {
        // Its late answer may never come (sent after its own state-request-timeout, it is dropped there): the notice does
        // not wait for it.
        var buddy = ReplicatedBuddy(epoch: 3);
        var takeover = buddy.Takeover;
        Assert.IsType<StateReply>(takeover.AnswerForSilentOrigin(buddy.Good, "S1", buddy.Authenticator, out _, out _));

        Assert.True(takeover.Reinstated(AuthenticationFixture.Cid, out var origin, out _, out var fence));

        Assert.Equal("S1", origin);
        Assert.NotNull(fence);
        Assert.Equal(AuthenticationFixture.Cid, fence.MigratingCid);
        Assert.Equal(3u, fence.Epoch);
        Assert.Equal(buddy.Good.RequestId, fence.RequestId);
    }

    [Fact]
    public void A_node_that_does_not_hold_the_silent_origins_replica_must_leave_the_request_to_the_origin()
    {
        var (takeover, good, authenticator) = Replicated();

        // The replica came from S1: a request to S3 for the same Cid is no takeover of S1's connection.
        Assert.Null(takeover.AnswerForSilentOrigin(good, "S3", authenticator, out _, out _));
        var unknown = new StateRequest(good.RequestId, AuthenticationFixture.Cid with { ClientPort = 40001 }, good.NewEndpointCid, good.ClientRcvNxt, good.Authenticator);
        Assert.Null(takeover.AnswerForSilentOrigin(unknown, "S1", authenticator, out _, out _));
        Assert.Null(takeover.AnswerForSilentOrigin(good, "S1", authenticator: null, out _, out _));
        Assert.Equal(0, takeover.AnsweredFromReplica);
        Assert.Equal(1, takeover.Store.Count);
    }

    [Fact]
    public void A_forged_special_syn_must_not_take_over_from_a_silent_origin_and_a_replayed_one_must_find_its_attempt_consumed()
    {
        var buddy = ReplicatedBuddy();
        var takeover = buddy.Takeover;
        var forged = AuthenticationFixture.Request(0x0123_4567_89AB_CDEF, buddy.Good.ClientRcvNxt);

        var reject = Assert.IsType<StateReject>(takeover.AnswerForSilentOrigin(forged, "S1", buddy.Authenticator, out _, out var check));
        Assert.Equal(StateRejectReason.AuthFailed, reject.Reason);
        Assert.NotEqual(MigratedConnectionCheck.Accepted, check);
        Assert.False(takeover.Reinstated(AuthenticationFixture.Cid, out _, out _, out _));

        // Nothing was taken over: the origin's updates are still acknowledged, and the genuine special SYN is answered once.
        Assert.Contains(buddy.NextUpdates(300).Select(update => takeover.Apply("S1", update)), ack => ack?.Status == ReplicaAckStatus.Held);
        Assert.Equal(0, takeover.RefusedUpdates);
        var genuine = AuthenticationFixture.Request(new ConnectionAuthenticator(buddy.Secret).MigratedConnection(AuthenticationFixture.Cid, AuthenticationFixture.NewEndpointCid, buddy.Link.Client.ReceiveNext, 0), buddy.Link.Client.ReceiveNext);
        Assert.IsType<StateReply>(takeover.AnswerForSilentOrigin(genuine, "S1", buddy.Authenticator, out _, out _));
        Assert.Equal(StateRejectReason.AuthFailed, Assert.IsType<StateReject>(takeover.AnswerForSilentOrigin(genuine, "S1", buddy.Authenticator, out _, out _)).Reason);
    }

    [Fact]
    public void Updates_the_origin_sends_after_its_replica_answered_must_never_be_acknowledged_until_it_releases_the_connection()
    {
        var buddy = ReplicatedBuddy();
        var takeover = buddy.Takeover;
        Assert.IsType<StateReply>(takeover.AnswerForSilentOrigin(buddy.Good, "S1", buddy.Authenticator, out _, out _));

        // In flight at the takeover: the client's next bytes reach the origin, which replicates them.
        var inFlight = buddy.NextUpdates(500);
        Assert.NotEmpty(inFlight);
        Assert.All(inFlight, update => Assert.Null(takeover.Apply("S1", update)));

        // Reinstated and fenced: the origin, not yet told, goes on; nothing is acknowledged.
        Assert.True(takeover.Reinstated(AuthenticationFixture.Cid, out _, out _, out var fence));
        Assert.NotNull(fence);
        Assert.All(buddy.NextUpdates(500), update => Assert.Null(takeover.Apply("S1", update)));
        Assert.True(takeover.RefusedUpdates >= 2);
        Assert.Equal(0, takeover.Store.Count);

        // The origin dropped the connection and released it: the same 4-tuple served there again is replicated again.
        Assert.Null(takeover.Apply("S1", new ReplicaRelease(99, AuthenticationFixture.Cid)));
        var again = ReplicatedBuddy();
        var acks = again.Updates.Select(update => takeover.Apply("S1", update)).Where(ack => ack is not null).ToList();
        Assert.Contains(acks, ack => ack!.Status == ReplicaAckStatus.Held);
        Assert.Equal(1, takeover.Store.Count);
    }

    [Fact]
    public void Updates_from_another_node_and_from_a_new_incarnation_of_the_silent_origin_must_still_be_acknowledged()
    {
        var buddy = ReplicatedBuddy();
        var takeover = buddy.Takeover;
        Assert.IsType<StateReply>(takeover.AnswerForSilentOrigin(buddy.Good, "S1", buddy.Authenticator, out _, out _));
        takeover.Reinstated(AuthenticationFixture.Cid, out _, out _, out _);

        // The same Cid replicated by another node (the connection moved there, or a Cid reused) is that node's; a node
        // back as a new incarnation never held the connection taken over from its predecessor.
        Assert.Contains(ReplicatedBuddy().Updates.Select(update => takeover.Apply("S3", update)), ack => ack?.Status == ReplicaAckStatus.Held);
        Assert.All(ReplicatedBuddy().Updates, update => Assert.Null(takeover.Apply("S1", update)));
        takeover.Rejoined("S1");
        Assert.Contains(ReplicatedBuddy().Updates.Select(update => takeover.Apply("S1", update)), ack => ack?.Status == ReplicaAckStatus.Held);
    }

    [Fact]
    public void A_special_syn_sent_again_after_a_silent_origin_takeover_must_be_answered_from_the_replica_with_a_fresh_attempt_only()
    {
        var buddy = ReplicatedBuddy();
        var takeover = buddy.Takeover;
        Assert.IsType<StateReply>(takeover.AnswerForSilentOrigin(buddy.Good, "S1", buddy.Authenticator, out _, out _));

        // The new endpoint refused before the reply came (no state ack): the client's next pass, a new attempt, is
        // answered again, while the origin stays silent; its first special SYN, replayed, is not.
        Assert.IsType<StateReject>(takeover.AnswerForSilentOrigin(buddy.Good, "S1", buddy.Authenticator, out _, out _));
        var next = AuthenticationFixture.Request(new ConnectionAuthenticator(buddy.Secret).MigratedConnection(AuthenticationFixture.Cid, AuthenticationFixture.NewEndpointCid, buddy.Good.ClientRcvNxt, 1), buddy.Good.ClientRcvNxt);
        Assert.IsType<StateReply>(takeover.AnswerForSilentOrigin(next, "S1", buddy.Authenticator, out _, out var check));
        Assert.Equal(MigratedConnectionCheck.Accepted, check);
        Assert.True(takeover.Reinstated(AuthenticationFixture.Cid, out _, out _, out _));
        Assert.Equal(2, takeover.AnsweredFromReplica);
        Assert.Equal(1, takeover.TakenOverCount);
    }

    /// <summary>A buddy holding S1's replica of a connection, and a genuine state request for it.</summary>
    private static (ReplicaTakeover<string> Takeover, StateRequest Good, IMigrationAuthenticator Authenticator) Replicated()
    {
        var buddy = ReplicatedBuddy();
        return (buddy.Takeover, buddy.Good, buddy.Authenticator);
    }

    /// <summary>As <see cref="Replicated"/>, with the connection and its replicator to send more updates from S1.</summary>
    /// <param name="epoch">migrations the connection completed before S1 held it (its credential's epoch).</param>
    private static Buddy ReplicatedBuddy(uint epoch = 0)
    {
        var authenticator = AuthenticationFixture.Authenticator();
        var cid = AuthenticationFixture.Cid;
        var link = new DirectLink(ServerConfig, ClientConfig);
        var issued = ServerMigration.IssueCredential(authenticator, cid, AuthenticationFixture.ClientIsn, AuthenticationFixture.ServerIsn, out var secret);
        var credential = issued with { Credential = issued.Credential with { Epoch = epoch } };
        var replicator = new ConnectionReplicator(cid, maxPiece: 1_000, readLogsInFlight: 1_000, ReplicaStateSchedule.EverySnapshot, AckTimeout);
        var takeover = new ReplicaTakeover<string>(16 * 1024 * 1024);
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 2_000));
        link.Exchange();
        replicator.Update(link.Now, link.Server, credential.ToBytes());
        var updates = new List<ControlMessage>();
        while (replicator.PollOutgoing(out var message))
        {
            updates.Add(message);
            if (takeover.Apply("S1", message) is { } ack)
            {
                replicator.HandleAck(ack, link.Server);
            }
        }

        var rcvNxt = link.Client.ReceiveNext;
        var good = AuthenticationFixture.Request(new ConnectionAuthenticator(secret).MigratedConnection(cid, AuthenticationFixture.NewEndpointCid, rcvNxt, 0), rcvNxt);
        return new Buddy(takeover, good, authenticator, secret, link, replicator, credential.ToBytes(), updates);
    }

    private sealed record Buddy(
        ReplicaTakeover<string> Takeover,
        StateRequest Good,
        IMigrationAuthenticator Authenticator,
        MigrationSecret Secret,
        DirectLink Link,
        ConnectionReplicator Replicator,
        byte[] Credential,
        IReadOnlyList<ControlMessage> Updates)
    {
        /// <summary>The client sends <paramref name="bytes"/> more to S1, which replicates them: the updates it sends.</summary>
        public IReadOnlyList<ControlMessage> NextUpdates(int bytes)
        {
            Link.Client.Write(MigrationSnapshotTests.Pattern(2, 0, bytes));
            Link.Exchange();
            Replicator.Update(Link.Now, Link.Server, Credential);
            var updates = new List<ControlMessage>();
            while (Replicator.PollOutgoing(out var update))
            {
                updates.Add(update);
            }

            return updates;
        }
    }
}

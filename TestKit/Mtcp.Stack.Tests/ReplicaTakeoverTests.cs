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

        Assert.False(takeover.Reinstated(AuthenticationFixture.NewEndpointCid, out _, out _));
        Assert.True(takeover.Reinstated(AuthenticationFixture.Cid, out var from, out _));
        Assert.Equal("S1", from);
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
        var (takeover, good, authenticator) = Replicated();
        takeover.Lose("S1");
        takeover.AnswerStateRequest(good, authenticator, out _, out _, out _);
        takeover.Reinstated(AuthenticationFixture.Cid, out _, out _);

        Assert.Equal([AuthenticationFixture.Cid], takeover.Reachable("S1"));
        Assert.False(takeover.IsLost("S1"));
        Assert.Empty(takeover.Reachable("S1"));

        var (again, request, key) = Replicated();
        again.Lose("S1");
        again.AnswerStateRequest(request, key, out _, out _, out _);
        again.Reinstated(AuthenticationFixture.Cid, out _, out _);
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

    /// <summary>A buddy holding S1's replica of a connection, and a genuine state request for it.</summary>
    private static (ReplicaTakeover<string> Takeover, StateRequest Good, IMigrationAuthenticator Authenticator) Replicated()
    {
        var authenticator = AuthenticationFixture.Authenticator();
        var cid = AuthenticationFixture.Cid;
        var link = new DirectLink(ServerConfig, ClientConfig);
        var credential = ServerMigration.IssueCredential(authenticator, cid, AuthenticationFixture.ClientIsn, AuthenticationFixture.ServerIsn, out var secret);
        var replicator = new ConnectionReplicator(cid, maxPiece: 1_000, readLogsInFlight: 1_000, ReplicaStateSchedule.EverySnapshot);
        var takeover = new ReplicaTakeover<string>(16 * 1024 * 1024);
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 2_000));
        link.Exchange();
        replicator.Update(link.Server, credential.ToBytes());
        while (replicator.PollOutgoing(out var message))
        {
            if (takeover.Apply("S1", message) is { } ack)
            {
                replicator.HandleAck(ack, link.Server);
            }
        }

        var rcvNxt = link.Client.ReceiveNext;
        var good = AuthenticationFixture.Request(new ConnectionAuthenticator(secret).MigratedConnection(cid, AuthenticationFixture.NewEndpointCid, rcvNxt, 0), rcvNxt);
        return (takeover, good, authenticator);
    }
}

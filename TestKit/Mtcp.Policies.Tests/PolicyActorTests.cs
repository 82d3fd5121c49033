using Akka.Actor;
using Akka.TestKit;
using Mtcp.Stack;
using Mtcp.Wire;
using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

/// <summary>
/// The thin actors turn observations into decision messages to an injected actor. Time travels in the
/// messages (virtual time), so nothing here waits for a clock except the one test of the actor's own timer.
/// </summary>
[Trait("Category", "Policy")]
public sealed class PolicyActorTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(200);

    [Fact]
    public void Client_policy_actor_must_send_a_migration_decision_when_throughput_drops()
    {
        var decisions = CreateTestProbe();
        var settings = Client("mtcp.policies.client.throughput.min-observation-window = 0s");
        var policy = Sys.ActorOf(ClientPolicyActor.Props(settings, decisions.Ref, Ms(0)));
        var stream = Connection(40000);
        policy.Tell(new ConnectionAlternatesChanged(stream, S1, [S2], Ms(0)));

        // The hand-computed sequence of thesis 5.3.2's filter: S = 1e6, 1e6, 8e5, then 6.8e5 <= 0.7 x 1e6.
        foreach (var time in new double[] { 0, 1, 2, 4 })
        {
            policy.Tell(new SegmentObserved(stream, 1000, Ms(time)));
        }

        decisions.ExpectNoMsg(Quiet);
        policy.Tell(new SegmentObserved(stream, 1000, Ms(6)));

        var decision = decisions.ExpectMsg<MigrateConnection>();
        Assert.Equal(stream, decision.Connection);
        Assert.Equal(S2, decision.Destination);
        Assert.Equal(MigrationReason.ThroughputDrop, decision.Reason);
        Assert.Equal("smoothed throughput 680000 B/s <= 0.7 x max 1000000 B/s (alpha 0.4, 4 samples)", decision.Detail);
    }

    [Fact]
    public void Client_policy_actor_must_hold_a_decision_back_during_the_hold_down()
    {
        var decisions = CreateTestProbe();
        var settings = Client("mtcp.policies.client.throughput.min-observation-window = 0s\nmtcp.policies.client.guard.hold-down = 1s");
        var policy = Sys.ActorOf(ClientPolicyActor.Props(settings, decisions.Ref, Ms(0)));
        var stream = Connection(40001);
        policy.Tell(new ConnectionAlternatesChanged(stream, S1, [S2], Ms(0)));
        policy.Tell(new MigrationCompleted(stream, S2, S1, Ms(0)));

        policy.Tell(new SegmentObserved(stream, 1000, Ms(0)));
        policy.Tell(new SegmentObserved(stream, 1000, Ms(1)));
        policy.Tell(new SegmentObserved(stream, 1000, Ms(500)));
        decisions.ExpectNoMsg(Quiet);

        policy.Tell(new SegmentObserved(stream, 1000, Ms(1000)));
        Assert.Equal(S2, decisions.ExpectMsg<MigrateConnection>().Destination);
    }

    [Fact]
    public void Client_policy_actor_must_run_the_latency_and_response_time_triggers()
    {
        var decisions = CreateTestProbe();
        var settings = Client("""
            mtcp.policies.client.triggers = [latency, response-time]
            mtcp.policies.client.latency.min-observation-window = 0s
            mtcp.policies.client.latency.consecutive-segments = 1
            mtcp.policies.client.response-time.min-observation-window = 0s
            mtcp.policies.client.response-time.baseline-multiplier = 0
            mtcp.policies.client.response-time.fixed-bound = 50ms
            mtcp.policies.client.response-time.consecutive-requests = 1
            """);
        var policy = Sys.ActorOf(ClientPolicyActor.Props(settings, decisions.Ref, Ms(0)));
        var late = Connection(1);
        var slow = Connection(2);
        policy.Tell(new ConnectionAlternatesChanged(late, S1, [S2], Ms(0)));
        policy.Tell(new ConnectionAlternatesChanged(slow, S1, [S3], Ms(0)));

        policy.Tell(new SegmentDelay(late, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(10), Ms(10)));
        Assert.Equal(new MigrateConnection(late, S2, MigrationReason.SegmentDelay, decisions.ExpectMsg<MigrateConnection>().Detail), decisions.LastMessage);

        policy.Tell(new RequestCompleted(slow, TimeSpan.FromMilliseconds(60), Ms(20)));
        var decision = decisions.ExpectMsg<MigrateConnection>();
        Assert.Equal((slow, S3, MigrationReason.ResponseTime), (decision.Connection, decision.Destination!.Value, decision.Reason));
    }

    [Fact]
    public void Server_policy_actor_must_publish_its_load_and_push_connections()
    {
        var (policy, decisions, cluster) = ServerActor("");
        for (var i = 0; i < 10; i++)
        {
            policy.Tell(new ConnectionAccepted(Connection(i), null, Ms(0)));
        }

        policy.Tell(new NodeLoadReport(S2, 6, 6, false, Ms(0)));
        policy.Tell(new EvaluateLoad(Ms(1000)));

        Assert.Equal(new NodeLoadReport(S1, 10, 10, false, Ms(1000)), cluster.ExpectMsg<NodeLoadReport>());
        var first = decisions.ExpectMsg<TriggerMigration>();
        var second = decisions.ExpectMsg<TriggerMigration>();
        Assert.Equal([Connection(0), Connection(1)], new[] { first.Connection, second.Connection });
        Assert.All(new[] { first, second }, d => Assert.Equal((S2, MigrationReason.LoadBalancePush), (d.Destination, d.Reason)));
        decisions.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void Server_policy_actor_must_send_pull_requests_through_the_cluster_and_honour_them()
    {
        var (light, _, lightCluster) = ServerActor("mtcp.policies.server.pull = on\nmtcp.policies.server.push = off", S2);
        var (loaded, loadedDecisions, loadedCluster) = ServerActor("mtcp.policies.server.push = off", S1);
        for (var i = 0; i < 10; i++)
        {
            loaded.Tell(new ConnectionAccepted(Connection(i), null, Ms(0)));
        }

        loaded.Tell(new EvaluateLoad(Ms(1000)));
        light.Tell(loadedCluster.ExpectMsg<NodeLoadReport>());
        light.Tell(new EvaluateLoad(Ms(1000)));
        lightCluster.ExpectMsg<NodeLoadReport>();
        var pull = lightCluster.ExpectMsg<PullConnections>();

        loaded.Tell(pull);

        for (var i = 0; i < 4; i++)
        {
            var decision = loadedDecisions.ExpectMsg<TriggerMigration>();
            Assert.Equal((S2, MigrationReason.LoadBalancePull), (decision.Destination, decision.Reason));
        }

        loadedDecisions.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void Server_policy_actor_must_answer_operator_commands()
    {
        var (policy, decisions, _) = ServerActor("");
        policy.Tell(new ConnectionAccepted(Connection(1), null, Ms(0)));

        policy.Tell(new MigrateOneConnection(Connection(1), S3, Ms(1)));
        ExpectMsg<CommandAccepted>();
        Assert.Equal(new TriggerMigration(Connection(1), S3, MigrationReason.OperatorCommand, "operator command"), decisions.ExpectMsg<TriggerMigration>());

        policy.Tell(new MigrateOneConnection(Connection(2), S3, Ms(1)));
        Assert.Contains("is not on this node", ExpectMsg<CommandRejected>().Reason);
    }

    [Fact]
    public void Server_policy_actor_must_drain_every_connection_and_report_completion()
    {
        var (policy, decisions, _) = ServerActor("""
            mtcp.policies.server.drain.migrations-per-second = 2
            mtcp.policies.server.drain.burst = 2
            """);
        for (var i = 0; i < 3; i++)
        {
            policy.Tell(new ConnectionAccepted(Connection(i), null, Ms(0)));
        }

        policy.Tell(new NodeLoadReport(S2, 0, 0, false, Ms(0)));
        policy.Tell(new DrainNode(null, Ms(0)));

        ExpectMsg<CommandAccepted>();
        Assert.Equal(new DrainProgress(2, 3, Ms(0)), ExpectMsg<DrainProgress>());
        var triggered = new List<ConnectionId> { decisions.ExpectMsg<TriggerMigration>().Connection, decisions.ExpectMsg<TriggerMigration>().Connection };

        policy.Tell(new EvaluateLoad(Ms(1000)));
        Assert.Equal(new DrainProgress(3, 3, Ms(1000)), ExpectMsg<DrainProgress>());
        triggered.Add(decisions.ExpectMsg<TriggerMigration>().Connection);

        foreach (var connection in triggered)
        {
            policy.Tell(new ConnectionEnded(connection, Ms(1500)));
        }

        ExpectMsg<DrainProgress>(p => p.Remaining == 0);
        Assert.Equal(new DrainCompleted(3, TimeSpan.FromMilliseconds(1500), Ms(1500)), ExpectMsg<DrainCompleted>());
        Assert.Equal([Connection(0), Connection(1), Connection(2)], triggered);
    }

    [Fact]
    public void Server_policy_actor_must_shed_on_cpu_overload_from_owner_samples()
    {
        var (policy, decisions, cluster) = ServerActor("""
            mtcp.policies.server.load-source = cpu
            mtcp.policies.server.overload-threshold = 0.9
            mtcp.policies.server.push = off
            """);
        policy.Tell(new ConnectionAccepted(Connection(1), null, Ms(0)));
        policy.Tell(new NodeLoadReport(S2, 0.1, 3, false, Ms(0)));
        policy.Tell(new ProcessorTimeSample(TimeSpan.Zero, 2, Ms(0)));
        policy.Tell(new EvaluateLoad(Ms(0)));
        cluster.ExpectMsg<NodeLoadReport>();

        policy.Tell(new ProcessorTimeSample(TimeSpan.FromSeconds(1.9), 2, Ms(1000)));
        policy.Tell(new EvaluateLoad(Ms(1000)));

        Assert.Equal(0.95, cluster.ExpectMsg<NodeLoadReport>().Load, 9);
        var decision = decisions.ExpectMsg<TriggerMigration>();
        Assert.Equal((Connection(1), S2, MigrationReason.Overload), (decision.Connection, decision.Destination, decision.Reason));
    }

    [Fact]
    public void Server_policy_actor_must_evaluate_on_its_own_timer_reading_the_injected_clock()
    {
        var cluster = CreateTestProbe();
        var settings = Server("mtcp.policies.server.evaluation-interval = 50ms");
        var now = new Instant(0);
        var policy = Sys.ActorOf(ServerPolicyActor.Props(S1, settings, CreateTestProbe().Ref, cluster.Ref, () => now));
        policy.Tell(new ConnectionAccepted(Connection(1), null, Ms(0)));

        var report = cluster.FishForMessage<NodeLoadReport>(r => r.Connections == 1, TimeSpan.FromSeconds(5));

        Assert.Equal(S1, report.Node);
        Assert.Equal(now, report.At);
    }

    private (IActorRef Policy, TestProbe Decisions, TestProbe Cluster) ServerActor(string overrides, Mtcp.Wire.ServerEndpoint? self = null)
    {
        var decisions = CreateTestProbe();
        var cluster = CreateTestProbe();
        var settings = Server("mtcp.policies.server.evaluation-interval = 0s\n" + overrides);
        var policy = Sys.ActorOf(ServerPolicyActor.Props(self ?? S1, settings, decisions.Ref, cluster.Ref, () => Ms(0)));
        return (policy, decisions, cluster);
    }
}

using Mtcp.Stack;
using Mtcp.Wire;
using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

/// <summary>The server side on scripted loads: push, pull, overload shedding, guard rails, operator commands and drain.</summary>
[Trait("Category", "Policy")]
public sealed class ServerMigrationPolicyTests
{
    private const string Quiet = """
        mtcp.policies.server.evaluation-interval = 0s
        mtcp.policies.server.guard.migrations-per-second = 1000
        mtcp.policies.server.guard.burst = 1000
        """;

    private static ServerMigrationPolicy Node(ServerEndpoint self, int connections, string overrides = "", int firstPort = 1000)
    {
        var policy = new ServerMigrationPolicy(self, Server(Quiet + "\n" + overrides), Ms(0));
        for (var i = 0; i < connections; i++)
        {
            policy.OnConnectionAccepted(new ConnectionAccepted(Connection(firstPort + i), null, Ms(0)));
        }

        return policy;
    }

    private static List<TriggerMigration> Decisions(IEnumerable<ServerOutcome> outcomes) =>
        outcomes.Where(o => o.Decision is not null).Select(o => o.Decision!).ToList();

    [Fact]
    public void Push_must_halve_the_imbalance_towards_the_least_loaded_peer()
    {
        var node = Node(S1, 10);
        node.OnPeerLoad(new NodeLoadReport(S2, 6, 6, false, Ms(0)));
        node.OnPeerLoad(new NodeLoadReport(S3, 9, 9, false, Ms(0)));

        var evaluation = node.Evaluate(Ms(1000));

        var decisions = Decisions(evaluation.Outcomes);
        Assert.Equal(2, decisions.Count);
        Assert.All(decisions, d => Assert.Equal(S2, d.Destination));
        Assert.All(decisions, d => Assert.Equal(MigrationReason.LoadBalancePush, d.Reason));
        Assert.Equal([Connection(1000), Connection(1001)], decisions.Select(d => d.Connection));
        Assert.Equal(new NodeLoadReport(S1, 10, 10, false, Ms(1000)), evaluation.Report);
    }

    [Fact]
    public void Imbalance_below_the_threshold_must_not_push()
    {
        var node = Node(S1, 10);
        node.OnPeerLoad(new NodeLoadReport(S2, 7, 7, false, Ms(0)));

        Assert.Empty(node.Evaluate(Ms(1000)).Outcomes);
    }

    [Fact]
    public void Stale_or_draining_peers_must_never_be_destinations()
    {
        var node = Node(S1, 10);
        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(0)));
        node.OnPeerLoad(new NodeLoadReport(S3, 0, 0, true, Ms(6000)));

        // S2's report is 6 s old (expiry 5 s); S3 is draining.
        Assert.Empty(node.Evaluate(Ms(6000)).Outcomes);
    }

    [Fact]
    public void An_older_report_must_not_replace_a_newer_one()
    {
        var node = Node(S1, 10);
        node.OnPeerLoad(new NodeLoadReport(S2, 10, 10, false, Ms(2000)));
        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(1000)));

        Assert.Empty(node.Evaluate(Ms(2000)).Outcomes);
    }

    [Fact]
    public void Pushed_connections_must_be_held_down_at_the_next_evaluation()
    {
        var node = Node(S1, 10, "mtcp.policies.server.max-moves-per-evaluation = 1");
        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(0)));

        var first = Decisions(node.Evaluate(Ms(1000)).Outcomes);
        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(1500)));
        var second = Decisions(node.Evaluate(Ms(2000)).Outcomes);

        Assert.Equal(Connection(1000), Assert.Single(first).Connection);
        Assert.Equal(Connection(1001), Assert.Single(second).Connection);
    }

    [Fact]
    public void Pull_must_ask_the_most_loaded_peer_and_the_peer_must_honour_it()
    {
        var light = Node(S2, 2, "mtcp.policies.server.pull = on\nmtcp.policies.server.push = off");
        var loaded = Node(S1, 10, "mtcp.policies.server.push = off");
        var loadedReport = loaded.Evaluate(Ms(1000)).Report;
        light.OnPeerLoad(loadedReport);
        light.OnPeerLoad(new NodeLoadReport(S3, 3, 3, false, Ms(1000)));

        var request = light.Evaluate(Ms(1000)).Pull;

        Assert.Equal(new PullConnections(S2, S1, 2, 4, Ms(1000)), request);
        var decisions = Decisions(loaded.OnPullRequest(request!));
        Assert.Equal(4, decisions.Count);
        Assert.All(decisions, d => Assert.Equal(S2, d.Destination));
        Assert.All(decisions, d => Assert.Equal(MigrationReason.LoadBalancePull, d.Reason));
    }

    [Fact]
    public void Pull_must_be_ignored_when_the_imbalance_is_gone_or_it_is_addressed_elsewhere()
    {
        var loaded = Node(S1, 10);
        loaded.Evaluate(Ms(1000));

        Assert.Empty(loaded.OnPullRequest(new PullConnections(S2, S1, 8, 4, Ms(1000))));
        Assert.Empty(loaded.OnPullRequest(new PullConnections(S2, S3, 0, 4, Ms(1000))));
    }

    [Fact]
    public void Overload_must_shed_a_fraction_of_connections_across_the_least_loaded_peers()
    {
        var node = Node(S1, 10, """
            mtcp.policies.server.overload-threshold = 8
            mtcp.policies.server.shed-fraction = 0.25
            """);
        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(0)));
        node.OnPeerLoad(new NodeLoadReport(S3, 1, 1, false, Ms(0)));

        var decisions = Decisions(node.Evaluate(Ms(1000)).Outcomes);

        // ceil(0.25 * 10) = 3, spread by projected load: S2 (0 -> 1), S2 (1 -> 2, first of the tie), S3.
        Assert.Equal([S2, S2, S3], decisions.Select(d => d.Destination));
        Assert.All(decisions, d => Assert.Equal(MigrationReason.Overload, d.Reason));
    }

    [Fact]
    public void Overload_must_shed_even_towards_a_peer_above_the_imbalance_rule()
    {
        var node = Node(S1, 10, "mtcp.policies.server.overload-threshold = 10");
        node.OnPeerLoad(new NodeLoadReport(S2, 9, 9, false, Ms(0)));

        var decisions = Decisions(node.Evaluate(Ms(1000)).Outcomes);

        Assert.Equal(S2, Assert.Single(decisions).Destination);
    }

    [Fact]
    public void Overload_without_a_live_peer_must_say_so()
    {
        var node = Node(S1, 10, "mtcp.policies.server.overload-threshold = 5");

        var outcome = Assert.Single(node.Evaluate(Ms(1000)).Outcomes);

        Assert.Equal((PolicyKind.Overload, GuardVerdict.NoDestination), (outcome.Policy, outcome.Verdict));
    }

    [Fact]
    public void Push_must_stay_silent_when_one_move_would_invert_the_imbalance()
    {
        var node = Node(S1, 3, "mtcp.policies.server.imbalance-threshold = 1");
        node.OnPeerLoad(new NodeLoadReport(S2, 2, 2, false, Ms(0)));

        Assert.Empty(node.Evaluate(Ms(1000)).Outcomes);
    }

    [Fact]
    public void Rate_limit_must_cap_decisions_and_say_so()
    {
        var node = new ServerMigrationPolicy(S1, Server("""
            mtcp.policies.server.guard.migrations-per-second = 1
            mtcp.policies.server.guard.burst = 2
            mtcp.policies.server.overload-threshold = 5
            mtcp.policies.server.shed-fraction = 1
            """), Ms(0));
        for (var i = 0; i < 10; i++)
        {
            node.OnConnectionAccepted(new ConnectionAccepted(Connection(i), null, Ms(0)));
        }

        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(0)));

        var outcomes = node.Evaluate(Ms(0)).Outcomes;

        Assert.Equal(2, Decisions(outcomes).Count);
        Assert.Equal(GuardVerdict.RateLimited, outcomes[^1].Verdict);
        Assert.Null(outcomes[^1].Decision);
    }

    [Fact]
    public void A_connection_must_not_be_pushed_back_to_the_node_it_came_from_inside_the_window()
    {
        var node = Node(S1, 0, "mtcp.policies.server.guard.hold-down = 1s");
        for (var i = 0; i < 10; i++)
        {
            node.OnConnectionAccepted(new ConnectionAccepted(Connection(i), S2, Ms(0)));
        }

        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(5000)));
        var outcomes = node.Evaluate(Ms(5000)).Outcomes;

        Assert.Empty(Decisions(outcomes));
        Assert.Equal(GuardVerdict.PingPong, Assert.Single(outcomes).Verdict);

        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(30_000)));
        Assert.NotEmpty(Decisions(node.Evaluate(Ms(30_000)).Outcomes));
    }

    [Fact]
    public void Completed_migrations_must_count_as_departures_and_arrivals()
    {
        var origin = Node(S1, 2);
        var destination = Node(S2, 0, "mtcp.policies.server.guard.hold-down = 0s\nmtcp.policies.server.overload-threshold = 2");
        var moved = new MigrationCompleted(Connection(1000), S1, S2, Ms(0));
        origin.OnMigrationCompleted(moved);
        destination.OnMigrationCompleted(moved);
        destination.OnMigrationCompleted(new MigrationCompleted(Connection(5), S3, S1, Ms(0)));

        Assert.Equal(1, origin.Connections);
        Assert.Equal(1, destination.Connections);

        // Overloaded, S2 would shed its one connection to S1, but it just arrived from there.
        destination.OnConnectionAccepted(new ConnectionAccepted(Connection(6), S3, Ms(0)));
        destination.OnMigrationCompleted(new MigrationCompleted(Connection(6), S2, S3, Ms(0)));
        destination.OnMigrationCompleted(new MigrationCompleted(Connection(7), S3, S2, Ms(0)));
        Assert.Equal(2, destination.Connections);
        destination.OnPeerLoad(new NodeLoadReport(S1, 0, 0, false, Ms(1)));
        destination.OnPeerLoad(new NodeLoadReport(S3, 5, 5, false, Ms(1)));
        var shed = Decisions(destination.Evaluate(Ms(1)).Outcomes);

        // Connection 1000 (from S1) may not go back to S1; connection 7 (from S3) may.
        Assert.Equal((Connection(7), S1), (Assert.Single(shed).Connection, Assert.Single(shed).Destination));
    }

    [Fact]
    public void Bytes_per_second_load_must_be_measured_over_the_evaluation_interval()
    {
        var node = Node(S1, 2, "mtcp.policies.server.load-source = bytes-per-second");
        node.Evaluate(Ms(0));
        node.OnBytesServed(new BytesServed(Connection(1000), 300_000, Ms(100)));
        node.OnBytesServed(new BytesServed(Connection(1001), 200_000, Ms(200)));

        Assert.Equal(250_000, node.Evaluate(Ms(2000)).Report.Load);
        Assert.Equal(0, node.Evaluate(Ms(3000)).Report.Load);
    }

    [Fact]
    public void Application_load_must_be_the_last_reported_figure()
    {
        var node = Node(S1, 2, "mtcp.policies.server.load-source = application");
        node.OnApplicationLoad(new ApplicationLoad(0.75, Ms(0)));

        Assert.Equal(0.75, node.Evaluate(Ms(1000)).Report.Load);
    }

    [Fact]
    public void Cpu_load_must_be_the_processor_share_between_samples()
    {
        var node = Node(S1, 2, "mtcp.policies.server.load-source = cpu");
        Assert.Equal(0, node.Evaluate(Ms(0)).Report.Load);
        node.OnProcessorTime(new ProcessorTimeSample(TimeSpan.FromSeconds(10), 4, Ms(0)));
        Assert.Equal(0, node.Evaluate(Ms(0)).Report.Load);

        // 3 s of processor time in 1 s of wall time on 4 processors: 75 %.
        node.OnProcessorTime(new ProcessorTimeSample(TimeSpan.FromSeconds(13), 4, Ms(1000)));
        Assert.Equal(0.75, node.Evaluate(Ms(1000)).Report.Load, 9);

        // No newer sample: the share stays.
        Assert.Equal(0.75, node.Evaluate(Ms(2000)).Report.Load, 9);
    }

    [Fact]
    public void Operator_must_move_one_connection_whatever_the_hold_down()
    {
        var node = Node(S1, 3, "mtcp.policies.server.guard.hold-down = 1h");
        node.OnPeerLoad(new NodeLoadReport(S3, 1, 1, false, Ms(0)));
        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(0)));
        node.OnConnectionAccepted(new ConnectionAccepted(Connection(7), S2, Ms(0)));

        var (named, _) = node.MigrateOne(new MigrateOneConnection(Connection(7), S2, Ms(1)));
        var (chosen, _) = node.MigrateOne(new MigrateOneConnection(Connection(1000), null, Ms(1)));

        Assert.Equal(new TriggerMigration(Connection(7), S2, MigrationReason.OperatorCommand, "operator command"), named!.Decision);
        Assert.Equal(S2, chosen!.Decision!.Destination);
    }

    [Fact]
    public void Operator_command_for_an_unknown_connection_or_without_peers_must_be_refused()
    {
        var node = Node(S1, 3);

        Assert.Equal("connection 192.168.1.10:9<->10.0.0.1:7000 is not on this node", node.MigrateOne(new MigrateOneConnection(Connection(9), S2, Ms(0))).Rejection);
        Assert.Equal("no live peer has reported its load recently", node.MigrateOne(new MigrateOneConnection(Connection(1000), null, Ms(0))).Rejection);
        Assert.Equal("the destination is this node", node.MigrateOne(new MigrateOneConnection(Connection(1000), S1, Ms(0))).Rejection);
    }

    [Fact]
    public void Drain_must_move_every_connection_at_the_configured_pace_and_complete()
    {
        var node = Node(S1, 5, """
            mtcp.policies.server.drain.migrations-per-second = 2
            mtcp.policies.server.drain.burst = 2
            """);
        node.OnPeerLoad(new NodeLoadReport(S2, 0, 0, false, Ms(0)));
        node.OnPeerLoad(new NodeLoadReport(S3, 0, 0, false, Ms(0)));
        Assert.Null(node.StartDrain(new DrainNode(null, Ms(0))));

        var (first, progress, _) = node.StepDrain(Ms(0));
        Assert.Equal(2, Decisions(first).Count);
        Assert.Equal(new DrainProgress(2, 5, Ms(0)), progress);

        // The first two leave; a second later two more tokens.
        foreach (var decision in Decisions(first))
        {
            node.OnConnectionEnded(new ConnectionEnded(decision.Connection, Ms(500)));
        }

        var second = node.Evaluate(Ms(1000));
        Assert.Equal(2, Decisions(second.Outcomes).Count);
        Assert.True(second.Report.Draining);
        Assert.Equal(new DrainProgress(4, 3, Ms(1000)), second.DrainProgress);

        var third = node.Evaluate(Ms(2000));
        var last = Assert.Single(Decisions(third.Outcomes));
        foreach (var decision in Decisions(second.Outcomes).Append(last))
        {
            node.OnConnectionEnded(new ConnectionEnded(decision.Connection, Ms(2500)));
        }

        var (_, _, completed) = node.StepDrain(Ms(2500));
        Assert.Equal(new DrainCompleted(5, TimeSpan.FromMilliseconds(2500), Ms(2500)), completed);
        Assert.Null(node.StepDrain(Ms(3000)).Completed);

        // Spread over both peers, none back to this node.
        var destinations = Decisions(first).Concat(Decisions(second.Outcomes)).Append(last).Select(d => d.Destination).ToList();
        Assert.Contains(S2, destinations);
        Assert.Contains(S3, destinations);
    }

    [Fact]
    public void Drain_must_retrigger_a_connection_that_did_not_leave()
    {
        var node = Node(S1, 1, "mtcp.policies.server.drain.retry-after = 5s");
        Assert.Null(node.StartDrain(new DrainNode(S2, Ms(0))));

        Assert.Single(Decisions(node.StepDrain(Ms(0)).Outcomes));
        Assert.Empty(Decisions(node.StepDrain(Ms(4999)).Outcomes));
        Assert.Equal(S2, Assert.Single(Decisions(node.StepDrain(Ms(5000)).Outcomes)).Destination);
    }

    [Fact]
    public void Drain_must_stop_load_balancing_and_refuse_a_second_drain()
    {
        var node = Node(S1, 10, "mtcp.policies.server.pull = on");
        node.OnPeerLoad(new NodeLoadReport(S2, 20, 20, false, Ms(0)));
        Assert.Null(node.StartDrain(new DrainNode(null, Ms(0))));

        var evaluation = node.Evaluate(Ms(0));

        Assert.Null(evaluation.Pull);
        Assert.All(evaluation.Outcomes, o => Assert.Equal(PolicyKind.Drain, o.Policy));
        Assert.Equal("this node is already draining", node.StartDrain(new DrainNode(null, Ms(1))));
        Assert.Empty(node.OnPullRequest(new PullConnections(S3, S1, 0, 4, Ms(1))));
    }

    [Fact]
    public void Drain_without_a_live_peer_must_say_so()
    {
        var node = Node(S1, 2);
        node.StartDrain(new DrainNode(null, Ms(0)));

        var outcome = Assert.Single(node.StepDrain(Ms(0)).Outcomes);

        Assert.Equal(GuardVerdict.NoDestination, outcome.Verdict);
    }
}

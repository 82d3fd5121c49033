using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Akka.Actor;
using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

/// <summary>Runs alone: the meter is process-wide, and other tests' decisions would be counted too.</summary>
[CollectionDefinition(nameof(PolicyMetricsTests), DisableParallelization = true)]
public sealed class PolicyMetricsCollection;

[Trait("Category", "Policy")]
[Collection(nameof(PolicyMetricsTests))]
public sealed class PolicyMetricsTests : Akka.TestKit.Xunit2.TestKit
{
    [Fact]
    public void Every_decision_and_every_suppression_must_be_counted_by_policy_and_reason()
    {
        var counts = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == PolicyMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name + ":" + string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}"));
            counts.AddOrUpdate(key, value, (_, total) => total + value);
        });
        listener.Start();

        var decisions = CreateTestProbe();
        var settings = Client("mtcp.policies.client.throughput.min-observation-window = 0s\nmtcp.policies.client.guard.hold-down = 1s");
        var policy = Sys.ActorOf(ClientPolicyActor.Props(settings, decisions.Ref, Ms(0)));
        var stream = Connection(1);
        policy.Tell(new ConnectionAlternatesChanged(stream, S1, [S2], Ms(0)));
        policy.Tell(new MigrationCompleted(stream, S2, S1, Ms(0)));
        policy.Tell(new SegmentObserved(stream, 1000, Ms(0)));
        policy.Tell(new SegmentObserved(stream, 1000, Ms(1)));
        policy.Tell(new SegmentObserved(stream, 1000, Ms(500)));
        policy.Tell(new SegmentObserved(stream, 1000, Ms(1000)));
        decisions.ExpectMsg<MigrateConnection>();

        Assert.Equal(1, counts.GetValueOrDefault("mtcp.policy.decisions:policy=Throughput,reason=ThroughputDrop"));
        Assert.Equal(1, counts.GetValueOrDefault("mtcp.policy.suppressed:policy=Throughput,guard=HoldDown"));
    }
}

using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

[Trait("Category", "Policy")]
public sealed class ThroughputTriggerTests
{
    private const double Tolerance = 1e-6;

    private static ThroughputTrigger Trigger(string overrides = "mtcp.policies.client.throughput.min-observation-window = 0s") =>
        new(Client(overrides).Throughput);

    [Fact]
    public void Smoothing_must_follow_the_thesis_formula_on_a_hand_computed_sequence()
    {
        var trigger = Trigger();

        // 1000-byte segments; the first only starts the clock.
        Assert.False(trigger.Observe(1000, Ms(0)));
        Assert.Null(trigger.Smoothed);

        // C = 1000 B / 1 ms = 1,000,000 B/s; the first C initialises S.
        Assert.False(trigger.Observe(1000, Ms(1)));
        Assert.Equal(1_000_000, trigger.Current!.Value, Tolerance);
        Assert.Equal(1_000_000, trigger.Smoothed!.Value, Tolerance);

        Assert.False(trigger.Observe(1000, Ms(2)));
        Assert.Equal(1_000_000, trigger.Smoothed!.Value, Tolerance);

        // C = 500,000: S = 0.4 * 500,000 + 0.6 * 1,000,000 = 800,000 > 0.7 * 1,000,000.
        Assert.False(trigger.Observe(1000, Ms(4)));
        Assert.Equal(500_000, trigger.Current!.Value, Tolerance);
        Assert.Equal(800_000, trigger.Smoothed!.Value, Tolerance);
        Assert.Equal(1_000_000, trigger.Maximum!.Value, Tolerance);

        // S = 0.4 * 500,000 + 0.6 * 800,000 = 680,000 <= 700,000: fires.
        Assert.True(trigger.Observe(1000, Ms(6)));
        Assert.Equal(680_000, trigger.Smoothed!.Value, Tolerance);
        Assert.Equal(4, trigger.Samples);
    }

    [Fact]
    public void Maximum_must_track_the_largest_smoothed_value()
    {
        var trigger = Trigger();
        trigger.Observe(1000, Ms(0));
        trigger.Observe(1000, Ms(2));   // C = S = 500,000
        trigger.Observe(1000, Ms(3));   // C = 1,000,000: S = 700,000
        trigger.Observe(1000, Ms(4));   // S = 820,000

        Assert.Equal(820_000, trigger.Maximum!.Value, Tolerance);
        trigger.Observe(1000, Ms(6));   // S = 0.4 * 500,000 + 0.6 * 820,000 = 692,000

        Assert.Equal(692_000, trigger.Smoothed!.Value, Tolerance);
        Assert.Equal(820_000, trigger.Maximum!.Value, Tolerance);
    }

    [Fact]
    public void Trigger_must_never_fire_before_the_minimum_observation_window()
    {
        var trigger = Trigger("mtcp.policies.client.throughput.min-observation-window = 10ms");
        double[] times = [0, 1, 2, 4, 6, 8];
        foreach (var time in times)
        {
            Assert.False(trigger.Observe(1000, Ms(time)), $"fired at {time} ms");
        }

        // S = 0.4 * 500,000 + 0.6 * 608,000 = 564,800, and the window has passed.
        Assert.True(trigger.Observe(1000, Ms(10)));
        Assert.Equal(564_800, trigger.Smoothed!.Value, Tolerance);
    }

    [Fact]
    public void Steady_throughput_must_never_fire()
    {
        var trigger = Trigger();
        for (var i = 0; i < 1000; i++)
        {
            Assert.False(trigger.Observe(1460, Ms(i * 0.5)));
        }
    }

    [Fact]
    public void Segments_at_the_same_instant_must_fold_into_the_next_sample()
    {
        var trigger = Trigger();
        trigger.Observe(1000, Ms(0));
        trigger.Observe(500, Ms(1));
        trigger.Observe(500, Ms(1));
        trigger.Observe(1000, Ms(2));

        // Second sample: the 500 bytes that arrived at 1 ms after the first sample, plus 1000: 1500 B / 1 ms.
        Assert.Equal(1_500_000, trigger.Current!.Value, Tolerance);
        Assert.Equal(2, trigger.Samples);
    }

    [Fact]
    public void Sample_interval_must_average_over_several_segments()
    {
        var trigger = Trigger("""
            mtcp.policies.client.throughput.min-observation-window = 0s
            mtcp.policies.client.throughput.sample-interval = 5ms
            """);
        for (var i = 0; i <= 4; i++)
        {
            trigger.Observe(1000, Ms(i));
        }

        Assert.Equal(0, trigger.Samples);
        trigger.Observe(1000, Ms(5));

        Assert.Equal(1, trigger.Samples);
        Assert.Equal(1_000_000, trigger.Current!.Value, Tolerance);
    }

    [Fact]
    public void Restart_must_forget_the_visit()
    {
        var trigger = Trigger();
        trigger.Observe(1000, Ms(0));
        trigger.Observe(1000, Ms(1));
        trigger.Restart();

        Assert.Null(trigger.Smoothed);
        Assert.Null(trigger.Maximum);
        Assert.False(trigger.Observe(1000, Ms(100)));
        Assert.Null(trigger.Smoothed);
    }
}

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

    [Fact]
    public void One_stalled_sample_must_fire_with_the_thesis_rule()
    {
        var trigger = Trigger();
        for (var i = 0; i <= 10; i++)
        {
            Assert.False(trigger.Observe(1000, Ms(i)));
        }

        // One sample at a fifth of the rate: S = 0.4 * 200,000 + 0.6 * 1,000,000 = 680,000 <= 700,000.
        Assert.True(trigger.Observe(1000, Ms(15)));
        Assert.Equal(1, trigger.SamplesBelowThreshold);
    }

    [Fact]
    public void Consecutive_samples_must_ride_out_a_stall_the_old_rate_recovers_from()
    {
        var trigger = Trigger("""
            mtcp.policies.client.throughput.min-observation-window = 0s
            mtcp.policies.client.throughput.consecutive-samples = 2
            """);
        for (var i = 0; i <= 10; i++)
        {
            Assert.False(trigger.Observe(1000, Ms(i)));
        }

        // The stalled sample: S = 680,000, below the threshold once.
        Assert.False(trigger.Observe(1000, Ms(15)));
        Assert.Equal(1, trigger.SamplesBelowThreshold);

        // Back at the old rate: S = 0.4 * 1,000,000 + 0.6 * 680,000 = 808,000, above it again.
        Assert.False(trigger.Observe(1000, Ms(16)));
        Assert.Equal(808_000, trigger.Smoothed!.Value, Tolerance);
        Assert.Equal(0, trigger.SamplesBelowThreshold);
        for (var i = 17; i <= 40; i++)
        {
            Assert.False(trigger.Observe(1000, Ms(i)), $"fired at {i} ms");
        }
    }

    [Fact]
    public void Consecutive_samples_must_still_fire_on_a_server_that_keeps_degrading()
    {
        var trigger = Trigger("""
            mtcp.policies.client.throughput.min-observation-window = 0s
            mtcp.policies.client.throughput.consecutive-samples = 3
            """);
        trigger.Observe(1000, Ms(0));
        trigger.Observe(1000, Ms(1));   // S = max = 1,000,000

        // Every segment at half the rate: S = 800,000, 680,000, 608,000, 564,800: below from the second on.
        Assert.False(trigger.Observe(1000, Ms(3)));
        Assert.False(trigger.Observe(1000, Ms(5)));
        Assert.Equal(1, trigger.SamplesBelowThreshold);
        Assert.False(trigger.Observe(1000, Ms(7)));
        Assert.Equal(2, trigger.SamplesBelowThreshold);
        Assert.True(trigger.Observe(1000, Ms(9)));
        Assert.Equal(564_800, trigger.Smoothed!.Value, Tolerance);
        Assert.EndsWith("(alpha 0.4, 5 samples, 3 in a row below)", trigger.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Consecutive_samples_must_wait_for_the_minimum_observation_window_too()
    {
        var trigger = Trigger("""
            mtcp.policies.client.throughput.min-observation-window = 10ms
            mtcp.policies.client.throughput.consecutive-samples = 2
            """);
        trigger.Observe(1000, Ms(0));
        trigger.Observe(1000, Ms(1));

        // Below the threshold at 5, 7 and 9 ms (S = 680,000, 608,000, 564,800), all inside the window.
        Assert.False(trigger.Observe(1000, Ms(3)));
        Assert.False(trigger.Observe(1000, Ms(5)));
        Assert.False(trigger.Observe(1000, Ms(7)));
        Assert.False(trigger.Observe(1000, Ms(9)));
        Assert.Equal(3, trigger.SamplesBelowThreshold);

        // The window has passed and the run below the threshold is long enough.
        Assert.True(trigger.Observe(1000, Ms(11)));
    }

    [Fact]
    public void Restart_must_forget_the_samples_below_the_threshold()
    {
        var trigger = Trigger("""
            mtcp.policies.client.throughput.min-observation-window = 0s
            mtcp.policies.client.throughput.consecutive-samples = 2
            """);
        trigger.Observe(1000, Ms(0));
        trigger.Observe(1000, Ms(1));
        trigger.Observe(1000, Ms(6));   // C = 200,000: S = 680,000, below once
        Assert.Equal(1, trigger.SamplesBelowThreshold);

        trigger.Restart();

        Assert.Equal(0, trigger.SamplesBelowThreshold);
    }

    [Fact]
    public void Samples_a_slow_reader_limited_must_be_left_out_and_never_fire()
    {
        // A relay whose client reads slowly: each 1000-byte read now takes 5 ms, 4 of them blocked writing to the
        // client. C would be 200,000 B/s (S 680,000 <= 700,000 at the first), but the reader, not the server, set it.
        var trigger = Trigger();
        trigger.Observe(1000, Ms(0));
        trigger.Observe(1000, Ms(1));
        trigger.Observe(1000, Ms(2));
        for (var at = 7; at <= 507; at += 5)
        {
            Assert.False(trigger.Observe(1000, Ms(at), readerWait: TimeSpan.FromMilliseconds(4)));
        }

        Assert.Equal(1_000_000, trigger.Smoothed!.Value, Tolerance);
        Assert.Equal(101, trigger.ReaderLimitedSamples);
        Assert.Equal(2, trigger.Samples);

        // The same rate with the reader never blocked: the server is slow, and the trigger fires.
        Assert.True(trigger.Observe(1000, Ms(512)));
        Assert.Contains("101 limited by the reader left out", trigger.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_sample_with_the_reader_blocked_less_than_the_reader_limited_fraction_must_count()
    {
        var trigger = Trigger("""
            mtcp.policies.client.throughput.min-observation-window = 0s
            mtcp.policies.client.throughput.reader-limited-fraction = 0.5
            """);
        trigger.Observe(1000, Ms(0));
        trigger.Observe(1000, Ms(1));

        // 2 ms of a 5 ms sample blocked on the reader, under half: the other 3 were spent waiting for the server, whose
        // drop to C = 200,000 B/s takes S to 680,000 <= 0.7 x 1,000,000.
        Assert.True(trigger.Observe(1000, Ms(6), readerWait: TimeSpan.FromMilliseconds(2)));

        Assert.Equal(200_000, trigger.Current!.Value, Tolerance);
        Assert.Equal(0, trigger.ReaderLimitedSamples);
    }
}

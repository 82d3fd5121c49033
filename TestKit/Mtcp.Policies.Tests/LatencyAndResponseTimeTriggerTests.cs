using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

[Trait("Category", "Policy")]
public sealed class LatencyAndResponseTimeTriggerTests
{
    private static readonly TimeSpan Srtt = TimeSpan.FromMilliseconds(10);

    private static LatencyTrigger Latency(string overrides = "") => new(Client("""
        mtcp.policies.client.latency.min-observation-window = 0s
        """ + "\n" + overrides).Latency);

    private static ResponseTimeTrigger ResponseTime(string overrides = "") => new(Client("""
        mtcp.policies.client.response-time.min-observation-window = 0s
        """ + "\n" + overrides).ResponseTime);

    [Fact]
    public void Latency_must_fire_after_n_consecutive_segments_later_than_k_srtt()
    {
        var trigger = Latency();

        // k = 4, n = 3: 41 ms is late, 40 ms is not.
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(41), Srtt, Ms(0)));
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(41), Srtt, Ms(41)));
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(40), Srtt, Ms(81)));
        Assert.Equal(0, trigger.ConsecutiveLate);
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(50), Srtt, Ms(131)));
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(50), Srtt, Ms(181)));
        Assert.True(trigger.Observe(TimeSpan.FromMilliseconds(50), Srtt, Ms(231)));
        Assert.Equal("3 segments in a row later than 4 x SRTT (10.0 ms), last delay 50.0 ms", trigger.Describe());
    }

    [Fact]
    public void Latency_without_an_srtt_sample_must_use_only_the_fixed_bound()
    {
        var relativeOnly = Latency("mtcp.policies.client.latency.consecutive-segments = 1");
        var withBound = Latency("""
            mtcp.policies.client.latency.consecutive-segments = 1
            mtcp.policies.client.latency.fixed-bound = 100ms
            """);

        Assert.False(relativeOnly.Observe(TimeSpan.FromSeconds(5), null, Ms(0)));
        Assert.False(withBound.Observe(TimeSpan.FromMilliseconds(100), null, Ms(0)));
        Assert.True(withBound.Observe(TimeSpan.FromMilliseconds(101), null, Ms(101)));
    }

    [Fact]
    public void Latency_must_not_fire_before_the_minimum_observation_window()
    {
        var trigger = Latency("""
            mtcp.policies.client.latency.min-observation-window = 1s
            mtcp.policies.client.latency.consecutive-segments = 1
            """);

        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(100), Srtt, Ms(0)));
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(100), Srtt, Ms(999)));
        Assert.True(trigger.Observe(TimeSpan.FromMilliseconds(100), Srtt, Ms(1000)));
    }

    [Fact]
    public void Response_time_must_fire_when_the_smoothed_value_doubles_its_baseline_for_n_requests()
    {
        var trigger = ResponseTime();
        var at = 0.0;
        bool Observe(double milliseconds)
        {
            at += milliseconds;
            return trigger.Observe(TimeSpan.FromMilliseconds(milliseconds), Ms(at));
        }

        // R = 10 ms, baseline 10 ms. Then 40 ms responses: R = 22, 29.2, 33.52 ms: slow from the first
        // (22 > 2 x 10), so the third fires.
        Assert.False(Observe(10));
        Assert.False(Observe(40));
        Assert.Equal(0.022, trigger.Smoothed!.Value, 9);
        Assert.False(Observe(40));
        Assert.True(Observe(40));
        Assert.Equal(0.010, trigger.Baseline!.Value, 9);
    }

    [Fact]
    public void Response_time_must_reset_its_count_on_a_fast_request()
    {
        var trigger = ResponseTime("""
            mtcp.policies.client.response-time.baseline-multiplier = 0
            mtcp.policies.client.response-time.fixed-bound = 100ms
            mtcp.policies.client.response-time.consecutive-requests = 2
            """);

        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(150), Ms(0)));
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(90), Ms(200)));
        Assert.False(trigger.Observe(TimeSpan.FromMilliseconds(150), Ms(400)));
        Assert.True(trigger.Observe(TimeSpan.FromMilliseconds(150), Ms(600)));
    }

    [Fact]
    public void Response_time_must_not_blame_a_fast_server_below_the_baseline_floor()
    {
        var floored = ResponseTime();
        var unfloored = ResponseTime("mtcp.policies.client.response-time.baseline-floor = 0ms");

        // 0.2 ms answers, then 2 ms ones (ten times the baseline, a busy moment on a fast service): well under
        // 2 x the 5 ms floor, so only the trigger without a floor fires.
        var firedFloored = false;
        var firedUnfloored = false;
        for (var request = 0; request < 20; request++)
        {
            var responseTime = TimeSpan.FromMilliseconds(request < 5 ? 0.2 : 2);
            firedFloored |= floored.Observe(responseTime, Ms(request * 10));
            firedUnfloored |= unfloored.Observe(responseTime, Ms(request * 10));
        }

        Assert.False(firedFloored);
        Assert.Equal(0, floored.ConsecutiveSlow);
        Assert.True(firedUnfloored);
    }
}

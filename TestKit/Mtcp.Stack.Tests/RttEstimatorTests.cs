namespace Mtcp.Stack.Tests;

[Trait("Category", "Stack")]
public sealed class RttEstimatorTests
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    private static RttEstimator Create() => new(TimeSpan.FromSeconds(1), 200 * Ms, TimeSpan.FromSeconds(60), Ms);

    [Fact]
    public void Estimator_must_start_at_the_initial_rto_without_samples()
    {
        var rtt = Create();
        Assert.Equal(TimeSpan.FromSeconds(1), rtt.Rto);
        Assert.Null(rtt.SmoothedRtt);
    }

    [Fact]
    public void First_sample_must_set_srtt_to_r_and_rttvar_to_half_r()
    {
        var rtt = Create();
        rtt.OnSample(100 * Ms);
        Assert.Equal(100 * Ms, rtt.SmoothedRtt);
        Assert.Equal(50 * Ms, rtt.RttVariance);
        Assert.Equal(300 * Ms, rtt.Rto); // SRTT + 4 * RTTVAR (RFC 6298 §2.2)
    }

    [Fact]
    public void Later_samples_must_use_gains_one_eighth_and_one_quarter()
    {
        var rtt = Create();
        rtt.OnSample(100 * Ms);
        rtt.OnSample(200 * Ms);

        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 (RFC 6298 §2.3).
        Assert.Equal(TimeSpan.FromMilliseconds(62.5), rtt.RttVariance);
        Assert.Equal(TimeSpan.FromMilliseconds(112.5), rtt.SmoothedRtt);
        Assert.Equal(TimeSpan.FromMilliseconds(362.5), rtt.Rto);
    }

    [Fact]
    public void Rto_must_not_fall_below_the_minimum()
    {
        var rtt = Create();
        for (var i = 0; i < 50; i++)
        {
            rtt.OnSample(Ms);
        }

        Assert.Equal(200 * Ms, rtt.Rto);
    }

    [Fact]
    public void Granularity_must_bound_the_variance_term()
    {
        var rtt = new RttEstimator(TimeSpan.FromSeconds(1), Ms, TimeSpan.FromSeconds(60), 10 * Ms);
        for (var i = 0; i < 100; i++)
        {
            rtt.OnSample(50 * Ms);
        }

        Assert.Equal(60 * Ms, rtt.Rto); // SRTT + max(G, 4 * RTTVAR) with RTTVAR -> 0
    }

    [Fact]
    public void Timeout_must_double_the_rto_up_to_the_maximum()
    {
        var rtt = Create();
        rtt.OnTimeout();
        Assert.Equal(TimeSpan.FromSeconds(2), rtt.Rto);
        for (var i = 0; i < 10; i++)
        {
            rtt.OnTimeout();
        }

        Assert.Equal(TimeSpan.FromSeconds(60), rtt.Rto);
        Assert.Equal(11, rtt.BackoffCount);
    }

    [Fact]
    public void New_sample_must_clear_the_backoff()
    {
        var rtt = Create();
        rtt.OnTimeout();
        rtt.OnTimeout();
        rtt.OnSample(100 * Ms);
        Assert.Equal(0, rtt.BackoffCount);
        Assert.Equal(300 * Ms, rtt.Rto);
    }

    [Fact]
    public void Handshake_timeout_without_a_sample_must_start_data_at_three_seconds()
    {
        var rtt = Create();
        rtt.OnTimeout();
        rtt.OnHandshakeTimedOut();
        Assert.Equal(TimeSpan.FromSeconds(3), rtt.Rto); // RFC 6298 §5.7
        Assert.Equal(0, rtt.BackoffCount);
    }

    [Fact]
    public void Handshake_timeout_must_not_override_a_measured_rtt()
    {
        var rtt = Create();
        rtt.OnSample(100 * Ms);
        rtt.OnHandshakeTimedOut();
        Assert.Equal(300 * Ms, rtt.Rto);
    }
}

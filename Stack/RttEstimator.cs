namespace Mtcp.Stack;

/// <summary>
/// Retransmission timeout per RFC 6298: SRTT and RTTVAR from samples (§2), bounds (§2.4, §2.5) and exponential
/// backoff (§5.5). Karn's algorithm (§3) is the caller's part: it must not feed samples from retransmitted segments.
/// A backed-off RTO stays backed off until the next valid sample (§5.7 with Karn).
/// </summary>
internal sealed class RttEstimator
{
    private readonly TimeSpan _min;
    private readonly TimeSpan _max;
    private readonly TimeSpan _granularity;
    private TimeSpan _baseRto;

    public RttEstimator(TimeSpan initial, TimeSpan min, TimeSpan max, TimeSpan granularity)
    {
        _min = min;
        _max = max;
        _granularity = granularity;
        _baseRto = Clamp(initial);
        Rto = _baseRto;
    }

    /// <summary>SRTT, or null before the first sample.</summary>
    public TimeSpan? SmoothedRtt { get; private set; }

    /// <summary>RTTVAR, or null before the first sample.</summary>
    public TimeSpan? RttVariance { get; private set; }

    /// <summary>The timeout to arm now, backoff included.</summary>
    public TimeSpan Rto { get; private set; }

    /// <summary>How many times the RTO was doubled since the last sample.</summary>
    public int BackoffCount { get; private set; }

    /// <summary>Feeds one measurement R (RFC 6298 §2.2 for the first, §2.3 for later ones) and clears backoff.</summary>
    public void OnSample(TimeSpan rtt)
    {
        if (rtt < TimeSpan.Zero)
        {
            rtt = TimeSpan.Zero;
        }

        if (SmoothedRtt is not { } srtt || RttVariance is not { } rttvar)
        {
            SmoothedRtt = rtt;
            RttVariance = rtt / 2;
        }
        else
        {
            // §2.3: RTTVAR uses the old SRTT, so update it first. Beta = 1/4, alpha = 1/8.
            var deviation = (srtt - rtt).Duration();
            RttVariance = TimeSpan.FromTicks(((3 * rttvar.Ticks) + deviation.Ticks) / 4);
            SmoothedRtt = TimeSpan.FromTicks(((7 * srtt.Ticks) + rtt.Ticks) / 8);
        }

        var variance = TimeSpan.FromTicks(4 * RttVariance.Value.Ticks);
        _baseRto = Clamp(SmoothedRtt.Value + (variance > _granularity ? variance : _granularity));
        BackoffCount = 0;
        Rto = _baseRto;
    }

    /// <summary>
    /// RFC 6298 §5.7: when the SYN or SYN,ACK timed out, data transfer starts with an RTO of at least 3 seconds
    /// (within the configured maximum) unless an RTT sample already exists.
    /// </summary>
    public void OnHandshakeTimedOut()
    {
        if (SmoothedRtt is not null)
        {
            return;
        }

        var threeSeconds = TimeSpan.FromSeconds(3);
        _baseRto = Clamp(threeSeconds > _baseRto ? threeSeconds : _baseRto);
        BackoffCount = 0;
        Rto = _baseRto;
    }

    /// <summary>The timer expired: double the RTO, capped at the maximum (RFC 6298 §5.5).</summary>
    public void OnTimeout()
    {
        BackoffCount++;
        var doubled = Rto + Rto;
        Rto = doubled > _max ? _max : doubled;
    }

    private TimeSpan Clamp(TimeSpan rto) => rto < _min ? _min : rto > _max ? _max : rto;
}

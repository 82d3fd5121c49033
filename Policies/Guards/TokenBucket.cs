using Mtcp.Stack;

namespace Mtcp.Policies;

/// <summary>
/// A token bucket over virtual time: <see cref="Burst"/> tokens at most, refilled at
/// <see cref="RatePerSecond"/>. It starts full. Time only moves forward: an earlier instant refills nothing.
/// </summary>
public sealed class TokenBucket
{
    private double _tokens;
    private Instant _refilledAt;

    public TokenBucket(double ratePerSecond, int burst, Instant start)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burst);
        RatePerSecond = ratePerSecond;
        Burst = burst;
        _tokens = burst;
        _refilledAt = start;
    }

    public double RatePerSecond { get; }

    public int Burst { get; }

    /// <summary>Whole tokens available at <paramref name="at"/>.</summary>
    public int Available(Instant at)
    {
        Refill(at);
        return (int)Math.Floor(_tokens);
    }

    /// <summary>Takes one token if there is one at <paramref name="at"/>.</summary>
    public bool TryTake(Instant at)
    {
        Refill(at);
        if (_tokens < 1)
        {
            return false;
        }

        _tokens -= 1;
        return true;
    }

    private void Refill(Instant at)
    {
        if (at <= _refilledAt)
        {
            return;
        }

        _tokens = Math.Min(Burst, _tokens + ((at - _refilledAt).TotalSeconds * RatePerSecond));
        _refilledAt = at;
    }
}

using System.Globalization;
using Mtcp.Stack;

namespace Mtcp.Policies;

/// <summary>
/// The response-time trigger of thesis 3.4 (2) for one connection's current visit. Each completed request
/// updates the smoothed response time R = α·r + (1-α)·R (the first r initialises R); the baseline is the
/// smallest R of the visit. A request is slow when r exceeds the fixed bound (when set) or R exceeds
/// multiplier × max(baseline, floor) (when the multiplier is set); the trigger fires after n slow requests in a row,
/// once the minimum observation window has passed. The floor keeps a fast service's scheduling noise (a 0.1 ms
/// baseline doubled by one busy moment) from reading as a degradation.
/// </summary>
public sealed class ResponseTimeTrigger
{
    private readonly ResponseTimeSettings _settings;
    private Instant? _visitStart;
    private TimeSpan _lastResponse;

    public ResponseTimeTrigger(ResponseTimeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings;
    }

    /// <summary>R in seconds; null before the first request of the visit.</summary>
    public double? Smoothed { get; private set; }

    /// <summary>The smallest R of the visit, seconds.</summary>
    public double? Baseline { get; private set; }

    public int ConsecutiveSlow { get; private set; }

    public bool Observe(TimeSpan responseTime, Instant at)
    {
        _visitStart ??= at;
        _lastResponse = responseTime;
        var sample = responseTime.TotalSeconds;
        var smoothed = Smoothed is { } previous ? (_settings.Alpha * sample) + ((1 - _settings.Alpha) * previous) : sample;
        Smoothed = smoothed;
        Baseline = Math.Min(Baseline ?? smoothed, smoothed);

        var slowByBound = _settings.FixedBound > TimeSpan.Zero && responseTime > _settings.FixedBound;
        var slowByBaseline = _settings.BaselineMultiplier > 0 && smoothed > _settings.BaselineMultiplier * ComparedBaseline;
        ConsecutiveSlow = slowByBound || slowByBaseline ? ConsecutiveSlow + 1 : 0;

        return ConsecutiveSlow >= _settings.ConsecutiveRequests && at - _visitStart.Value >= _settings.MinObservationWindow;
    }

    /// <summary>What R is compared with: the baseline, or the floor when the baseline is below it; seconds.</summary>
    private double ComparedBaseline => Math.Max(Baseline ?? 0, _settings.BaselineFloor.TotalSeconds);

    public void Restart()
    {
        _visitStart = null;
        Smoothed = null;
        Baseline = null;
        ConsecutiveSlow = 0;
    }

    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"{ConsecutiveSlow} slow requests in a row: last {_lastResponse.TotalMilliseconds:F1} ms, smoothed {Smoothed * 1000:F1} ms, baseline {Baseline * 1000:F1} ms{(ComparedBaseline > Baseline ? $" (floor {_settings.BaselineFloor.TotalMilliseconds:F1} ms)" : string.Empty)}");
}

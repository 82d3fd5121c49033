using System.Globalization;
using Mtcp.Stack;

namespace Mtcp.Policies;

/// <summary>
/// The latency trigger of thesis 3.4 (1) for one connection's current visit: a segment is late when the
/// delay since the previous in-sequence segment exceeds k·SRTT (when k &gt; 0 and an SRTT is known) or the
/// fixed bound (when set); the trigger fires after n late segments in a row, once the minimum observation
/// window has passed. An in-time segment resets the count.
/// </summary>
public sealed class LatencyTrigger
{
    private readonly LatencySettings _settings;
    private Instant? _visitStart;
    private TimeSpan _lastDelay;
    private TimeSpan? _lastSmoothedRtt;

    public LatencyTrigger(LatencySettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings;
    }

    /// <summary>Late segments in a row.</summary>
    public int ConsecutiveLate { get; private set; }

    public bool Observe(TimeSpan delay, TimeSpan? smoothedRtt, Instant at)
    {
        _visitStart ??= at;
        _lastDelay = delay;
        _lastSmoothedRtt = smoothedRtt;
        var lateBySrtt = _settings.SrttMultiplier > 0 && smoothedRtt is { } srtt && delay > srtt * _settings.SrttMultiplier;
        var lateByBound = _settings.FixedBound > TimeSpan.Zero && delay > _settings.FixedBound;
        ConsecutiveLate = lateBySrtt || lateByBound ? ConsecutiveLate + 1 : 0;

        return ConsecutiveLate >= _settings.ConsecutiveSegments && at - _visitStart.Value >= _settings.MinObservationWindow;
    }

    public void Restart()
    {
        _visitStart = null;
        ConsecutiveLate = 0;
    }

    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"{ConsecutiveLate} segments in a row later than {Bound()}, last delay {_lastDelay.TotalMilliseconds:F1} ms");

    private string Bound()
    {
        var relative = _settings.SrttMultiplier > 0 && _lastSmoothedRtt is { } srtt
            ? string.Create(CultureInfo.InvariantCulture, $"{_settings.SrttMultiplier} x SRTT ({srtt.TotalMilliseconds:F1} ms)")
            : null;
        var fixedBound = _settings.FixedBound > TimeSpan.Zero
            ? string.Create(CultureInfo.InvariantCulture, $"{_settings.FixedBound.TotalMilliseconds:F1} ms")
            : null;
        return relative is not null && fixedBound is not null ? $"{relative} or {fixedBound}" : relative ?? fixedBound ?? "no bound";
    }
}

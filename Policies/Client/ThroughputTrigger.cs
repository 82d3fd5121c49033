using System.Globalization;
using Mtcp.Stack;

namespace Mtcp.Policies;

/// <summary>
/// The smoothed-throughput trigger of thesis 5.3.2 for one connection's current visit to a server.
/// <para>
/// C (current throughput) is the bytes received since the previous sample divided by the time since that
/// sample, in bytes per second: the thesis computes it "every time a new packet is received", so with
/// <see cref="ThroughputSettings.SampleInterval"/> = 0 a sample is one segment and its inter-arrival time.
/// Segments received at the same instant as the previous sample (or within the sample interval) are folded
/// into the next sample, since a rate over zero time means nothing. The first segment only starts the clock;
/// the first C initialises S. Then S = α·C + (1-α)·S, max = the largest S, and the trigger fires when
/// S ≤ ratio·max once the minimum observation window has passed.
/// </para>
/// <para>
/// With <see cref="ThroughputSettings.ConsecutiveSamples"/> = n &gt; 1 it fires only once S ≤ ratio·max has held on n
/// samples in a row (the thesis fires on the first, n = 1). With α = 0.4 and ratio 0.7 one sample below 0.25·max
/// is enough to reach the threshold (0.6·max + 0.4·C ≤ 0.7·max), so a single stall of the sending host looks like
/// a degraded server; after such a stall S climbs back above the threshold within a sample or two at the old
/// rate, while a degrading server keeps S below it.
/// </para>
/// <para>
/// A slow reader is not a slow server: when the receiving side spent at least
/// <see cref="ThroughputSettings.ReaderLimitedFraction"/> of a sample's time blocked passing bytes on to its own reader
/// (a relay's write to its client; the observations' reader wait), its receive window, not the server, set the rate.
/// Such a sample says nothing of the server: it is dropped (counted in <see cref="ReaderLimitedSamples"/>), S and max
/// stay as they were, and the next sample starts from it. A client's pause before its next request (its user thinking,
/// <see cref="RequestBoundaries"/>) comes in as reader wait too: the client, not the server, set that pace.
/// </para>
/// </summary>
public sealed class ThroughputTrigger
{
    private readonly ThroughputSettings _settings;
    private Instant? _visitStart;
    private Instant _sampleStart;
    private long _pendingBytes;
    private TimeSpan _pendingReaderWait;

    public ThroughputTrigger(ThroughputSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings;
    }

    /// <summary>C of the latest sample, bytes per second; null before the first sample.</summary>
    public double? Current { get; private set; }

    /// <summary>S, bytes per second; null before the first sample.</summary>
    public double? Smoothed { get; private set; }

    /// <summary>The largest S of this visit, bytes per second; null before the first sample.</summary>
    public double? Maximum { get; private set; }

    /// <summary>Samples taken in this visit.</summary>
    public int Samples { get; private set; }

    /// <summary>The latest samples in a row with S ≤ ratio·max; 0 after a sample above it.</summary>
    public int SamplesBelowThreshold { get; private set; }

    /// <summary>Samples of this visit dropped because the reader, not the server, limited them.</summary>
    public int ReaderLimitedSamples { get; private set; }

    /// <summary>
    /// Feeds one received segment (or read), with the time the receiver was blocked on its own reader since the previous
    /// one; true when the trigger fires.
    /// </summary>
    public bool Observe(int bytes, Instant at, TimeSpan readerWait = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(readerWait, TimeSpan.Zero);
        if (_visitStart is not { } visitStart)
        {
            _visitStart = at;
            _sampleStart = at;
            return false;
        }

        _pendingBytes += bytes;
        _pendingReaderWait += readerWait;
        var elapsed = at - _sampleStart;
        if (elapsed <= TimeSpan.Zero || elapsed < _settings.SampleInterval)
        {
            return false;
        }

        var readerLimited = _pendingReaderWait >= elapsed * _settings.ReaderLimitedFraction;
        var current = _pendingBytes / elapsed.TotalSeconds;
        _pendingBytes = 0;
        _pendingReaderWait = TimeSpan.Zero;
        _sampleStart = at;
        if (readerLimited)
        {
            ReaderLimitedSamples++;
            return false;
        }

        Current = current;
        var smoothed = Smoothed is { } previous ? (_settings.Alpha * current) + ((1 - _settings.Alpha) * previous) : current;
        Smoothed = smoothed;
        Maximum = Math.Max(Maximum ?? smoothed, smoothed);
        Samples++;
        SamplesBelowThreshold = smoothed <= _settings.TriggerRatio * Maximum.Value ? SamplesBelowThreshold + 1 : 0;

        return at - visitStart >= _settings.MinObservationWindow && SamplesBelowThreshold >= _settings.ConsecutiveSamples;
    }

    /// <summary>Starts a new visit: after a migration, or after a decision, every measurement starts again.</summary>
    public void Restart()
    {
        _visitStart = null;
        _pendingBytes = 0;
        _pendingReaderWait = TimeSpan.Zero;
        ReaderLimitedSamples = 0;
        Current = null;
        Smoothed = null;
        Maximum = null;
        Samples = 0;
        SamplesBelowThreshold = 0;
    }

    /// <summary>The evidence logged with a decision.</summary>
    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"smoothed throughput {Smoothed:F0} B/s <= {_settings.TriggerRatio} x max {Maximum:F0} B/s (alpha {_settings.Alpha}, {Samples} samples{(_settings.ConsecutiveSamples > 1 ? $", {SamplesBelowThreshold} in a row below" : string.Empty)}{(ReaderLimitedSamples > 0 ? $", {ReaderLimitedSamples} limited by the reader left out" : string.Empty)})");
}

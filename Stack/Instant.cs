using System.Globalization;

namespace Mtcp.Stack;

/// <summary>
/// A point in time in microseconds since an arbitrary epoch chosen by the driver. The engine never reads
/// a clock: every time it needs comes in as an <see cref="Instant"/> parameter, which keeps it deterministic.
/// </summary>
public readonly record struct Instant(long Microseconds) : IComparable<Instant>
{
    public static Instant Zero => default;

    public static Instant FromMilliseconds(long milliseconds) => new(milliseconds * 1000);

    public static Instant operator +(Instant instant, TimeSpan span) => new(instant.Microseconds + (span.Ticks / TimeSpan.TicksPerMicrosecond));

    public static Instant operator -(Instant instant, TimeSpan span) => new(instant.Microseconds - (span.Ticks / TimeSpan.TicksPerMicrosecond));

    public static TimeSpan operator -(Instant a, Instant b) => TimeSpan.FromTicks((a.Microseconds - b.Microseconds) * TimeSpan.TicksPerMicrosecond);

    public static bool operator <(Instant a, Instant b) => a.Microseconds < b.Microseconds;

    public static bool operator >(Instant a, Instant b) => a.Microseconds > b.Microseconds;

    public static bool operator <=(Instant a, Instant b) => a.Microseconds <= b.Microseconds;

    public static bool operator >=(Instant a, Instant b) => a.Microseconds >= b.Microseconds;

    public static Instant Min(Instant a, Instant b) => a <= b ? a : b;

    public static Instant Max(Instant a, Instant b) => a >= b ? a : b;

    /// <summary>The earlier of two optional deadlines (null: no deadline), as a PollTimeout combines its timers.</summary>
    public static Instant? Earliest(Instant? a, Instant? b) => a is not { } x ? b : b is not { } y ? x : Min(x, y);

    public int CompareTo(Instant other) => Microseconds.CompareTo(other.Microseconds);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Microseconds / 1000.0:F3}ms");
}

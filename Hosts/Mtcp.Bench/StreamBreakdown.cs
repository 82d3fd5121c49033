namespace Mtcp.Bench;

/// <summary>A visit of the download to a server, in seconds since connecting: when it started and when the server began to degrade.</summary>
internal readonly record struct VisitTimes(double Started, double? DegradedFrom);

/// <summary>
/// Where one download's time went, against a reference rate (the configured rate of an undegraded server): every second
/// beyond <c>length / rate</c> is lost, and is charged to the span it fell in. A span's loss is its duration less the time
/// the reference rate needed for the bytes received in it.
/// </summary>
/// <param name="Visits">Servers the connection was on, the first one included.</param>
/// <param name="EarlyMigrations">Migrations decided while the server had not begun to degrade (host stalls taken for degradation).</param>
/// <param name="DegradedSeconds">Time on servers after they began to degrade, until the decision to leave (or the end).</param>
/// <param name="MeanDetectionMs">Mean time from a server's degradation to the decision to leave it, over the visits left after degrading.</param>
/// <param name="MigratingSeconds">Time from each decision until the next server started serving.</param>
/// <param name="LostSeconds">Download time less <c>length / rate</c>.</param>
/// <param name="LostDegradedSeconds">The part of the loss within the degraded spans.</param>
/// <param name="LostMigratingSeconds">The part of the loss within the migrating spans.</param>
/// <param name="AfterLastMigrationSeconds">Time from the start of the last visit to the last byte (the whole download without migration).</param>
internal sealed record StreamBreakdown(
    int Visits,
    int EarlyMigrations,
    double DegradedSeconds,
    double MeanDetectionMs,
    double MigratingSeconds,
    double LostSeconds,
    double LostDegradedSeconds,
    double LostMigratingSeconds,
    double AfterLastMigrationSeconds)
{
    /// <summary>The loss outside degraded and migrating spans: connecting, host stalls and timer lateness on undegraded servers.</summary>
    public double LostOtherSeconds => LostSeconds - LostDegradedSeconds - LostMigratingSeconds;

    /// <param name="visits">Visits in the order they started.</param>
    /// <param name="decisions">Times the policy's decisions were carried out, in order.</param>
    /// <param name="times">Time of every read, in order.</param>
    /// <param name="offsets">Bytes received by each read's time.</param>
    /// <param name="seconds">Time of the last byte.</param>
    /// <param name="bytesPerSecond">The reference rate.</param>
    public static StreamBreakdown Of(IReadOnlyList<VisitTimes> visits, IReadOnlyList<double> decisions, IReadOnlyList<double> times, IReadOnlyList<long> offsets, double seconds, double bytesPerSecond)
    {
        double Lost(double from, double to) => Math.Max(0, to - from) - ((ReceivedBy(times, offsets, to) - ReceivedBy(times, offsets, from)) / bytesPerSecond);

        double degraded = 0, lostDegraded = 0, migrating = 0, lostMigrating = 0, detection = 0;
        int detected = 0, early = 0;
        for (var i = 0; i < visits.Count; i++)
        {
            var visit = visits[i];
            var next = i + 1 < visits.Count ? visits[i + 1].Started : (double?)null;

            // The visit ends with the last decision before the next server took over (an earlier one may have failed).
            var decision = next is { } nextStart ? decisions.LastOrDefault(d => d >= visit.Started && d <= nextStart, double.NaN) : double.NaN;
            var end = !double.IsNaN(decision) ? decision : next ?? seconds;
            if (visit.DegradedFrom is { } onset && onset < end)
            {
                degraded += end - onset;
                lostDegraded += Lost(onset, end);
                if (!double.IsNaN(decision))
                {
                    detection += decision - onset;
                    detected++;
                }
            }
            else if (!double.IsNaN(decision))
            {
                early++;
            }

            if (next is { } resumed)
            {
                migrating += resumed - end;
                lostMigrating += Lost(end, resumed);
            }
        }

        var length = offsets.Count > 0 ? offsets[^1] : 0;
        return new StreamBreakdown(
            visits.Count,
            early,
            degraded,
            detected > 0 ? detection / detected * 1000 : double.NaN,
            migrating,
            seconds - (length / bytesPerSecond),
            lostDegraded,
            lostMigrating,
            visits.Count > 0 ? seconds - visits[^1].Started : seconds);
    }

    /// <summary>Bytes received by <paramref name="at"/>: the offset of the last read at or before it.</summary>
    private static long ReceivedBy(IReadOnlyList<double> times, IReadOnlyList<long> offsets, double at)
    {
        int low = 0, high = times.Count - 1, found = -1;
        while (low <= high)
        {
            var middle = (low + high) / 2;
            if (times[middle] <= at)
            {
                found = middle;
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }

        return found < 0 ? 0 : offsets[found];
    }
}

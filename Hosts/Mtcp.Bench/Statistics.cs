namespace Mtcp.Bench;

/// <summary>Summaries the benchmarks report.</summary>
internal static class Statistics
{
    /// <summary>The median (the mean of the two middle values for an even count); NaN for none.</summary>
    public static double Median(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    /// <summary>The nearest-rank percentile (the smallest value with at least <paramref name="quantile"/> of the values at or below it); NaN for none.</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double quantile)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(quantile * sorted.Length) - 1)];
    }
}

using ScottPlot;

namespace Mtcp.Bench;

/// <summary>The failover benchmark's kills: the time from each SIGKILL to the client's next new byte, one colour per failure detector setting.</summary>
internal static class FailoverPlot
{
    private const int Width = 1000;
    private const int Height = 560;

    /// <summary>Writes <paramref name="pathWithoutExtension"/>.png.</summary>
    public static void Save(string pathWithoutExtension, IReadOnlyList<FailoverSeries> series)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < series.Count; i++)
        {
            if (series[i].Kills.Count == 0)
            {
                continue;
            }

            var survived = series[i].Kills.Where(k => k.Survived).ToArray();
            var points = plot.Add.ScatterPoints(survived.Select(k => (double)k.Index).ToArray(), survived.Select(k => k.FailoverMs).ToArray(), palette.GetColor(i));
            points.MarkerSize = 9;
            points.LegendText = $"{series[i].Name}: p50 {series[i].FailoverP50Ms:F0} ms";
            var median = plot.Add.HorizontalLine(series[i].FailoverP50Ms, color: palette.GetColor(i));
            median.LinePattern = LinePattern.Dashed;
        }

        plot.Title("SIGKILL of the serving node: time to the client's next new byte (buddy replication)");
        plot.XLabel("kill");
        plot.YLabel("ms from SIGKILL to the next new byte");
        plot.ShowLegend(Alignment.UpperRight);
        var highest = series.SelectMany(s => s.Kills).Where(k => k.Survived).Select(k => k.FailoverMs).DefaultIfEmpty(1).Max();
        plot.Axes.SetLimitsY(0, highest * 1.25);
        plot.SavePng(pathWithoutExtension + ".png", Width, Height);
    }
}

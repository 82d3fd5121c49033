using ScottPlot;

namespace Mtcp.Bench;

/// <summary>The scale benchmark's migration phase: migrations completed per second and the three processes' RSS, one colour per N.</summary>
internal static class ScalePlot
{
    private const int Width = 1000;
    private const int Height = 640;

    /// <summary>Writes <paramref name="pathWithoutExtension"/>.png and .svg.</summary>
    public static void Save(string pathWithoutExtension, IReadOnlyList<ScaleRow> rows)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            var rate = plot.Add.ScatterLine(
                Enumerable.Range(0, row.MigrationsPerSecondSeries.Length).Select(s => s + 0.5).ToArray(),
                row.MigrationsPerSecondSeries.Select(count => (double)count).ToArray(),
                palette.GetColor(i));
            rate.LineWidth = 2;
            rate.LegendText = $"N {row.Connections}: migrations/s";

            var memory = plot.Add.ScatterLine(
                row.RssSeries.Select(sample => sample.Seconds).ToArray(),
                row.RssSeries.Select(sample => sample.Server1MiB + sample.Server2MiB + sample.ClientMiB).ToArray(),
                palette.GetColor(i));
            memory.LinePattern = LinePattern.Dashed;
            memory.Axes.YAxis = plot.Axes.Right;
            memory.LegendText = $"N {row.Connections}: RSS of the three processes (MiB, right)";
        }

        plot.Title("Migrations back and forth between two nodes");
        plot.XLabel("time since the migrations began (s)");
        plot.YLabel("migrations completed per second");
        plot.Axes.Right.Label.Text = "RSS, nodes and client (MiB)";
        plot.ShowLegend(Alignment.LowerRight);
        plot.Axes.SetLimitsY(0, Math.Max(1, rows.SelectMany(r => r.MigrationsPerSecondSeries).DefaultIfEmpty(0).Max()) * 1.1);
        plot.Axes.SetLimitsY(0, Math.Max(1, rows.SelectMany(r => r.RssSeries).Select(s => s.Server1MiB + s.Server2MiB + s.ClientMiB).DefaultIfEmpty(0).Max()) * 1.1, plot.Axes.Right);
        plot.SavePng(pathWithoutExtension + ".png", Width, Height);
        plot.SaveSvg(pathWithoutExtension + ".svg", Width, Height);
    }
}

using ScottPlot;

namespace Mtcp.Bench;

/// <summary>Fig. 5.4 of the thesis: the relative sequence number the client received against time, one line per run.</summary>
internal static class StreamPlot
{
    private const int Width = 1000;
    private const int Height = 640;

    /// <summary>Writes <paramref name="pathWithoutExtension"/>.png and .svg.</summary>
    public static void Save(string pathWithoutExtension, string title, IReadOnlyList<StreamRunResult> runs, Func<StreamRunResult, string> label)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var kilobytes = runs.Count > 0 && runs[0].StreamBytes < 4L << 20;
        for (var i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            var median = run.Median;
            var ys = median.TraceBytes.Select(b => kilobytes ? b / 1024.0 : b / 1048576.0).ToArray();
            var line = plot.Add.ScatterLine(median.TraceSeconds, ys, palette.GetColor(i));
            line.LineWidth = 2;
            line.LegendText = $"{label(run)}: {median.FractionOfBest:P0} of best, {median.Migrations} migrations";
            if (!run.Degrading)
            {
                line.LinePattern = LinePattern.Dashed;
            }
        }

        plot.Title(title);
        plot.XLabel("time since connecting (s)");
        plot.YLabel(kilobytes ? "relative sequence number (KB)" : "relative sequence number (MB)");
        plot.ShowLegend(Alignment.LowerRight);
        plot.Axes.SetLimitsY(0, runs.Count > 0 ? runs.Max(r => r.StreamBytes) / (kilobytes ? 1024.0 : 1048576.0) * 1.03 : 1);
        plot.SavePng(pathWithoutExtension + ".png", Width, Height);
        plot.SaveSvg(pathWithoutExtension + ".svg", Width, Height);
    }
}

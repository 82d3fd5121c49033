using ScottPlot;

namespace Mtcp.Bench;

/// <summary>The loss benchmark: goodput of MTCP and kernel TCP against the loss rate, and their RTOs per MB on the right axis.</summary>
internal static class LossPlot
{
    private const int Width = 1000;
    private const int Height = 640;

    /// <summary>Writes <paramref name="pathWithoutExtension"/>.png and .svg.</summary>
    public static void Save(string pathWithoutExtension, IReadOnlyList<LossRow> rows)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var loss = rows.Select(r => r.LossPercent).ToArray();
        var series = new (string Name, Func<LossRow, double> Goodput, Func<LossRow, double> Timeouts)[]
        {
            ("MTCP", r => r.MtcpMBps, r => r.MtcpRtoPerMB),
            ("kernel TCP", r => r.KernelTcpMBps, r => r.KernelRtoPerMB),
        };
        for (var i = 0; i < series.Length; i++)
        {
            var goodput = plot.Add.Scatter(loss, rows.Select(series[i].Goodput).ToArray(), palette.GetColor(i));
            goodput.LineWidth = 2;
            goodput.LegendText = $"{series[i].Name}: goodput (MB/s)";

            var timeouts = plot.Add.Scatter(loss, rows.Select(series[i].Timeouts).ToArray(), palette.GetColor(i));
            timeouts.LinePattern = LinePattern.Dashed;
            timeouts.Axes.YAxis = plot.Axes.Right;
            timeouts.LegendText = $"{series[i].Name}: RTOs per MB (right)";
        }

        plot.Title("One connection across a veth pair with random loss both ways");
        plot.XLabel("packets dropped in each direction (%)");
        plot.YLabel("goodput (MB/s, median)");
        plot.Axes.Right.Label.Text = "retransmission timeouts per MB";
        plot.ShowLegend(Alignment.UpperRight);
        plot.Axes.SetLimitsY(0, Math.Max(1, rows.Max(r => Math.Max(r.MtcpMBps, r.KernelTcpMBps))) * 1.1);
        plot.Axes.SetLimitsY(0, Math.Max(1, rows.Max(r => Math.Max(r.MtcpRtoPerMB, r.KernelRtoPerMB))) * 1.1, plot.Axes.Right);
        plot.SavePng(pathWithoutExtension + ".png", Width, Height);
        plot.SaveSvg(pathWithoutExtension + ".svg", Width, Height);
    }
}

using Mtcp.Actors.Diagnostics;

namespace Mtcp.Actors.Tests.Diagnostics;

/// <summary>The rate limit of refusal lines, on explicit time: at most one line per class per interval, nothing lost from the counts.</summary>
[Trait("Category", "Actors")]
public sealed class RefusalSummaryTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    [Fact]
    public void First_refusal_must_be_written_at_once_with_its_detail()
    {
        var summary = new RefusalSummary(Interval);

        var line = summary.Record(RefusalClass.MigrationRefused, 1, "endpoint A: refused", TimeSpan.Zero);

        Assert.Equal("migration-refused: endpoint A: refused (more of this kind are summarised at most every 10 s)", line);
        Assert.Empty(summary.Flush(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void A_flood_must_give_at_most_one_line_per_class_per_interval_and_count_every_refusal()
    {
        var summary = new RefusalSummary(Interval);
        var lines = new List<(TimeSpan At, string Line)>();

        // 100,000 refusals of two classes over 60 s, flushed every second as the node's scheduler does.
        for (var i = 0; i < 100_000; i++)
        {
            var now = TimeSpan.FromMilliseconds(i * 0.6);
            var refusalClass = i % 3 == 0 ? RefusalClass.MalformedSegment : RefusalClass.MigrationRefused;
            if (summary.Record(refusalClass, 1, $"refusal {i}", now) is { } line)
            {
                lines.Add((now, line));
            }

            if (i % 1667 == 0)
            {
                lines.AddRange(summary.Flush(now).Select(flushed => (now, flushed)));
            }
        }

        lines.AddRange(summary.Flush(TimeSpan.FromSeconds(80)).Select(line => (TimeSpan.FromSeconds(80), line)));

        foreach (var name in new[] { "migration-refused", "malformed-segment" })
        {
            var times = lines.Where(line => line.Line.StartsWith(name, StringComparison.Ordinal)).Select(line => line.At).ToList();
            Assert.InRange(times.Count, 2, 8);
            Assert.All(times.Zip(times.Skip(1)), pair => Assert.True(pair.Second - pair.First >= Interval, $"{name}: lines at {pair.First} and {pair.Second}"));
        }

        Assert.Equal(66_666, summary.Total(RefusalClass.MigrationRefused));
        Assert.Equal(33_334, summary.Total(RefusalClass.MalformedSegment));
        Assert.EndsWith("66666 since start; the last: refusal 99998", lines.Last(line => line.Line.StartsWith("migration-refused", StringComparison.Ordinal)).Line, StringComparison.Ordinal);
    }

    [Fact]
    public void Refusals_after_a_quiet_interval_must_be_written_at_once_again()
    {
        var summary = new RefusalSummary(Interval);
        summary.Record(RefusalClass.SendDropped, 5, "first", TimeSpan.Zero);
        Assert.Null(summary.Record(RefusalClass.SendDropped, 2, "second", TimeSpan.FromSeconds(1)));
        Assert.Equal(["send-dropped: 2 since the last line, 7 since start; the last: second"], summary.Flush(TimeSpan.FromSeconds(10)));

        var line = summary.Record(RefusalClass.SendDropped, 1, "third", TimeSpan.FromSeconds(25));

        Assert.Equal("send-dropped: 1 since the last line, 8 since start; the last: third", line);
    }
}

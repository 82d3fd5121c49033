namespace Mtcp.Apps;

/// <summary>
/// A server that degrades the longer it serves one connection (thesis 5.3.2: "the server application artificially
/// introduces delays ... after a threshold value"): in one visit of a connection (since it arrived, new or migrated in),
/// step <c>n</c> (0-based: a chunk, an answer) waits nothing for <c>n &lt; After</c>, then <see cref="Step"/> longer than
/// the step before, up to <see cref="Max"/>. The default waits nothing.
/// </summary>
public readonly record struct SteppedDelay(int After, TimeSpan Step, TimeSpan Max)
{
    /// <summary>The delay before step <paramref name="stepOfVisit"/> (0-based) of a visit.</summary>
    public TimeSpan Before(long stepOfVisit) =>
        stepOfVisit < After ? TimeSpan.Zero : TimeSpan.FromTicks(Math.Min(Max.Ticks, Step.Ticks * (stepOfVisit - After + 1)));
}

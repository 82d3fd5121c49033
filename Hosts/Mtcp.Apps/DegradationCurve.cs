namespace Mtcp.Apps;

/// <summary>
/// How a degrading server paces a stream (thesis 5.3.2: "the server application artificially introduces delays in the
/// writing of chunks after a threshold value"): in one visit of a connection, chunk <c>n</c> takes
/// <c>ChunkSize / BestRate</c> for <c>n &lt; DegradeAfter</c>, and that base interval times
/// <c>min(MaxSlowdown, 1 + SlowdownPerChunk * (n - DegradeAfter + 1))</c> after. <see cref="PacedStream"/> applies it.
/// </summary>
public sealed record DegradationCurve(int ChunkSize, double BestRate, int DegradeAfter, double SlowdownPerChunk, double MaxSlowdown)
{
    /// <summary>A server that keeps its best rate.</summary>
    public static DegradationCurve None(int chunkSize, double bestRate) => new(chunkSize, bestRate, int.MaxValue, 0, 1);

    /// <summary>How long chunk <paramref name="chunkOfVisit"/> (0-based) takes on a server.</summary>
    public TimeSpan Interval(long chunkOfVisit)
    {
        var slowdown = chunkOfVisit < DegradeAfter ? 1.0 : Math.Min(MaxSlowdown, 1.0 + (SlowdownPerChunk * (chunkOfVisit - DegradeAfter + 1)));
        return TimeSpan.FromSeconds(ChunkSize / BestRate * slowdown);
    }
}

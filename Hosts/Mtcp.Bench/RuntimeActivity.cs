using System.Globalization;
using System.Runtime;

namespace Mtcp.Bench;

/// <summary>
/// What the .NET runtime did in this process besides running the benchmark: garbage collections by generation and the
/// time they paused it (both ends of a connection run in this process, so a blocking collection stops both), and the
/// methods the JIT compiled and the time it spent (tiered compilation recompiles hot methods in the background for a
/// while after they first run, so a run that still shows JIT work measured partly unoptimized code). Allocations are
/// what sets the pace of the collections.
/// </summary>
internal readonly record struct RuntimeActivity(long BytesAllocated, int Gen0, int Gen1, int Gen2, TimeSpan GcPaused, long MethodsCompiled, TimeSpan JitTime)
{
    public static RuntimeActivity Now() => new(
        GC.GetTotalAllocatedBytes(precise: true),
        GC.CollectionCount(0),
        GC.CollectionCount(1),
        GC.CollectionCount(2),
        GC.GetTotalPauseDuration(),
        JitInfo.GetCompiledMethodCount(),
        JitInfo.GetCompilationTime());

    public static RuntimeActivity operator -(RuntimeActivity after, RuntimeActivity before) => new(
        after.BytesAllocated - before.BytesAllocated,
        after.Gen0 - before.Gen0,
        after.Gen1 - before.Gen1,
        after.Gen2 - before.Gen2,
        after.GcPaused - before.GcPaused,
        after.MethodsCompiled - before.MethodsCompiled,
        after.JitTime - before.JitTime);

    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"allocated {BytesAllocated / 1e6:F1} MB, GC {Gen0}/{Gen1}/{Gen2} (gen0/1/2) paused {GcPaused.TotalMilliseconds:F1} ms, JIT {MethodsCompiled} methods {JitTime.TotalMilliseconds:F0} ms");
}

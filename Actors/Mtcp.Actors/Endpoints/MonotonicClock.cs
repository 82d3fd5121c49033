using System.Diagnostics;
using Mtcp.Stack;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// The runtime's clock: microseconds since the runtime started, from the monotonic high-resolution timer. The
/// engine never reads a clock; the actors read this one and pass the time in.
/// </summary>
internal sealed class MonotonicClock
{
    private readonly long _start = Stopwatch.GetTimestamp();

    public Instant Now => new(Stopwatch.GetElapsedTime(_start).Ticks / TimeSpan.TicksPerMicrosecond);
}

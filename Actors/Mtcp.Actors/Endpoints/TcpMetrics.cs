using System.Diagnostics.Metrics;
using Mtcp.Actors.Diagnostics;
using Mtcp.Stack;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// The endpoints' TCP instruments on the meter <c>Mtcp.Runtime</c> (<see cref="RefusalLog.MeterName"/>):
/// <c>mtcp.tcp.retransmission_timeouts</c>, the retransmission-timer expirations (RFC 6298 §5.4) of every
/// connection, client and server side: each is a stall of at least one RTO that SACK-based recovery and
/// RACK-TLP did not avoid; and the path MTU events of every connection, <c>mtcp.tcp.path_mtu.*</c> (ICMP reports that
/// lowered an MSS, black holes, probes sent, lost and raising an MSS): a black hole is at least three such stalls.
/// </summary>
internal static class TcpMetrics
{
    /// <summary>The name of the retransmission-timeout counter, for a <see cref="MeterListener"/>.</summary>
    public const string RetransmissionTimeoutsName = "mtcp.tcp.retransmission_timeouts";

    private static readonly Meter Meter = new(RefusalLog.MeterName);

    private static readonly Counter<long> RetransmissionTimeouts = Meter.CreateCounter<long>(
        RetransmissionTimeoutsName, "{timeout}", "Retransmission-timer expirations of the connections' control blocks (RFC 6298 section 5.4)");

    /// <summary>The name of the black-hole counter, for a <see cref="MeterListener"/>.</summary>
    public const string PathMtuBlackHolesName = "mtcp.tcp.path_mtu.black_holes";

    /// <summary>The name of the counter of probes sent, for a <see cref="MeterListener"/>.</summary>
    public const string PathMtuProbesName = "mtcp.tcp.path_mtu.probes";

    private static readonly Counter<long> PathMtuReductions = Meter.CreateCounter<long>(
        "mtcp.tcp.path_mtu.reductions", "{report}", "ICMP packet too big reports that lowered a connection's MSS (RFC 1191, RFC 8201)");

    private static readonly Counter<long> PathMtuBlackHoles = Meter.CreateCounter<long>(
        PathMtuBlackHolesName, "{black_hole}", "Path MTU black holes detected (RFC 4821 section 7.2): a connection's MSS fell to mtcp.tcp.path-mtu-probing.base-segment-size");

    private static readonly Counter<long> PathMtuProbes = Meter.CreateCounter<long>(
        PathMtuProbesName, "{probe}", "Path MTU probes sent: segments of queued data larger than the connection's MSS (RFC 4821 section 7.3)");

    private static readonly Counter<long> PathMtuProbesLost = Meter.CreateCounter<long>(
        "mtcp.tcp.path_mtu.probes_lost", "{probe}", "Path MTU probes lost (RFC 4821 section 7.5): the search's upper bound came down, the congestion window did not");

    private static readonly Counter<long> PathMtuIncreases = Meter.CreateCounter<long>(
        "mtcp.tcp.path_mtu.increases", "{probe}", "Path MTU probes acknowledged that raised a connection's MSS");

    public static void PathMtuChanged(PathMtuCounts change)
    {
        Add(PathMtuReductions, change.Reductions);
        Add(PathMtuBlackHoles, change.BlackHoles);
        Add(PathMtuProbes, change.Probes);
        Add(PathMtuProbesLost, change.ProbesLost);
        Add(PathMtuIncreases, change.Increases);
    }

    public static void RetransmissionTimedOut(long count) => Add(RetransmissionTimeouts, count);

    private static void Add(Counter<long> counter, long count)
    {
        if (count > 0)
        {
            counter.Add(count);
        }
    }
}

using System.Diagnostics.Metrics;
using Mtcp.Actors.Diagnostics;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// The endpoints' TCP instruments on the meter <c>Mtcp.Runtime</c> (<see cref="RefusalLog.MeterName"/>):
/// <c>mtcp.tcp.retransmission_timeouts</c>, the retransmission-timer expirations (RFC 6298 §5.4) of every
/// connection, client and server side: each is a stall of at least one RTO that SACK-based recovery and
/// RACK-TLP did not avoid.
/// </summary>
internal static class TcpMetrics
{
    /// <summary>The name of the retransmission-timeout counter, for a <see cref="MeterListener"/>.</summary>
    public const string RetransmissionTimeoutsName = "mtcp.tcp.retransmission_timeouts";

    private static readonly Meter Meter = new(RefusalLog.MeterName);

    private static readonly Counter<long> RetransmissionTimeouts = Meter.CreateCounter<long>(
        RetransmissionTimeoutsName, "{timeout}", "Retransmission-timer expirations of the connections' control blocks (RFC 6298 section 5.4)");

    public static void RetransmissionTimedOut(long count)
    {
        if (count > 0)
        {
            RetransmissionTimeouts.Add(count);
        }
    }
}

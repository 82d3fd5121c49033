using System.Collections.Immutable;
using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>A snapshot of a packet actor's counters (<see cref="MtcpRuntime.GetStatisticsAsync"/>).</summary>
/// <param name="SegmentsReceived">segments the transport delivered to the receive thread.</param>
/// <param name="SegmentsRouted">segments handed to an endpoint or listener.</param>
/// <param name="MalformedByReason">segments the codec refused, by reason; none of them changed any state.</param>
/// <param name="StraySegments">well-formed segments for no connection and no listener.</param>
/// <param name="ResetsSent">RSTs sent in answer to stray segments (RFC 9293 §3.10.7.1).</param>
/// <param name="SynsDropped">SYNs a listener dropped because its backlog was full.</param>
/// <param name="SendsDropped">segments the transport dropped locally (full send buffer, no route).</param>
/// <param name="Endpoints">connection endpoints registered now (TIME-WAIT included).</param>
/// <param name="SilencedSegments">segments dropped unanswered because their 4-tuple migrated away from this node (thesis 4.2.3).</param>
/// <param name="SilencedTuples">4-tuples this node migrated away from and still owes silence (2 MSL each).</param>
/// <param name="PacketTooBigRouted">ICMP path MTU reports quoting one of our packets that named a live connection's 4-tuple and went to its endpoint, and the UDP transport's sends the local host refused as too big for its interface, reported to their endpoint the same way.</param>
/// <param name="PacketTooBigApplied">of those, the reports the engine believed: the connection's MSS went down (RFC 1191, RFC 8201), or the report named its path MTU probe and narrowed the search (RFC 8899 §4.6.2).</param>
/// <param name="PacketTooBigRefused">of those, the reports the engine refused: sequence number not in flight, or an MTU not lowering the MSS (RFC 5927 §4.1).</param>
public sealed record PacketStatistics(
    long SegmentsReceived,
    long SegmentsRouted,
    ImmutableDictionary<WireError, long> MalformedByReason,
    long StraySegments,
    long ResetsSent,
    long SynsDropped,
    long SendsDropped,
    int Endpoints,
    long SilencedSegments,
    int SilencedTuples,
    long PacketTooBigRouted,
    long PacketTooBigApplied,
    long PacketTooBigRefused)
{
    public long MalformedSegments => MalformedByReason.Values.Sum();
}

using System.Collections.Immutable;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

// What the client side's runtime tells the client policy about its connections. Time travels in the
// messages so that the policy never reads a clock and replays deterministically.

/// <summary>
/// The client received <paramref name="Bytes"/> of in-sequence data on <paramref name="Connection"/> at
/// <paramref name="At"/>: the input of the throughput trigger (thesis 5.3.2). <paramref name="ReaderWait"/> is how long,
/// since the previous observation, the client side rather than the server held the connection: blocked passing bytes
/// on to its own reader (a relay's write to its kernel-TCP client: its receive window stayed closed because of the
/// reader), or taking its time before its next request (a user's pause in an interactive session).
/// </summary>
public sealed record SegmentObserved(ConnectionId Connection, int Bytes, Instant At, TimeSpan ReaderWait = default);

/// <summary>
/// The next in-sequence segment of <paramref name="Connection"/> arrived <paramref name="Delay"/> after the
/// previous one, while the connection's smoothed RTT was <paramref name="SmoothedRtt"/> (null before the
/// first RTT sample): the input of the latency trigger (thesis 3.4 (1)).
/// </summary>
public sealed record SegmentDelay(ConnectionId Connection, TimeSpan Delay, TimeSpan? SmoothedRtt, Instant At);

/// <summary>
/// One request/response exchange on <paramref name="Connection"/> took <paramref name="ResponseTime"/>,
/// as the client application perceived it: the input of the response-time trigger (thesis 3.4 (2)).
/// </summary>
public sealed record RequestCompleted(ConnectionId Connection, TimeSpan ResponseTime, Instant At);

/// <summary>
/// <paramref name="Connection"/> is served by <paramref name="CurrentServer"/> and may move to any of
/// <paramref name="Alternates"/> (the TCP_MIGRATE list of the SYN+ACK, thesis 4.2.3, or a later update).
/// The first one registers the connection with the client policy.
/// </summary>
public sealed record ConnectionAlternatesChanged(
    ConnectionId Connection,
    ServerEndpoint CurrentServer,
    ImmutableArray<ServerEndpoint> Alternates,
    Instant At);

/// <summary><paramref name="Connection"/> is gone; the policy forgets it.</summary>
public sealed record ConnectionClosed(ConnectionId Connection);

using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

// The server-side load-balancing conversation (thesis 6.2.2, 6.2.3): the runtime reports this node's
// connections and traffic, the cluster carries every node's load report, and a node short of load may
// ask a loaded peer to trigger migrations towards it (pull).

/// <summary>
/// The load of the node whose service endpoint is <paramref name="Node"/>, measured at <paramref name="At"/>
/// in the unit of <c>mtcp.policies.server.load-source</c>. A draining node is never chosen as a destination.
/// </summary>
public sealed record NodeLoadReport(ServerEndpoint Node, double Load, int Connections, bool Draining, Instant At);

/// <summary>
/// <paramref name="Connection"/> is now served by this node; <paramref name="MigratedFrom"/> names the node
/// it came from when it arrived by migration (the ping-pong guard needs it).
/// </summary>
public sealed record ConnectionAccepted(ConnectionId Connection, ServerEndpoint? MigratedFrom, Instant At);

/// <summary><paramref name="Connection"/> no longer lives on this node (closed, or migrated away).</summary>
public sealed record ConnectionEnded(ConnectionId Connection, Instant At);

/// <summary>This node sent or received <paramref name="Bytes"/> on <paramref name="Connection"/> (for the bytes-per-second load source).</summary>
public sealed record BytesServed(ConnectionId Connection, long Bytes, Instant At);

/// <summary>The application's own load figure (for the application load source), e.g. queue length or CPU share.</summary>
public sealed record ApplicationLoad(double Load, Instant At);

/// <summary>
/// The processor time this process has used since it started, across <paramref name="ProcessorCount"/>
/// processors, read at <paramref name="At"/> (for the cpu load source).
/// </summary>
public sealed record ProcessorTimeSample(TimeSpan TotalProcessorTime, int ProcessorCount, Instant At);

/// <summary>
/// Evaluate load and guard rails now. Sent by the actor's own timer (which reads the injected clock) or,
/// with <c>evaluation-interval = 0s</c>, by the owner: tests drive virtual time this way.
/// </summary>
public sealed record EvaluateLoad(Instant At);

/// <summary>
/// Pull (thesis 6.2.3 (2)): <paramref name="Requester"/>, lightly loaded, asks <paramref name="LoadedPeer"/>
/// to trigger up to <paramref name="Count"/> of its connections towards <paramref name="Requester"/>.
/// </summary>
public sealed record PullConnections(ServerEndpoint Requester, ServerEndpoint LoadedPeer, double RequesterLoad, int Count, Instant At);

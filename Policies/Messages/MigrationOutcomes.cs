using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

// How a migration that a policy asked for (or any other) ended; told by the runtime to the policies on
// both sides so that hold-downs, ping-pong windows and per-server memories start from what happened.

/// <summary><paramref name="Connection"/> moved from <paramref name="From"/> to <paramref name="To"/> at <paramref name="At"/>.</summary>
public sealed record MigrationCompleted(ConnectionId Connection, ServerEndpoint From, ServerEndpoint To, Instant At);

/// <summary>
/// A migration of <paramref name="Connection"/> towards <paramref name="Destination"/> failed (state
/// request timed out, state rejected, ...); the connection stays where it was.
/// </summary>
public sealed record MigrationFailed(ConnectionId Connection, ServerEndpoint Destination, string Cause, Instant At);

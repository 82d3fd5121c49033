using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

// Operator commands to the server policy actor and its replies (sent to the command's sender).

/// <summary>Move one connection now; a null destination picks the least-loaded live peer.</summary>
public sealed record MigrateOneConnection(ConnectionId Connection, ServerEndpoint? Destination, Instant At);

/// <summary>
/// Move every connection off this node (for deploys: drain, restart, rejoin), at most
/// <c>mtcp.policies.server.drain.migrations-per-second</c>; a null destination spreads them over the
/// least-loaded live peers.
/// </summary>
public sealed record DrainNode(ServerEndpoint? Destination, Instant At);

/// <summary>The command was accepted; its decisions follow as <see cref="TriggerMigration"/> messages.</summary>
public sealed record CommandAccepted(object Command);

/// <summary>The command was refused, for the reason given.</summary>
public sealed record CommandRejected(object Command, string Reason);

/// <summary>Drain progress: triggers sent so far and connections still on the node.</summary>
public sealed record DrainProgress(int Triggered, int Remaining, Instant At);

/// <summary>The node holds no connection any more; <paramref name="Elapsed"/> since the drain started.</summary>
public sealed record DrainCompleted(int Triggered, TimeSpan Elapsed, Instant At);

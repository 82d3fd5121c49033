using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// The guard rails every policy decision passes before it leaves a node: a hold-down per connection after
/// each decision and each completed or failed migration, a per-node token bucket on decisions, and no
/// ping-pong (moving a connection straight back to the node it left less than a window ago). Pure:
/// time comes in as a parameter.
/// </summary>
public sealed class MigrationGuard
{
    private readonly Dictionary<ConnectionId, ConnectionRecord> _connections = [];
    private readonly TokenBucket _bucket;

    public MigrationGuard(GuardSettings settings, Instant start)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Settings = settings;
        _bucket = new TokenBucket(settings.MigrationsPerSecond, settings.Burst, start);
    }

    public GuardSettings Settings { get; }

    /// <summary>What would hold back moving <paramref name="connection"/> to <paramref name="to"/> at <paramref name="at"/>; consumes nothing.</summary>
    public GuardVerdict Check(ConnectionId connection, ServerEndpoint to, Instant at)
    {
        if (_connections.TryGetValue(connection, out var record))
        {
            if (at < record.HoldDownUntil)
            {
                return GuardVerdict.HoldDown;
            }

            if (record.LastMove is { } move && move.From == to && at - move.At < Settings.PingPongWindow)
            {
                return GuardVerdict.PingPong;
            }
        }

        return _bucket.Available(at) >= 1 ? GuardVerdict.Allowed : GuardVerdict.RateLimited;
    }

    /// <summary>
    /// Checks and, when allowed, records the decision: takes a token, starts the hold-down and remembers the
    /// move for the ping-pong window. <paramref name="from"/> is the connection's current server when known.
    /// </summary>
    public GuardVerdict TryAdmit(ConnectionId connection, ServerEndpoint? from, ServerEndpoint to, Instant at)
    {
        var verdict = Check(connection, to, at);
        if (verdict == GuardVerdict.Allowed)
        {
            _bucket.TryTake(at);
            Record(connection, from, to, at);
        }

        return verdict;
    }

    /// <summary>Records a decision that bypassed the checks (operator commands, drain), so later decisions see it.</summary>
    public void RecordOverride(ConnectionId connection, ServerEndpoint? from, ServerEndpoint to, Instant at) =>
        Record(connection, from, to, at);

    /// <summary>The connection moved: the hold-down restarts from the arrival and the move opens a ping-pong window.</summary>
    public void NoteMigrated(ConnectionId connection, ServerEndpoint from, ServerEndpoint to, Instant at) =>
        Record(connection, from, to, at);

    /// <summary>A migration failed: the hold-down restarts so that a failing destination is not retried at once.</summary>
    public void NoteFailed(ConnectionId connection, Instant at)
    {
        var record = GetOrAdd(connection);
        record.HoldDownUntil = at + Settings.HoldDown;
    }

    /// <summary>True while the connection is inside its hold-down.</summary>
    public bool IsHeldDown(ConnectionId connection, Instant at) =>
        _connections.TryGetValue(connection, out var record) && at < record.HoldDownUntil;

    public void Forget(ConnectionId connection) => _connections.Remove(connection);

    private void Record(ConnectionId connection, ServerEndpoint? from, ServerEndpoint to, Instant at)
    {
        var record = GetOrAdd(connection);
        record.HoldDownUntil = at + Settings.HoldDown;
        if (from is { } origin)
        {
            record.LastMove = new Move(origin, to, at);
        }
    }

    private ConnectionRecord GetOrAdd(ConnectionId connection)
    {
        if (!_connections.TryGetValue(connection, out var record))
        {
            record = new ConnectionRecord();
            _connections.Add(connection, record);
        }

        return record;
    }

    private readonly record struct Move(ServerEndpoint From, ServerEndpoint To, Instant At);

    private sealed class ConnectionRecord
    {
        public Instant HoldDownUntil { get; set; }

        public Move? LastMove { get; set; }
    }
}

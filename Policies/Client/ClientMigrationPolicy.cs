using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// What a trigger concluded: the decision it would send and the guard's verdict on it. Only an
/// <see cref="GuardVerdict.Allowed"/> decision leaves the node; the others are logged and counted as suppressed.
/// </summary>
public sealed record ClientOutcome(PolicyKind Policy, GuardVerdict Verdict, MigrateConnection Decision);

/// <summary>
/// The client side's decisions for every connection of a client agent (thesis 3.4, 5.3.2), pure and
/// deterministic: observations in, <see cref="ClientOutcome"/>s out. Each connection runs the configured
/// triggers; a decision that passes the guard restarts the triggers (a new visit), and so does a completed
/// migration, so the next decision rests on fresh measurements.
/// </summary>
public sealed class ClientMigrationPolicy
{
    private readonly ClientPolicySettings _settings;
    private readonly MigrationGuard _guard;
    private readonly Dictionary<ConnectionId, ClientConnection> _connections = [];

    public ClientMigrationPolicy(ClientPolicySettings settings, Instant start)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings;
        _guard = new MigrationGuard(settings.Guard, start);
    }

    public int ConnectionCount => _connections.Count;

    /// <summary>The connection's throughput trigger, for inspection; null when the connection or the trigger is unknown.</summary>
    public ThroughputTrigger? ThroughputOf(ConnectionId connection) =>
        _connections.TryGetValue(connection, out var state) ? state.Throughput : null;

    public void OnServersChanged(ConnectionAlternatesChanged message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Connection(message.Connection).Destinations.SetServers(message.CurrentServer, message.Alternates);
    }

    public ClientOutcome? OnSegment(SegmentObserved message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var state = Connection(message.Connection);
        return state.Throughput is { } trigger && trigger.Observe(message.Bytes, message.At, message.ReaderWait)
            ? Decide(message.Connection, state, PolicyKind.Throughput, MigrationReason.ThroughputDrop, trigger.Describe, message.At)
            : null;
    }

    public ClientOutcome? OnSegmentDelay(SegmentDelay message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var state = Connection(message.Connection);
        return state.Latency is { } trigger && trigger.Observe(message.Delay, message.SmoothedRtt, message.At)
            ? Decide(message.Connection, state, PolicyKind.Latency, MigrationReason.SegmentDelay, trigger.Describe, message.At)
            : null;
    }

    public ClientOutcome? OnRequestCompleted(RequestCompleted message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var state = Connection(message.Connection);
        return state.ResponseTime is { } trigger && trigger.Observe(message.ResponseTime, message.At)
            ? Decide(message.Connection, state, PolicyKind.ResponseTime, MigrationReason.ResponseTime, trigger.Describe, message.At)
            : null;
    }

    public void OnMigrationCompleted(MigrationCompleted message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var state = Connection(message.Connection);

        // After a decision of ours the visit's best was recorded when deciding; a migration triggered
        // elsewhere (a server's MIGRATE_TRIGGER) ends the visit here.
        if (!state.Decided && state.Throughput?.Maximum is { } best)
        {
            state.Destinations.RecordThroughput(message.From, best);
        }

        state.Decided = false;

        state.Destinations.MovedTo(message.To);
        state.Restart();
        _guard.NoteMigrated(message.Connection, message.From, message.To, message.At);
    }

    public void OnMigrationFailed(MigrationFailed message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Connection(message.Connection).Destinations.RecordFailure(message.Destination);
        _guard.NoteFailed(message.Connection, message.At);
    }

    public void OnClosed(ConnectionClosed message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _connections.Remove(message.Connection);
        _guard.Forget(message.Connection);
    }

    private ClientOutcome? Decide(ConnectionId key, ClientConnection state, PolicyKind policy, MigrationReason reason, Func<string> describe, Instant at)
    {
        // The evidence is formatted only for an outcome that is reported, not at every held-back segment.
        var destination = state.Destinations.Choose();
        if (destination is not { } to)
        {
            return HeldBack(state, policy, GuardVerdict.NoDestination, new MigrateConnection(key, null, reason, string.Empty), describe);
        }

        var verdict = _guard.TryAdmit(key, state.Destinations.Current, to, at);
        if (verdict != GuardVerdict.Allowed)
        {
            return HeldBack(state, policy, verdict, new MigrateConnection(key, to, reason, string.Empty), describe);
        }

        // Before the restart below wipes the evidence.
        var decision = new MigrateConnection(key, to, reason, describe());
        if (state.Throughput?.Maximum is { } best && state.Destinations.Current is { } current)
        {
            state.Destinations.RecordThroughput(current, best);
        }

        state.Destinations.Picked(to);
        state.Decided = true;
        state.Restart();
        return new ClientOutcome(policy, verdict, decision);
    }

    /// <summary>
    /// A trigger keeps firing at every observation while its condition holds; a guard holding it back is
    /// reported once per episode (until the verdict changes, a decision passes or the visit restarts), so
    /// logs and counters count episodes, not segments.
    /// </summary>
    private static ClientOutcome? HeldBack(ClientConnection state, PolicyKind policy, GuardVerdict verdict, MigrateConnection decision, Func<string> describe)
    {
        if (state.LastHeldBack == verdict)
        {
            return null;
        }

        state.LastHeldBack = verdict;
        return new ClientOutcome(policy, verdict, decision with { Detail = describe() });
    }

    private ClientConnection Connection(ConnectionId key)
    {
        if (!_connections.TryGetValue(key, out var state))
        {
            state = new ClientConnection(_settings);
            _connections.Add(key, state);
        }

        return state;
    }

    private sealed class ClientConnection
    {
        public ClientConnection(ClientPolicySettings settings)
        {
            Destinations = new DestinationSelector(settings.DestinationChoice);
            Throughput = settings.Triggers.Contains(PolicyKind.Throughput) ? new ThroughputTrigger(settings.Throughput) : null;
            Latency = settings.Triggers.Contains(PolicyKind.Latency) ? new LatencyTrigger(settings.Latency) : null;
            ResponseTime = settings.Triggers.Contains(PolicyKind.ResponseTime) ? new ResponseTimeTrigger(settings.ResponseTime) : null;
        }

        public DestinationSelector Destinations { get; }

        public ThroughputTrigger? Throughput { get; }

        public LatencyTrigger? Latency { get; }

        public ResponseTimeTrigger? ResponseTime { get; }

        /// <summary>A decision of ours is out and its migration has not completed yet.</summary>
        public bool Decided { get; set; }

        /// <summary>The guard verdict last reported for this connection's current episode.</summary>
        public GuardVerdict? LastHeldBack { get; set; }

        public void Restart()
        {
            LastHeldBack = null;
            Throughput?.Restart();
            Latency?.Restart();
            ResponseTime?.Restart();
        }
    }
}

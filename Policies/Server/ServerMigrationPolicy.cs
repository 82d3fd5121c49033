using System.Globalization;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// One decision of the server side. <see cref="Decision"/> is set when <see cref="Verdict"/> is
/// <see cref="GuardVerdict.Allowed"/>; otherwise the outcome says why a wanted move did not happen.
/// </summary>
public sealed record ServerOutcome(PolicyKind Policy, MigrationReason Reason, GuardVerdict Verdict, TriggerMigration? Decision, string Detail);

/// <summary>What one evaluation produced: the load report to publish, decisions, a pull request for a peer, drain news.</summary>
public sealed record ServerEvaluation(
    NodeLoadReport Report,
    IReadOnlyList<ServerOutcome> Outcomes,
    PullConnections? Pull,
    DrainProgress? DrainProgress,
    DrainCompleted? DrainCompleted);

/// <summary>
/// The server side's decisions for one node (thesis 3.2.1, 6.2.2, 6.2.3), pure and deterministic: this
/// node's connections and traffic, its peers' load reports and operator commands in; MIGRATE_TRIGGER
/// decisions, pull requests and drain progress out. Push, pull and overload decisions pass the node's
/// guard (hold-down, token bucket, ping-pong); operator commands and drains bypass hold-down and ping-pong
/// but are recorded so that later load-balancing decisions see them.
/// </summary>
public sealed class ServerMigrationPolicy
{
    private static readonly IReadOnlyList<ServerOutcome> NoOutcomes = [];

    private readonly ServerPolicySettings _settings;
    private readonly LoadMeter _meter;
    private readonly MigrationGuard _guard;
    private readonly Dictionary<ServerEndpoint, NodeLoadReport> _peers = [];
    private DrainState? _drain;

    public ServerMigrationPolicy(ServerEndpoint self, ServerPolicySettings settings, Instant start)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Self = self;
        _settings = settings;
        _meter = new LoadMeter(settings.LoadSource, start);
        _guard = new MigrationGuard(settings.Guard, start);
    }

    /// <summary>This node's service endpoint: its name in load reports and as a destination.</summary>
    public ServerEndpoint Self { get; }

    /// <summary>The load measured at the latest evaluation.</summary>
    public double LastLoad { get; private set; }

    public int Connections => _meter.Connections;

    public bool Draining => _drain is not null;

    public void OnConnectionAccepted(ConnectionAccepted message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _meter.Accepted(message.Connection);
        if (message.MigratedFrom is { } from)
        {
            _guard.NoteMigrated(message.Connection, from, Self, message.At);
        }
    }

    public void OnConnectionEnded(ConnectionEnded message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _meter.Ended(message.Connection);
        _guard.Forget(message.Connection);
        _drain?.TriggeredAt.Remove(message.Connection);
    }

    public void OnBytesServed(BytesServed message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _meter.BytesServed(message.Bytes);
    }

    public void OnApplicationLoad(ApplicationLoad message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _meter.ApplicationLoad(message.Load);
    }

    public void OnProcessorTime(ProcessorTimeSample sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        _meter.ProcessorTime(sample);
    }

    /// <summary>Keeps the newest report of each peer; this node's own reports are ignored.</summary>
    public void OnPeerLoad(NodeLoadReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Node == Self || (_peers.TryGetValue(report.Node, out var known) && known.At > report.At))
        {
            return;
        }

        _peers[report.Node] = report;
    }

    /// <summary>
    /// A migration involving this node completed: the same as <see cref="ConnectionEnded"/> on the node it
    /// left and <see cref="ConnectionAccepted"/> (with its origin) on the node it reached, for runtimes that
    /// report migrations rather than arrivals and departures.
    /// </summary>
    public void OnMigrationCompleted(MigrationCompleted message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.From == Self)
        {
            OnConnectionEnded(new ConnectionEnded(message.Connection, message.At));
        }
        else if (message.To == Self)
        {
            OnConnectionAccepted(new ConnectionAccepted(message.Connection, message.From, message.At));
        }
    }

    /// <summary>A client's migration away from this node failed: hold the connection down before trying again.</summary>
    public void OnMigrationFailed(MigrationFailed message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _guard.NoteFailed(message.Connection, message.At);
    }

    /// <summary>Measures load and decides: drain when draining, else overload shedding or push, and pull.</summary>
    public ServerEvaluation Evaluate(Instant at)
    {
        LastLoad = _meter.Measure(at);
        var report = new NodeLoadReport(Self, LastLoad, _meter.Connections, Draining, at);
        if (_drain is not null)
        {
            var (outcomes, progress, completed) = StepDrain(at);
            return new ServerEvaluation(report, outcomes, null, progress, completed);
        }

        var peers = LivePeers(at);
        var decisions = new List<ServerOutcome>();
        if (_settings.OverloadThreshold > 0 && LastLoad >= _settings.OverloadThreshold)
        {
            Shed(peers, at, decisions);
        }
        else if (_settings.Push)
        {
            Push(peers, at, decisions);
        }

        var pull = _settings.Pull ? PullRequest(peers, at) : null;
        return new ServerEvaluation(report, decisions, pull, null, null);
    }

    /// <summary>
    /// A lightly loaded peer asks this node for connections (thesis 6.2.3 (2)). Honoured only while this
    /// node's own latest load still exceeds the requester's by the imbalance threshold, and only as far as a
    /// move narrows the gap without inverting it.
    /// </summary>
    public IReadOnlyList<ServerOutcome> OnPullRequest(PullConnections request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.LoadedPeer != Self || request.Requester == Self || _drain is not null
            || LastLoad - request.RequesterLoad < _settings.ImbalanceThreshold)
        {
            return NoOutcomes;
        }

        var outcomes = new List<ServerOutcome>();
        var perConnection = PerConnectionLoad();
        var requester = new Projection(request.Requester, request.RequesterLoad);
        var own = LastLoad;
        var detail = Describe($"pull from {request.Requester} (load {request.RequesterLoad}) at own load {LastLoad}");
        Move(
            Math.Min(request.Count, _settings.MaxMovesPerEvaluation),
            () => own - requester.Load >= 2 * perConnection ? requester : null,
            PolicyKind.LoadBalancing,
            MigrationReason.LoadBalancePull,
            detail,
            request.At,
            outcomes,
            moved =>
            {
                own -= perConnection;
                moved.Load += perConnection;
            });
        return outcomes;
    }

    /// <summary>Operator: move one connection now. Returns the decision, or the reason it was refused.</summary>
    public (ServerOutcome? Outcome, string? Rejection) MigrateOne(MigrateOneConnection command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (!_meter.Serves(command.Connection))
        {
            return (null, $"connection {command.Connection} is not on this node");
        }

        if (command.Destination == Self)
        {
            return (null, "the destination is this node");
        }

        var destination = command.Destination ?? LivePeers(command.At).FirstOrDefault()?.Node;
        if (destination is not { } to)
        {
            return (null, "no live peer has reported its load recently");
        }

        _guard.RecordOverride(command.Connection, Self, to, command.At);
        var detail = "operator command";
        return (new ServerOutcome(PolicyKind.Operator, MigrationReason.OperatorCommand, GuardVerdict.Allowed, Trigger(command.Connection, to, MigrationReason.OperatorCommand, detail), detail), null);
    }

    /// <summary>Operator: start draining every connection off this node. Returns the reason it was refused, or null.</summary>
    public string? StartDrain(DrainNode command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (_drain is not null)
        {
            return "this node is already draining";
        }

        if (command.Destination == Self)
        {
            return "the destination is this node";
        }

        _drain = new DrainState(command.Destination, command.At, new TokenBucket(_settings.Drain.MigrationsPerSecond, _settings.Drain.Burst, command.At));
        return null;
    }

    /// <summary>
    /// One step of a drain: triggers every connection not triggered within <c>retry-after</c>, as far as the
    /// drain's token bucket allows, and reports progress; completion once no connection is left (reported once).
    /// </summary>
    public (IReadOnlyList<ServerOutcome> Outcomes, DrainProgress? Progress, DrainCompleted? Completed) StepDrain(Instant at)
    {
        if (_drain is not { } drain)
        {
            return (NoOutcomes, null, null);
        }

        if (_meter.Connections == 0)
        {
            if (drain.CompletionReported)
            {
                return (NoOutcomes, null, null);
            }

            drain.CompletionReported = true;
            return (NoOutcomes, new DrainProgress(drain.Triggered, 0, at), new DrainCompleted(drain.Triggered, at - drain.StartedAt, at));
        }

        var outcomes = new List<ServerOutcome>();
        var peers = drain.Destination is { } fixedDestination ? [new Projection(fixedDestination, 0)] : LivePeers(at);
        var perConnection = PerConnectionLoad();
        foreach (var connection in _meter.OldestFirst().ToList())
        {
            if (drain.TriggeredAt.TryGetValue(connection, out var triggeredAt) && at - triggeredAt < _settings.Drain.RetryAfter)
            {
                continue;
            }

            var destination = LeastLoaded(peers);
            if (destination is null)
            {
                outcomes.Add(new ServerOutcome(PolicyKind.Drain, MigrationReason.Drain, GuardVerdict.NoDestination, null, "drain: no live peer to move connections to"));
                break;
            }

            if (!drain.Bucket.TryTake(at))
            {
                break;
            }

            destination.Load += perConnection;
            _guard.RecordOverride(connection, Self, destination.Node, at);
            drain.TriggeredAt[connection] = at;
            drain.Triggered++;
            var detail = Describe($"drain: {drain.Triggered} triggered, {_meter.Connections} connections on the node");
            outcomes.Add(new ServerOutcome(PolicyKind.Drain, MigrationReason.Drain, GuardVerdict.Allowed, Trigger(connection, destination.Node, MigrationReason.Drain, detail), detail));
        }

        return (outcomes, new DrainProgress(drain.Triggered, _meter.Connections, at), null);
    }

    private void Shed(List<Projection> peers, Instant at, List<ServerOutcome> outcomes)
    {
        var wanted = (int)Math.Ceiling(_settings.ShedFraction * _meter.Connections);
        var count = Math.Clamp(wanted, 1, _settings.MaxMovesPerEvaluation);
        var perConnection = PerConnectionLoad();
        var detail = Describe($"load {LastLoad} >= overload threshold {_settings.OverloadThreshold}");
        if (peers.Count == 0)
        {
            outcomes.Add(new ServerOutcome(PolicyKind.Overload, MigrationReason.Overload, GuardVerdict.NoDestination, null, $"{detail}; no live peer to shed to"));
            return;
        }

        Move(count, () => LeastLoaded(peers), PolicyKind.Overload, MigrationReason.Overload, detail, at, outcomes, moved => moved.Load += perConnection);
    }

    private void Push(List<Projection> peers, Instant at, List<ServerOutcome> outcomes)
    {
        if (LeastLoaded(peers) is not { } least || LastLoad - least.Load < _settings.ImbalanceThreshold)
        {
            return;
        }

        // Move while a move narrows the gap to the least-loaded peer without inverting it: this halves the imbalance.
        var perConnection = PerConnectionLoad();
        var own = LastLoad;
        var detail = Describe($"load {LastLoad} exceeds {least.Node}'s {least.Load} by >= {_settings.ImbalanceThreshold}");
        Move(
            _settings.MaxMovesPerEvaluation,
            () => LeastLoaded(peers) is { } peer && own - peer.Load >= 2 * perConnection ? peer : null,
            PolicyKind.LoadBalancing,
            MigrationReason.LoadBalancePush,
            detail,
            at,
            outcomes,
            moved =>
            {
                own -= perConnection;
                moved.Load += perConnection;
            });
    }

    private PullConnections? PullRequest(List<Projection> peers, Instant at)
    {
        var most = peers.Count == 0 ? null : peers[^1];
        if (most is null || most.Load - LastLoad < _settings.ImbalanceThreshold)
        {
            return null;
        }

        var report = _peers[most.Node];
        var peerPerConnection = report.Connections > 0 && report.Load > 0 ? report.Load / report.Connections : 1;
        var count = (int)Math.Floor((most.Load - LastLoad) / 2 / peerPerConnection);
        return new PullConnections(Self, most.Node, LastLoad, Math.Clamp(count, 1, _settings.MaxMovesPerEvaluation), at);
    }

    /// <summary>
    /// Triggers up to <paramref name="count"/> connections, oldest first, each towards the destination
    /// <paramref name="nextDestination"/> names (null: no move would help, stop). Connections in their
    /// hold-down or ping-pong window are skipped; an empty token bucket stops the round. When a guard kept
    /// every move from happening, or the bucket ran dry, one outcome says so.
    /// </summary>
    private void Move(
        int count,
        Func<Projection?> nextDestination,
        PolicyKind policy,
        MigrationReason reason,
        string detail,
        Instant at,
        List<ServerOutcome> outcomes,
        Action<Projection> onMoved)
    {
        var moved = 0;
        var blocked = GuardVerdict.Allowed;
        foreach (var connection in _meter.OldestFirst())
        {
            if (moved == count)
            {
                break;
            }

            // No destination left where a move still helps: the round is done, nothing was held back.
            if (nextDestination() is not { } destination)
            {
                blocked = GuardVerdict.Allowed;
                break;
            }

            var verdict = _guard.TryAdmit(connection, Self, destination.Node, at);
            if (verdict == GuardVerdict.RateLimited)
            {
                blocked = verdict;
                break;
            }

            if (verdict != GuardVerdict.Allowed)
            {
                blocked = verdict;
                continue;
            }

            onMoved(destination);
            moved++;
            outcomes.Add(new ServerOutcome(policy, reason, GuardVerdict.Allowed, Trigger(connection, destination.Node, reason, detail), detail));
        }

        if (moved < count && blocked != GuardVerdict.Allowed && (moved == 0 || blocked == GuardVerdict.RateLimited))
        {
            outcomes.Add(new ServerOutcome(policy, reason, blocked, null, $"{detail}; held back: {blocked}"));
        }
    }

    private TriggerMigration Trigger(ConnectionId connection, ServerEndpoint destination, MigrationReason reason, string detail) =>
        new(connection, destination, reason, detail);

    /// <summary>Average load one connection contributes (1 for the connection count; 1 when nothing is known).</summary>
    private double PerConnectionLoad() =>
        _meter.Connections > 0 && LastLoad > 0 ? LastLoad / _meter.Connections : 1;

    /// <summary>Peers with a fresh report that are not draining, least loaded first (ties by endpoint, for determinism).</summary>
    private List<Projection> LivePeers(Instant at) => _peers.Values
        .Where(report => !report.Draining && at - report.At <= _settings.PeerReportExpiry)
        .OrderBy(report => report.Load)
        .ThenBy(report => report.Node.ToString(), StringComparer.Ordinal)
        .Select(report => new Projection(report.Node, report.Load))
        .ToList();

    private static Projection? LeastLoaded(List<Projection> peers)
    {
        Projection? least = null;
        foreach (var peer in peers)
        {
            if (least is null || peer.Load < least.Load)
            {
                least = peer;
            }
        }

        return least;
    }

    private static string Describe(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>A peer's load as reported, plus what this round's decisions have sent its way.</summary>
    private sealed class Projection(ServerEndpoint node, double load)
    {
        public ServerEndpoint Node { get; } = node;

        public double Load { get; set; } = load;
    }

    private sealed class DrainState(ServerEndpoint? destination, Instant startedAt, TokenBucket bucket)
    {
        public ServerEndpoint? Destination { get; } = destination;

        public Instant StartedAt { get; } = startedAt;

        public TokenBucket Bucket { get; } = bucket;

        public Dictionary<ConnectionId, Instant> TriggeredAt { get; } = [];

        public int Triggered { get; set; }

        public bool CompletionReported { get; set; }
    }
}

using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// A server node's policy actor (thesis 3.2.1, 6.2.2, 6.2.3): feeds the node's connections, traffic and
/// its peers' <see cref="NodeLoadReport"/>s into a <see cref="ServerMigrationPolicy"/>; at each evaluation
/// publishes this node's load report and any <see cref="PullConnections"/> through the injected cluster actor,
/// and tells every <see cref="TriggerMigration"/> to the injected decisions actor (the runtime, which sends
/// MIGRATE_TRIGGER). Operator commands are answered with <see cref="CommandAccepted"/> or
/// <see cref="CommandRejected"/>; a drain's <see cref="DrainProgress"/> and <see cref="DrainCompleted"/> go to
/// whoever sent <see cref="DrainNode"/>.
/// </summary>
public sealed class ServerPolicyActor : ReceiveActor, IWithTimers
{
    private const string EvaluationTimer = "evaluate";

    private readonly ServerMigrationPolicy _policy;
    private readonly ServerPolicySettings _settings;
    private readonly IActorRef _decisions;
    private readonly IActorRef _cluster;
    private readonly Func<Instant> _clock;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IActorRef _drainRequester = ActorRefs.Nobody;

    // With the cpu load source the actor samples its own process at each evaluation, unless the owner
    // sends ProcessorTimeSample itself (virtual time, or a process other than this one).
    private bool _sampleOwnProcessor = true;

    public ServerPolicyActor(ServerEndpoint self, ServerPolicySettings settings, IActorRef decisions, IActorRef cluster, Func<Instant> clock)
    {
        _settings = settings;
        _decisions = decisions;
        _cluster = cluster;
        _clock = clock;
        _policy = new ServerMigrationPolicy(self, settings, clock());

        Receive<EvaluationTick>(_ => Evaluate(_clock()));
        Receive<EvaluateLoad>(message => Evaluate(message.At));
        Receive<NodeLoadReport>(_policy.OnPeerLoad);
        Receive<ConnectionAccepted>(_policy.OnConnectionAccepted);
        Receive<ConnectionEnded>(OnConnectionEnded);
        Receive<BytesServed>(_policy.OnBytesServed);
        Receive<ApplicationLoad>(_policy.OnApplicationLoad);
        Receive<ProcessorTimeSample>(sample =>
        {
            _sampleOwnProcessor = false;
            _policy.OnProcessorTime(sample);
        });
        Receive<MigrationCompleted>(OnMigrationCompleted);
        Receive<MigrationFailed>(_policy.OnMigrationFailed);
        Receive<PullConnections>(request => Publish(_policy.OnPullRequest(request)));
        Receive<MigrateOneConnection>(OnMigrateOne);
        Receive<DrainNode>(OnDrain);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// Props for the actor. <paramref name="clock"/> is read only when the actor's own evaluation timer fires
    /// (<c>evaluation-interval</c> &gt; 0) and once at start; with <c>evaluation-interval = 0s</c> the owner
    /// sends <see cref="EvaluateLoad"/> with the time.
    /// </summary>
    public static Props Props(ServerEndpoint self, ServerPolicySettings settings, IActorRef decisions, IActorRef cluster, Func<Instant> clock)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(decisions);
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(clock);
        return Akka.Actor.Props.Create(() => new ServerPolicyActor(self, settings, decisions, cluster, clock));
    }

    protected override void PreStart()
    {
        if (_settings.EvaluationInterval > TimeSpan.Zero)
        {
            Timers.StartPeriodicTimer(EvaluationTimer, EvaluationTick.Instance, _settings.EvaluationInterval);
        }
    }

    private void Evaluate(Instant at)
    {
        if (_settings.LoadSource == LoadSource.Cpu && _sampleOwnProcessor)
        {
            using var process = Process.GetCurrentProcess();
            _policy.OnProcessorTime(new ProcessorTimeSample(process.TotalProcessorTime, Environment.ProcessorCount, at));
        }

        var evaluation = _policy.Evaluate(at);
        _cluster.Tell(evaluation.Report);
        Publish(evaluation.Outcomes);
        if (evaluation.Pull is { } pull)
        {
            _log.Info("Load balancing asks {0} for {1} connections: own load {2}", pull.LoadedPeer, pull.Count, pull.RequesterLoad);
            _cluster.Tell(pull);
        }

        ReportDrain(evaluation.DrainProgress, evaluation.DrainCompleted);
    }

    private void OnConnectionEnded(ConnectionEnded message)
    {
        _policy.OnConnectionEnded(message);
        CompleteDrainIfEmpty(message.At);
    }

    private void OnMigrationCompleted(MigrationCompleted message)
    {
        _policy.OnMigrationCompleted(message);
        CompleteDrainIfEmpty(message.At);
    }

    private void CompleteDrainIfEmpty(Instant at)
    {
        if (_policy.Draining && _policy.Connections == 0)
        {
            var (outcomes, progress, completed) = _policy.StepDrain(at);
            Publish(outcomes);
            ReportDrain(progress, completed);
        }
    }

    private void OnMigrateOne(MigrateOneConnection command)
    {
        var (outcome, rejection) = _policy.MigrateOne(command);
        if (outcome is null)
        {
            _log.Warning("Operator command to migrate {0} refused: {1}", command.Connection, rejection);
            Sender.Tell(new CommandRejected(command, rejection ?? "refused"));
            return;
        }

        Sender.Tell(new CommandAccepted(command));
        Publish([outcome]);
    }

    private void OnDrain(DrainNode command)
    {
        if (_policy.StartDrain(command) is { } rejection)
        {
            _log.Warning("Drain refused: {0}", rejection);
            Sender.Tell(new CommandRejected(command, rejection));
            return;
        }

        _log.Info("Draining {0} connections towards {1}", _policy.Connections, command.Destination?.ToString() ?? "the least-loaded peers");
        _drainRequester = Sender;
        Sender.Tell(new CommandAccepted(command));
        var (outcomes, progress, completed) = _policy.StepDrain(command.At);
        Publish(outcomes);
        ReportDrain(progress, completed);
    }

    private void ReportDrain(DrainProgress? progress, DrainCompleted? completed)
    {
        if (progress is not null)
        {
            _drainRequester.Tell(progress);
        }

        if (completed is not null)
        {
            _log.Info("Drain completed: {0} triggers in {1}", completed.Triggered, completed.Elapsed);
            _drainRequester.Tell(completed);
        }
    }

    private void Publish(IReadOnlyList<ServerOutcome> outcomes)
    {
        foreach (var outcome in outcomes)
        {
            if (outcome.Decision is not { } decision)
            {
                _log.Debug("{0} policy held back ({1}): {2}", outcome.Policy, outcome.Verdict, outcome.Detail);
                PolicyMetrics.CountSuppressed(outcome.Policy, outcome.Verdict);
                continue;
            }

            _log.Info("{0} policy triggers migration of {1} to {2}: {3} ({4})", outcome.Policy, decision.Connection, decision.Destination, decision.Reason, decision.Detail);
            PolicyMetrics.CountDecision(outcome.Policy, decision.Reason);
            _decisions.Tell(decision);
        }
    }

    private sealed class EvaluationTick
    {
        public static readonly EvaluationTick Instance = new();

        private EvaluationTick()
        {
        }
    }
}

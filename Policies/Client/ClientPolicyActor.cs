using Akka.Actor;
using Akka.Event;
using Mtcp.Stack;

namespace Mtcp.Policies;

/// <summary>
/// The client agent's policy actor: feeds the observations the runtime sends it into a
/// <see cref="ClientMigrationPolicy"/> and tells every admitted <see cref="MigrateConnection"/> to the
/// injected decisions actor (the runtime, which initiates the migration). Every decision is logged with its
/// reason and counted; suppressed ones are logged at debug level and counted. Time comes in the messages.
/// </summary>
public sealed class ClientPolicyActor : ReceiveActor
{
    private readonly ClientMigrationPolicy _policy;
    private readonly IActorRef _decisions;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public ClientPolicyActor(ClientPolicySettings settings, IActorRef decisions, Instant start)
    {
        _policy = new ClientMigrationPolicy(settings, start);
        _decisions = decisions;

        Receive<SegmentObserved>(message => Publish(_policy.OnSegment(message)));
        Receive<SegmentDelay>(message => Publish(_policy.OnSegmentDelay(message)));
        Receive<RequestCompleted>(message => Publish(_policy.OnRequestCompleted(message)));
        Receive<ConnectionAlternatesChanged>(_policy.OnServersChanged);
        Receive<MigrationCompleted>(_policy.OnMigrationCompleted);
        Receive<MigrationFailed>(_policy.OnMigrationFailed);
        Receive<ConnectionClosed>(_policy.OnClosed);
    }

    /// <summary>
    /// Props for the actor. <paramref name="start"/> is the instant the token bucket starts full at, on the
    /// same clock as the observations' timestamps.
    /// </summary>
    public static Props Props(ClientPolicySettings settings, IActorRef decisions, Instant start)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(decisions);
        return Akka.Actor.Props.Create(() => new ClientPolicyActor(settings, decisions, start));
    }

    private void Publish(ClientOutcome? outcome)
    {
        if (outcome is null)
        {
            return;
        }

        var decision = outcome.Decision;
        if (outcome.Verdict != GuardVerdict.Allowed)
        {
            _log.Debug("{0} policy held back migrating {1} ({2}: {3}): {4}", outcome.Policy, decision.Connection, decision.Reason, decision.Detail, outcome.Verdict);
            PolicyMetrics.CountSuppressed(outcome.Policy, outcome.Verdict);
            return;
        }

        _log.Info("{0} policy migrates {1} to {2}: {3} ({4})", outcome.Policy, decision.Connection, decision.Destination, decision.Reason, decision.Detail);
        PolicyMetrics.CountDecision(outcome.Policy, decision.Reason);
        _decisions.Tell(decision);
    }
}

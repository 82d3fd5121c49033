namespace Mtcp.Stack.Migration;

/// <summary>
/// What the requesting node does next with a state request in the race between a live origin and this node's replica
/// (<see cref="SilentOriginRace{TAnswer}"/>).
/// </summary>
public enum SilentOriginStep
{
    /// <summary>Nothing yet: the request stays pending.</summary>
    Wait,

    /// <summary>The origin has been silent too long: ask the replica keeper whether it answers instead.</summary>
    AskReplica,

    /// <summary>Hand the origin's answer (<see cref="SilentOriginRace{TAnswer}.OriginAnswer"/>) to the requester; the request ends.</summary>
    DeliverOrigin,

    /// <summary>The origin's answer came after the request ended: never delivered, never acknowledged.</summary>
    DropOrigin,

    /// <summary>The request ends unanswered, as it would without a replica (its deadline passed, or its origin was lost).</summary>
    EndRequest,

    /// <summary>
    /// The replica answered the requester: the request ends, and whatever the origin sent or sends is not used. An
    /// origin answer held meanwhile (<see cref="SilentOriginRace{TAnswer}.OriginAnswer"/>) is to be fenced as for
    /// <see cref="FenceOrigin"/>.
    /// </summary>
    ReplicaAnswered,

    /// <summary>
    /// The origin's answer came after the replica answered: not used, but a state reply is acknowledged, so that the
    /// origin drops the connection exactly as after a planned migration (the fence names the reply it sent, so it
    /// cannot hit a later incarnation of the connection on the same 4-tuple).
    /// </summary>
    FenceOrigin,
}

/// <summary>
/// A state request that a buddy sent to a live origin, as a race between the origin's answer and the replica's
/// (buddy replication, beyond the thesis; docs/failover.md, "Takeover from a silent origin"). An origin that is alive but
/// overloaded answers late; its client's failover gives a destination only <c>special-syn-timeout</c> to answer the
/// special SYN, so when the origin has not answered within <c>mtcp.control.silent-origin-takeover</c> the buddy's
/// replica answers instead, exactly as after a crash, and the origin is fenced. Exactly one answer reaches the
/// requester:
/// <list type="number">
/// <item>the origin answers before its silence is noticed: its answer is delivered (a planned migration);</item>
/// <item>the silence is noticed: the replica keeper is asked, once; an answer of the origin's that comes meanwhile is
/// held, not delivered, until the keeper decides;</item>
/// <item>the keeper answered from the replica (a reply, or a reject when the special SYN's authenticator does not
/// verify): the request ends there; the held or any later origin answer is not used, and a state reply among them is
/// acknowledged: the state ack that fences the origin, naming the reply it sent;</item>
/// <item>the keeper has no replica of the origin's here (this node is not the buddy, or it is leaving the cluster): the
/// held origin answer is delivered, or the request keeps waiting for one until its own deadline;</item>
/// <item>the request's deadline or the origin's loss while the keeper decides is deferred until it has decided: the
/// replica may still answer.</item>
/// </list>
/// Deterministic and clock-free: the driver (the control connection) turns its timers and messages into these calls.
/// </summary>
/// <typeparam name="TAnswer">how the driver carries an origin's answer.</typeparam>
public sealed class SilentOriginRace<TAnswer>
    where TAnswer : class
{
    private Phase _phase = Phase.AwaitingOrigin;

    private enum Phase
    {
        /// <summary>Sent to the origin; its silence not yet noticed.</summary>
        AwaitingOrigin,

        /// <summary>The replica keeper is deciding.</summary>
        AskingReplica,

        /// <summary>The keeper has no replica for it: only the origin can answer, until the request's deadline.</summary>
        OriginOnly,

        /// <summary>Answered by the replica: the origin's answer, whenever it comes, is fenced.</summary>
        TakenOver,

        /// <summary>Answered by the origin, or given up.</summary>
        Ended,
    }

    /// <summary>The origin's answer to deliver on <see cref="SilentOriginStep.DeliverOrigin"/>, or held while the keeper decides.</summary>
    public TAnswer? OriginAnswer { get; private set; }

    /// <summary>Whether the request's own end (deadline or lost origin) came while the keeper decided.</summary>
    public bool EndDeferred { get; private set; }

    /// <summary>Whether the request has ended (answered, by either, or given up).</summary>
    public bool IsEnded => _phase is Phase.Ended or Phase.TakenOver;

    /// <summary>Whether the replica answered: the origin's answer, held or to come, is to be fenced.</summary>
    public bool IsTakenOver => _phase == Phase.TakenOver;

    /// <summary>The origin stayed silent for <c>silent-origin-takeover</c>: ask the replica keeper, at most once.</summary>
    public SilentOriginStep OriginSilent()
    {
        if (_phase != Phase.AwaitingOrigin)
        {
            return SilentOriginStep.Wait;
        }

        _phase = Phase.AskingReplica;
        return SilentOriginStep.AskReplica;
    }

    /// <summary>The origin answered (a reply or a reject; the first one counts).</summary>
    public SilentOriginStep OriginAnswered(TAnswer answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        switch (_phase)
        {
            case Phase.AwaitingOrigin or Phase.OriginOnly:
                OriginAnswer = answer;
                _phase = Phase.Ended;
                return SilentOriginStep.DeliverOrigin;
            case Phase.AskingReplica:
                OriginAnswer ??= answer;
                return SilentOriginStep.Wait;
            case Phase.TakenOver:
                return SilentOriginStep.FenceOrigin;
            default:
                return SilentOriginStep.DropOrigin;
        }
    }

    /// <summary>
    /// The request's deadline passed, or its origin was lost: it ends now (<see cref="SilentOriginStep.EndRequest"/>,
    /// also when it has already ended), or once the keeper has decided (<see cref="SilentOriginStep.Wait"/>).
    /// </summary>
    public SilentOriginStep RequestEnding()
    {
        if (_phase == Phase.AskingReplica)
        {
            EndDeferred = true;
            return SilentOriginStep.Wait;
        }

        if (_phase != Phase.TakenOver)
        {
            _phase = Phase.Ended;
        }

        return SilentOriginStep.EndRequest;
    }

    /// <summary>
    /// The replica keeper decided: it answered the requester from its replica (<paramref name="answered"/>; with the
    /// state, <paramref name="tookOver"/>, or with a reject: the special SYN's authenticator did not verify), or it holds
    /// none for this request. Only a takeover fences the origin: after a reject nobody else serves the connection, and
    /// the origin's answer is dropped as after any request that ended.
    /// </summary>
    public SilentOriginStep ReplicaDecided(bool answered, bool tookOver)
    {
        if (_phase != Phase.AskingReplica)
        {
            return SilentOriginStep.Wait;
        }

        if (answered)
        {
            if (!tookOver)
            {
                OriginAnswer = null;
            }

            _phase = tookOver ? Phase.TakenOver : Phase.Ended;
            return SilentOriginStep.ReplicaAnswered;
        }

        if (OriginAnswer is not null)
        {
            _phase = Phase.Ended;
            return SilentOriginStep.DeliverOrigin;
        }

        if (EndDeferred)
        {
            _phase = Phase.Ended;
            return SilentOriginStep.EndRequest;
        }

        _phase = Phase.OriginOnly;
        return SilentOriginStep.Wait;
    }
}

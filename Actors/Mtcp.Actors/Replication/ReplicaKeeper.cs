using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Migration;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

/// <summary>
/// One per server node, a child of its control connection manager: the buddy's side of buddy replication.
/// <list type="bullet">
/// <item>Replicas: it keeps what other nodes send (a <see cref="ReplicaStore{TOrigin}"/> keyed by origin node) and
/// answers each update that completes a state or extends its read log with an ack, on the control connection it came on.</item>
/// <item>Takeover: when the cluster's failure detector marks an origin unreachable and the split-brain resolver keeps
/// this node's side (<see cref="KeptSide"/>; under another downing, once the origin is downed), it sends the client of each of its
/// connections a MIGRATE_TRIGGER naming this node, signed under the replicated credential, through the packet actor
/// listening on the connection's port; the client's special SYN then finds the origin lost, and the state request
/// comes here (<see cref="AnswerFromReplica"/>): the replica answers it as the origin would have, and the new
/// endpoint reinstates it exactly as after a planned migration.</item>
/// <item>Takeover from a silent origin: when the live origin of a connection replicated here leaves the state request
/// of its client's special SYN unanswered for <c>mtcp.control.silent-origin-takeover</c>, the control connection asks
/// (<see cref="TakeOverFromSilentOrigin"/>) and the replica answers as above; the control connection acknowledges the
/// origin's late answer, and the origin drops the connection silently. Its updates of that connection are no longer
/// acknowledged from the moment the replica answers.</item>
/// <item>Fencing: when a node whose connections were taken over is reachable again (it was only partitioned), it is
/// sent a state ack for each of them: it drops them silently, as an origin does after a migration, while the client
/// already blackholes it.</item>
/// <item>Fencing the other way: a node on the side the resolver downs, or downed or removed itself, takes nothing over
/// and answers no state request from a replica: it is leaving, and the clients it called over would leave with it.</item>
/// </list>
/// Every decision is <see cref="ReplicaTakeover{TOrigin}"/>'s (sans-IO, the same the crash simulator drives): this actor
/// only turns cluster events and messages into its calls, and its answers into messages, log lines and metrics.
/// </summary>
internal sealed class ReplicaKeeper : ReceiveActor, IWithTimers
{
    public const string ActorName = "replicas";

    /// <summary>Every decision: which replica came from which node, which nodes are lost, what was taken over.</summary>
    private readonly ReplicaTakeover<Address> _takeover;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IpAddress, IActorRef> _transports = [];

    private IMigrationAuthenticator? _authenticator;

    /// <summary>This node's view of the membership, as the split-brain resolver counts it (<see cref="KeptSide"/>).</summary>
    private readonly Dictionary<UniqueAddress, SplitMember> _members = [];
    private readonly HashSet<UniqueAddress> _unreachable = [];

    /// <summary>This node, once known to be a cluster member; null without Akka.Cluster (no resolver, no split).</summary>
    private UniqueAddress? _self;

    /// <summary>Whether the resolver keeps the majority (and which role it counts): otherwise a buddy waits for the down.</summary>
    private readonly bool _keepMajority;
    private readonly string _role;

    /// <summary>Unreachable origins not taken over because this side may be downed: logged once each.</summary>
    private readonly HashSet<Address> _waiting = [];

    /// <summary>
    /// How long the view must stay unchanged before an unreachable origin is taken over (<c>mtcp.cluster.takeover-settle</c>).
    /// The detector marks the members across a split one at a time, and the first of them alone would put this node on
    /// a majority it does not have.
    /// </summary>
    private readonly TimeSpan _stableAfter;

    /// <summary>No membership or reachability change for <see cref="_stableAfter"/>: the far side of a split is all marked.</summary>
    private bool _stable;

    /// <summary>Takeover triggers to send again until their client's special SYN comes (<c>mtcp.cluster.takeover-trigger-*</c>).</summary>
    private readonly TakeoverTriggerResends _triggerResends;
    private readonly MonotonicClock _clock = new();

    public const string TakeoverTriggerIntervalPath = "mtcp.cluster.takeover-trigger-interval";
    public const string TakeoverTriggerResendsPath = "mtcp.cluster.takeover-trigger-resends";

    public ReplicaKeeper(ControlSettings settings)
    {
        _takeover = new ReplicaTakeover<Address>(settings.MaxStateReplySize);
        _keepMajority = KeptSide.IsKeepMajority(Context.System.Settings.Config, out _role);
        _stableAfter = KeptSide.TakeoverSettle(Context.System.Settings.Config);
        _triggerResends = TriggerResends(Context.System.Settings.Config);
        Receive<ReplicaUpdateReceived>(Apply);
        Receive<UseControlAuthenticator>(use => _authenticator = use.Authenticator);
        Receive<ReplicaTakeoverTransport>(transport => _transports[transport.Address] = transport.PacketActor);
        Receive<AnswerFromReplica>(Answer);
        Receive<TakeOverFromSilentOrigin>(AnswerForSilentOrigin);
        Receive<StateAck>(Reinstated);
        Receive<ClusterEvent.UnreachableMember>(unreachable =>
        {
            See(unreachable.Member);
            _unreachable.Add(unreachable.Member.UniqueAddress);
            Reconsider();
        });
        Receive<ResendTakeoverTriggers>(_ => ResendTriggers());
        Receive<ViewStable>(_ =>
        {
            _stable = true;
            Reconsider();
        });
        Receive<ClusterEvent.ReachableMember>(reachable =>
        {
            See(reachable.Member);
            _unreachable.Remove(reachable.Member.UniqueAddress);
            _waiting.Remove(reachable.Member.Address);
            Fence(reachable.Member.Address);

            // One side of a split fewer: an origin still unreachable may now be on the far side of the kept one.
            Reconsider();
        });
        Receive<ClusterEvent.MemberRemoved>(removed =>
        {
            var member = removed.Member;
            _unreachable.Remove(member.UniqueAddress);
            if (member.UniqueAddress.Equals(_self))
            {
                See(member);
                return;
            }

            _members.Remove(member.UniqueAddress);
            if (MayTakeOver(member.Address, out _))
            {
                Lose(member.Address, "left the cluster");
            }

            // Removed for good: a node coming back is a new incarnation that never held these connections.
            _takeover.Removed(member.Address);
            _waiting.Remove(member.Address);
            Reconsider();
        });

        // A node back at the same address is a new incarnation: not lost (its next crash is taken over again), and it
        // holds nothing that was taken over from its predecessor.
        Receive<ClusterEvent.MemberUp>(up =>
        {
            See(up.Member);
            _takeover.Rejoined(up.Member.Address);
            Reconsider();
        });

        // Downed (a member downed as crashed by CrashedMemberDowning may never have been unreachable: its process died,
        // its kernel closed its connections, and the node downed it before any heartbeat was missed), joining, leaving.
        Receive<ClusterEvent.IMemberEvent>(changed =>
        {
            See(changed.Member);
            Reconsider();
        });
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        Receive<GetReplicaStatistics>(_ => Sender.Tell(new ReplicaStatistics(_takeover.HeldByOrigin(), _takeover.TakenOverByOrigin(), _takeover.TakenOverFromSilentOrigin)));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ControlSettings settings) => Akka.Actor.Props.Create(() => new ReplicaKeeper(settings));

    protected override void PreStart()
    {
        if (((ExtendedActorSystem)Context.System).Provider is ClusterActorRefProvider)
        {
            _self = Akka.Cluster.Cluster.Get(Context.System).SelfUniqueAddress;
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(
                Self,
                ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(ClusterEvent.IReachabilityEvent),
                typeof(ClusterEvent.IMemberEvent));
        }
    }

    protected override void PostStop()
    {
        if (((ExtendedActorSystem)Context.System).Provider is ClusterActorRefProvider)
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        }

        MigrationMetrics.ReplicasHeld.Add(-_takeover.Store.Count);
        base.PostStop();
    }

    private void Apply(ReplicaUpdateReceived received)
    {
        var before = _takeover.Store.Count;
        var refused = _takeover.RefusedUpdates;
        var ack = _takeover.Apply(received.Origin, received.Update);
        if (_takeover.RefusedUpdates != refused)
        {
            MigrationMetrics.RefusedUpdates.Add(1);
            _log.Debug("update {0} from {1} is about a connection answered for from its replica here; not acknowledged", received.Update.RequestId, received.Origin);
        }

        if (ack is not null)
        {
            Sender.Tell(new ReplicateToPeer(ack));
            if (ack.Status == ReplicaAckStatus.NeedsState)
            {
                _log.Info("replica of {0} from {1} could not take update {2}; asked for the whole state", ack.Cid, received.Origin, ack.RequestId);
            }
        }

        MigrationMetrics.ReplicasHeld.Add(_takeover.Store.Count - before);
    }

    /// <summary>The member's latest status, as the resolver counts it; the view is stable again only after <see cref="_stableAfter"/>.</summary>
    private void See(Member member)
    {
        _members[member.UniqueAddress] = new SplitMember(member.UniqueAddress, member.Status, member.Roles);
        _stable = false;
        Timers.StartSingleTimer(ViewStable.Instance, ViewStable.Instance, _stableAfter);
    }

    /// <summary>Every member downed, or unreachable, whose connections this node may take over now, is lost.</summary>
    private void Reconsider()
    {
        foreach (var member in _members.Values.ToList())
        {
            var unreachable = _unreachable.Contains(member.Node);
            // A member leaving gracefully is lost only once removed: it drains its connections until then.
            if (member.Node.Equals(_self) || !(unreachable || member.Status == MemberStatus.Down))
            {
                continue;
            }

            // Unreachable, not downed: decided only on a view that has settled.
            var origin = member.Node.Address;
            if (member.Status != MemberStatus.Down && !_stable)
            {
                continue;
            }

            if (MayTakeOver(origin, out var why))
            {
                _waiting.Remove(origin);
                Lose(origin, member.Status == MemberStatus.Down ? "was downed" : "is unreachable");
            }
            else if (!_takeover.IsLost(origin) && _takeover.Store.HeldFrom(origin).Count > 0 && _waiting.Add(origin))
            {
                _log.Warning("{0} is {1}, but this node takes none of its connections over: {2}", origin, unreachable ? "unreachable" : member.Status.ToString(), why);
            }
        }
    }

    /// <summary>
    /// Whether this node may take <paramref name="origin"/>'s connections over (a trigger to their clients, a state
    /// reply from their replicas): never when this node is leaving the cluster or on the side the resolver downs; an
    /// origin neither downed nor removed, only under <c>keep-majority</c>, when the resolver keeps this side.
    /// </summary>
    private bool MayTakeOver(Address origin, out string why)
    {
        if (_self is null)
        {
            // No cluster: nothing decides sides, and the control connection's loss is the only word.
            why = "no cluster";
            return true;
        }

        var members = _members.Values.ToList();
        var decision = KeptSide.Decide(_self, members, _unreachable, _role);
        var originMember = members.Where(member => member.Node.Address.Equals(origin)).Select(member => (SplitMember?)member).LastOrDefault();
        var gone = originMember is null or { Status: MemberStatus.Down or MemberStatus.Exiting or MemberStatus.Removed };
        if (IsLeaving(out why))
        {
            return false;
        }

        if (!gone && !_stable && originMember is { } unsettled && _unreachable.Contains(unsettled.Node))
        {
            why = $"the cluster's view has not been unchanged for {_stableAfter.TotalSeconds:0.###} s (mtcp.cluster.takeover-settle)";
            return false;
        }

        if (!_keepMajority)
        {
            why = gone ? "downed" : "the split-brain resolver is not keep-majority: waiting for it to be downed";
            return gone;
        }

        why = decision.Kept
            ? decision.Why
            : $"the split-brain resolver (keep-majority) downs this side: {decision.Why} ({decision.ThisSide} here, {decision.OtherSide} across){(gone ? string.Empty : "; waiting for it to be downed")}";
        return decision.Kept;
    }

    /// <summary>Whether this node is downed, exiting or removed: it takes nothing over, the clients would leave with it.</summary>
    private bool IsLeaving(out string why)
    {
        var self = _self is null ? MemberStatus.Up : _members.TryGetValue(_self, out var known) ? known.Status : MemberStatus.Removed;
        why = $"this node is {self}";
        return self is MemberStatus.Down or MemberStatus.Exiting or MemberStatus.Removed;
    }

    /// <summary>The origin is lost: every client of its connections held here is asked to come to this node.</summary>
    private void Lose(Address origin, string how)
    {
        var held = _takeover.Lose(origin);
        if (held.Count == 0)
        {
            return;
        }

        if (_authenticator is not { } authenticator)
        {
            _log.Warning("{0} is lost with {1} connections replicated here, but this node has no cluster key to sign triggers", origin, held.Count);
            return;
        }

        var triggered = 0;
        var now = _clock.Now;
        foreach (var cid in held)
        {
            var sent = SendTrigger(cid, authenticator);
            if (sent > 0)
            {
                _triggerResends.Sent(cid, now);
            }

            triggered += sent;
        }

        _log.Warning("{0} {1}: taking over its {2} replicated connections here (MIGRATE_TRIGGER sent {3} times)", origin, how, held.Count, triggered);
        MigrationMetrics.TakeoverTriggers.Add(triggered);
        ArmTriggerResends();
    }

    /// <summary>The takeover trigger of <paramref name="cid"/>, signed for each of this node's transports of its family: how many went.</summary>
    private int SendTrigger(ConnectionId cid, IMigrationAuthenticator authenticator)
    {
        var sent = 0;
        foreach (var (address, packetActor) in _transports)
        {
            if (address.IsIPv4 == cid.ClientAddress.IsIPv4
                && _takeover.Store.TryCreateTakeoverTrigger(cid, new ServerEndpoint(address, cid.ServerPort), authenticator, out var trigger))
            {
                packetActor.Tell(new SendTakeoverTrigger(cid, trigger));
                sent++;
            }
        }

        return sent;
    }

    /// <summary>
    /// The triggers whose client has not sent its special SYN yet go again, while the replica is held and its origin
    /// still lost (a trigger is one segment: lost, it left the client to its own silence detection).
    /// </summary>
    private void ResendTriggers()
    {
        var resent = 0;
        foreach (var cid in _triggerResends.Due(_clock.Now))
        {
            if (_authenticator is { } authenticator && _takeover.Store.TryGetOrigin(cid, out var origin) && _takeover.IsLost(origin))
            {
                resent += SendTrigger(cid, authenticator);
            }
            else
            {
                _triggerResends.Forget(cid);
            }
        }

        if (resent > 0)
        {
            _log.Info("MIGRATE_TRIGGER sent again {0} times: their clients' special SYNs have not come yet", resent);
            MigrationMetrics.TakeoverTriggers.Add(resent);
        }

        ArmTriggerResends();
    }

    private void ArmTriggerResends()
    {
        if (_triggerResends.NextDue is { } due && !Timers.IsTimerActive(ResendTakeoverTriggers.Instance))
        {
            Timers.StartSingleTimer(ResendTakeoverTriggers.Instance, ResendTakeoverTriggers.Instance, due - _clock.Now);
        }
    }

    /// <summary>Reads <c>mtcp.cluster.takeover-trigger-interval</c> and <c>-resends</c> (HOCON/mtcp-reference.conf).</summary>
    private static TakeoverTriggerResends TriggerResends(Akka.Configuration.Config config)
    {
        var interval = HoconValues.Duration(config, TakeoverTriggerIntervalPath, allowZero: false);
        var resends = config.GetInt(TakeoverTriggerResendsPath, -1);
        return resends >= 0
            ? new TakeoverTriggerResends(interval, resends)
            : throw new Akka.Configuration.ConfigurationException($"{TakeoverTriggerResendsPath} must be a count, 0 or more (0: the trigger goes once), not {config.GetString(TakeoverTriggerResendsPath, "missing")}");
    }

    private void Answer(AnswerFromReplica answer)
    {
        var request = answer.Request;
        _triggerResends.Answered(request.MigratingCid);
        if (answer.Origin is { } lost && !_takeover.IsLost(lost) && !MayTakeOver(lost, out var why))
        {
            // The control connection found the origin gone, but this side must not serve its replicas.
            _log.Warning("not answering a state request of {0} from the replica of {1}: {2}", request.MigratingCid, lost, why);
            answer.ReplyTo.Tell(new StateRequestFailed(lost, request.RequestId, request.NewEndpointCid, answer.Failure));
            return;
        }

        var reply = answer.Origin is { } reported
            ? _takeover.AnswerStateRequest(request, reported, _authenticator, out var origin, out var firstCid, out var check)
            : _takeover.AnswerStateRequest(request, _authenticator, out origin, out firstCid, out check);
        switch (reply)
        {
            case null:
                answer.ReplyTo.Tell(new StateRequestFailed(answer.Origin ?? Address.AllSystems, request.RequestId, request.NewEndpointCid, answer.Failure));
                return;
            case StateReply:
                _log.Info("answering the special SYN of cid {0} (now {1}, origin {2} lost) from its replica", firstCid, request.MigratingCid, origin);
                break;
            case StateReject reject:
                _log.Warning("replica of {0} refused a state request: {1} {2} ({3})", request.MigratingCid, reject.Reason, reject.Diagnostic, check);
                break;
        }

        answer.ReplyTo.Tell(reply, Self);
    }

    /// <summary>
    /// The live origin left a special SYN's state request unanswered: the replica answers if it is that origin's (this
    /// node is its buddy and is not leaving); the control connection learns which, and drops the origin's answer if so.
    /// </summary>
    private void AnswerForSilentOrigin(TakeOverFromSilentOrigin silent)
    {
        var request = silent.Request;
        ControlMessage? reply = null;
        var firstCid = request.MigratingCid;
        var check = MigratedConnectionCheck.Forged;
        if (IsLeaving(out var why))
        {
            if (_takeover.Store.TryGetOrigin(request.MigratingCid, out _))
            {
                _log.Info("not answering the state request of {0} from its replica while {1} is silent: {2}", request.MigratingCid, silent.Origin, why);
            }
        }
        else
        {
            reply = _takeover.AnswerForSilentOrigin(request, silent.Origin, _authenticator, out firstCid, out check);
        }

        Sender.Tell(new SilentOriginDecided(request.RequestId, reply is not null, reply is StateReply));
        switch (reply)
        {
            case null:
                return;
            case StateReply:
                _log.Warning("answering the special SYN of cid {0} (now {1}) from its replica: its origin {2} is a member but has not answered the state request (mtcp.control.silent-origin-takeover)", firstCid, request.MigratingCid, silent.Origin);
                break;
            case StateReject reject:
                _log.Warning("replica of {0} refused a state request while its origin {1} is silent: {2} {3} ({4})", request.MigratingCid, silent.Origin, reject.Reason, reject.Diagnostic, check);
                break;
        }

        silent.ReplyTo.Tell(reply, Self);
    }

    /// <summary>The new endpoint reinstated the replica: the connection is served here now; a live origin is fenced at once.</summary>
    private void Reinstated(StateAck ack)
    {
        var before = _takeover.Store.Count;
        if (!_takeover.Reinstated(ack.MigratingCid, out var origin, out var firstCid, out var fence))
        {
            return;
        }

        MigrationMetrics.ReplicasHeld.Add(_takeover.Store.Count - before);
        MigrationMetrics.TakenOver.Add(1);
        if (fence is null)
        {
            _log.Warning("took over cid {0} (as {1}) from {2}", firstCid, ack.MigratingCid, origin);
            return;
        }

        // Told now, not only when its late answer comes (that answer may never be sent): the notice names the epoch of
        // the incarnation taken over, so it cannot drop a later one that came back to the origin on the same 4-tuple.
        MigrationMetrics.TakenOverFromSilentOrigin.Add(1);
        Context.Parent.Tell(new NotifyTakenOver(origin, fence));
        _log.Warning("took over cid {0} (as {1}, epoch {2}) from {3}, which did not answer in time: told it to drop the connection", firstCid, ack.MigratingCid, fence.Epoch, origin);
    }

    /// <summary>A lost node is reachable again: it must drop what was taken over from it (a notice per connection, naming the incarnation).</summary>
    private void Fence(Address origin)
    {
        var fenced = _takeover.Reachable(origin);
        foreach (var notice in fenced)
        {
            Context.Parent.Tell(new NotifyTakenOver(origin, notice));
        }

        if (fenced.Count > 0)
        {
            _log.Warning("{0} is reachable again: told it to drop the {1} connections taken over from it", origin, fenced.Count);
        }
    }
}

/// <summary>Timer key and message of a <see cref="ReplicaKeeper"/>: takeover triggers may be due to go again.</summary>
internal sealed class ResendTakeoverTriggers
{
    public static readonly ResendTakeoverTriggers Instance = new();

    private ResendTakeoverTriggers()
    {
    }
}

/// <summary>The membership and reachability seen by a <see cref="ReplicaKeeper"/> did not change for <c>mtcp.cluster.takeover-settle</c>.</summary>
internal sealed class ViewStable
{
    public static readonly ViewStable Instance = new();

    private ViewStable()
    {
    }
}

using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Mtcp.Actors.Diagnostics;
using Mtcp.Stack.Migration.Authentication;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// One per server node, at <c>/user/mtcp-directory</c> (<see cref="ActorName"/>): turns the Akka.Cluster
/// membership into the alternate-server list (TCP_ADDSERVERS) and the service-to-control mapping
/// (TCP_CONTROL_MAPPINGS) of thesis 4.2.3, so nobody lists servers by hand. Member metadata in Akka.Cluster is
/// limited to roles and an app version, so each directory sends a <see cref="ServiceAnnouncement"/> to the
/// directory of every member that comes Up (by member address and this well-known path); an announcement with
/// <see cref="ServiceAnnouncement.ReplyRequested"/> set is answered with this node's own, and members Up but
/// silent are asked again every <c>mtcp.cluster.announce-retry-interval</c> (a directory may start after the
/// first announcement to it was sent). The view logic is in <see cref="ServiceDirectoryState"/>.
/// Subscribers get <see cref="AlternateServersChanged"/> on every change. With the cluster key the directory signs its
/// announcements (<see cref="SignedServiceAnnouncement"/>) and takes only signed ones that name the node they came
/// from; without it (migration off) it sends and takes them unsigned. Every one dropped is counted in
/// <c>mtcp.cluster.announcement.refused</c>.
/// </summary>
internal sealed class ServiceDirectory : ReceiveActor, IWithTimers
{
    /// <summary>The well-known name other members address this actor by; it must be a child of <c>/user</c>.</summary>
    public const string ActorName = "mtcp-directory";

    private const string AnnounceRetryTimer = "announce-retry";

    private readonly Akka.Cluster.Cluster _cluster;
    private readonly ClusterSettings _settings;
    private readonly IMigrationAuthenticator? _signer;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RefusalLog _refusals = RefusalLog.Get(Context.System);
    private readonly HashSet<IActorRef> _subscribers = [];
    private ServiceDirectoryState _state;

    public ServiceDirectory(ClusterSettings settings, IMigrationAuthenticator? signer, ushort replicationChannelPort)
    {
        _settings = settings;
        _signer = signer;
        _cluster = Akka.Cluster.Cluster.Get(Context.System);
        _state = ServiceDirectoryState.Initial(new ServiceAnnouncement(settings.ServiceEndpoints, _cluster.SelfAddress, replyRequested: false, replicationChannelPort));

        Receive<ClusterEvent.MemberUp>(up =>
        {
            Update(_state.WithMemberUp(up.Member.Address));
            if (!up.Member.Address.Equals(_cluster.SelfAddress))
            {
                Announce(up.Member.Address, replyRequested: !_state.HasAnnouncementFrom(up.Member.Address));
            }
        });
        Receive<ClusterEvent.MemberLeft>(left => Update(_state.WithMemberGone(left.Member.Address)));
        Receive<ClusterEvent.MemberExited>(exited => Update(_state.WithMemberGone(exited.Member.Address)));
        Receive<ClusterEvent.MemberDowned>(downed => Update(_state.WithMemberGone(downed.Member.Address)));
        Receive<ClusterEvent.MemberRemoved>(removed => Update(_state.WithMemberGone(removed.Member.Address)));
        Receive<ClusterEvent.UnreachableMember>(unreachable => Update(_state.WithUnreachable(unreachable.Member.Address)));
        Receive<ClusterEvent.ReachableMember>(reachable => Update(_state.WithReachable(reachable.Member.Address)));
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        Receive<ServiceAnnouncement>(announcement =>
        {
            if (_signer is not null)
            {
                Refuse(AnnouncementRefusal.Unsigned, announcement.ControlAddress.ToString());
                return;
            }

            Announced(announcement);
        });
        Receive<SignedServiceAnnouncement>(signed =>
        {
            if (_signer is null)
            {
                Refuse(AnnouncementRefusal.NoKey, Sender.Path.Address.ToString());
            }
            else if (!signed.TryOpen(_signer, out var announcement, out var refusal))
            {
                Refuse(refusal, Sender.Path.Address.ToString());
            }
            else
            {
                Announced(announcement);
            }
        });
        Receive<AnnounceRetry>(_ =>
        {
            foreach (var member in _state.SilentMembers)
            {
                Announce(member, replyRequested: true);
            }
        });
        Receive<SubscribeAlternateServers>(subscribe =>
        {
            if (_subscribers.Add(subscribe.Subscriber))
            {
                Context.Watch(subscribe.Subscriber);
            }

            subscribe.Subscriber.Tell(CurrentView());
        });
        Receive<UnsubscribeAlternateServers>(unsubscribe =>
        {
            if (_subscribers.Remove(unsubscribe.Subscriber))
            {
                Context.Unwatch(unsubscribe.Subscriber);
            }
        });
        Receive<GetAlternateServers>(_ => Sender.Tell(CurrentView()));
        Receive<Terminated>(terminated => _subscribers.Remove(terminated.ActorRef));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="replicationChannelPort">the port this node takes replica updates on directly (announced); 0: none.</param>
    public static Props Props(ClusterSettings settings, IMigrationAuthenticator? signer, ushort replicationChannelPort = 0)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return Akka.Actor.Props.Create(() => new ServiceDirectory(settings, signer, replicationChannelPort));
    }

    protected override void PreStart()
    {
        _cluster.Subscribe(
            Self,
            ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IMemberEvent),
            typeof(ClusterEvent.IReachabilityEvent));
        Timers.StartPeriodicTimer(AnnounceRetryTimer, AnnounceRetry.Instance, _settings.AnnounceRetryInterval);
    }

    protected override void PostStop()
    {
        _cluster.Unsubscribe(Self);
        base.PostStop();
    }

    private void Announced(ServiceAnnouncement announcement)
    {
        // A directory speaks only for its own node: an announcement must come from the node it names.
        if (!announcement.ControlAddress.Equals(Sender.Path.Address))
        {
            Refuse(AnnouncementRefusal.NotFromItsNode, $"{announcement.ControlAddress} by {Sender.Path.Address} (a node announces only itself)");
            return;
        }

        Update(_state.WithAnnouncement(announcement));
        if (announcement.ReplyRequested)
        {
            Sender.Tell(Outgoing(_state.Self), Self);
        }
    }

    /// <summary>Counted one by one, logged at most once per summary interval with the refusals of its class.</summary>
    private void Refuse(AnnouncementRefusal refusal, string source)
    {
        SignedServiceAnnouncement.CountRefused(refusal);
        _refusals.Refuse(RefusalClass.AnnouncementIgnored, $"service announcement from {source} dropped: {refusal}");
    }

    private object Outgoing(ServiceAnnouncement announcement) =>
        _signer is null ? announcement : SignedServiceAnnouncement.Sign(_signer, announcement);

    private void Announce(Address member, bool replyRequested) =>
        Context.ActorSelection(new RootActorPath(member) / "user" / ActorName).Tell(Outgoing(_state.Self.WithReplyRequested(replyRequested)), Self);

    private void Update(ServiceDirectoryState next)
    {
        var previous = _state;
        _state = next;
        if (previous.Alternates.Equals(next.Alternates) && previous.ControlMappings.Equals(next.ControlMappings) && previous.Unreachable.SetEquals(next.Unreachable))
        {
            return;
        }

        _log.Debug("alternate servers now {0}", next.Alternates);
        var view = CurrentView();
        foreach (var subscriber in _subscribers)
        {
            subscriber.Tell(view);
        }
    }

    private AlternateServersChanged CurrentView() => new(_state.Alternates, _state.ControlMappings, _state.Unreachable);

    private sealed record AnnounceRetry
    {
        public static AnnounceRetry Instance { get; } = new();
    }
}

/// <summary>Starting the cluster discovery actor under the name other members address it by.</summary>
internal static class ClusterActorSystemExtensions
{
    /// <summary>
    /// Starts the node's <see cref="ServiceDirectory"/> at <c>/user/mtcp-directory</c>, with settings read (and
    /// validated) from the system's configuration. The system must run with <c>akka.actor.provider = cluster</c>.
    /// With <paramref name="clusterKey"/> (the authenticator under the cluster key, as migration uses) announcements
    /// are signed and only signed ones are taken; every node of a cluster must then hold the same key.
    /// <paramref name="replicationChannelPort"/>, when not 0, is announced as this node's direct replication channel.
    /// </summary>
    public static IActorRef StartServiceDirectory(this ActorSystem system, IMigrationAuthenticator? clusterKey = null, ushort replicationChannelPort = 0)
    {
        ArgumentNullException.ThrowIfNull(system);
        return system.ActorOf(ServiceDirectory.Props(ClusterSettings.Create(system), clusterKey, replicationChannelPort), ServiceDirectory.ActorName);
    }
}

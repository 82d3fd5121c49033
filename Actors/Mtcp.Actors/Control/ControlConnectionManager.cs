using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Remote;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Replication;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>
/// One per node, at <c>/user/mtcp-control</c> (<see cref="ActorName"/>): keeps exactly one
/// <see cref="ControlConnection"/> per peer node, keyed by the peer's Akka address (the hash table of control
/// connections keyed by the peer's control address in thesis 4.2.3, step 3), created on first use from either
/// side. Local endpoints send it <see cref="RequestState"/>; peers' managers send it control messages, which it
/// forwards, sender kept, to the connection for the sender's node.
/// <para>
/// Losing a peer fails every request in flight to it at once with a typed reason: when the cluster marks it
/// unreachable (<see cref="StateRequestFailure.PeerUnreachable"/>; new requests to it fail at once until it is
/// reachable again), when it is removed (<see cref="StateRequestFailure.PeerRemoved"/>; its connection stops),
/// and when the Akka.Remote association to it drops (<see cref="StateRequestFailure.PeerDisassociated"/>).
/// Cluster events are used when the node runs the cluster provider; association events in any case.
/// </para>
/// <para>
/// Warm control connections: each member that joins (and every member already up when this node starts) gets its
/// connection at once, told to <see cref="WarmUp"/>, so that no client's first migration to a node waits for the
/// Akka.Remote association and the peer's resolution; the connection is kept until the member is removed.
/// </para>
/// <para>
/// Direct replication channel: with <see cref="DirectReplication"/>, the manager follows the service directory's view
/// and tells each control connection the port its peer announces for the channel; the channel listener asks it for a
/// member's control connection (<see cref="GetControlConnection"/>) to hand it the channel that member opened.
/// </para>
/// </summary>
internal sealed class ControlConnectionManager : ReceiveActor
{
    /// <summary>The well-known name peers address this actor by; it must be a child of <c>/user</c>.</summary>
    public const string ActorName = "mtcp-control";

    private readonly IActorRef _registry;
    private readonly ControlSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RefusalLog _refusals = RefusalLog.Get(Context.System);
    private readonly Dictionary<Address, IActorRef> _connections = [];
    private readonly Dictionary<IActorRef, Address> _peersByConnection = [];

    /// <summary>The replicas this node keeps as other nodes' buddy.</summary>
    private readonly IActorRef _replicas;

    /// <summary>Peers new requests to which fail at once, and why.</summary>
    private readonly Dictionary<Address, StateRequestFailure> _lostPeers = [];

    private int _connectionsCreated;

    /// <summary>The service directory whose view names the peers' replication channel ports; null: none is followed.</summary>
    private readonly IActorRef? _directory;

    /// <summary>The direct replication channel's settings and TLS; null: replica messages go over Akka.Remote only.</summary>
    private readonly DirectReplication? _direct;

    /// <summary>The replication channel ports the peers announce.</summary>
    private IReadOnlyDictionary<Address, ushort> _channelPorts = new Dictionary<Address, ushort>();

    /// <summary>The cluster key's authenticator once <see cref="UseControlAuthenticator"/> came; control messages are then sealed.</summary>
    private IMigrationAuthenticator? _authenticator;

    public ControlConnectionManager(IActorRef registry, ControlSettings settings, IActorRef? directory, DirectReplication? direct)
    {
        _registry = registry;
        _settings = settings;
        _directory = directory;
        _direct = direct;
        _replicas = Context.ActorOf(ReplicaKeeper.Props(settings), ReplicaKeeper.ActorName);

        Receive<RequestState>(request =>
        {
            if (_lostPeers.TryGetValue(request.Peer, out var reason))
            {
                // A lost origin's connection may be replicated here: its buddy answers for it, or fails the request.
                _replicas.Tell(new AnswerFromReplica(request.Request, request.ReplyTo, request.Peer, reason));
                return;
            }

            ConnectionFor(request.Peer).Forward(request);
        });
        Receive<AcknowledgeState>(acknowledge => ConnectionFor(acknowledge.Peer).Tell(acknowledge.Ack, Self));
        Receive<NotifyTakenOver>(notify => ConnectionFor(notify.Peer).Tell(notify.Notice, Self));
        Receive<ReplicateTo>(replicate =>
        {
            // A buddy the cluster lost gets nothing: the endpoint chooses another when the directory's view changes.
            // Forwarded, the endpoint as sender: the connection sends the buddy's acks straight back to it.
            if (!_lostPeers.ContainsKey(replicate.Buddy))
            {
                ConnectionFor(replicate.Buddy).Forward(new ReplicateToPeer(replicate.Update));
            }
        });
        Receive<GetReplicaStatistics>(get => _replicas.Forward(get));
        Receive<AnswerFromReplica>(answer => _replicas.Forward(answer));
        Receive<ReplicaTakeoverTransport>(transport => _replicas.Forward(transport));
        Receive<ControlMessage>(FromPeer);
        Receive<StateReplyChunk>(FromPeer);
        Receive<AbandonStateTransfer>(FromPeer);
        Receive<SealedControlMessage>(FromPeer);
        Receive<UseControlAuthenticator>(use =>
        {
            _authenticator = use.Authenticator;
            _replicas.Tell(use);
            foreach (var connection in _connections.Values)
            {
                connection.Tell(use);
            }

            Sender.Tell(ControlAuthenticatorInUse.Instance);
        });
        Receive<GetControlConnections>(_ => Sender.Tell(new ControlConnections(new Dictionary<Address, IActorRef>(_connections))));
        Receive<GetControlConnection>(_ => !Sender.Path.Address.HasGlobalScope, get => Sender.Tell(new ControlConnectionFor(get.Peer, ConnectionFor(get.Peer))));
        Receive<AlternateServersChanged>(_ => !Sender.Path.Address.HasGlobalScope, changed =>
        {
            _channelPorts = changed.ControlMappings.ReplicationChannelPorts;
            foreach (var (peer, connection) in _connections)
            {
                connection.Tell(new PeerReplicationChannel(_channelPorts.GetValueOrDefault(peer)));
            }
        });

        Receive<ClusterEvent.UnreachableMember>(unreachable => Lose(unreachable.Member.Address, StateRequestFailure.PeerUnreachable, stop: false));
        Receive<ClusterEvent.ReachableMember>(reachable => _lostPeers.Remove(reachable.Member.Address));
        Receive<ClusterEvent.MemberUp>(up =>
        {
            _lostPeers.Remove(up.Member.Address);
            if (!up.Member.Address.Equals(Akka.Cluster.Cluster.Get(Context.System).SelfAddress))
            {
                ConnectionFor(up.Member.Address).Tell(WarmUp.Instance);
            }
        });
        Receive<ClusterEvent.MemberRemoved>(removed => Lose(removed.Member.Address, StateRequestFailure.PeerRemoved, stop: true));

        // Down is final (removal follows): a member downed as crashed may never have been unreachable, and requests to
        // it go to its buddy's replica at once rather than to a connection that can only fail.
        Receive<ClusterEvent.MemberDowned>(downed => Lose(downed.Member.Address, StateRequestFailure.PeerRemoved, stop: false));
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        Receive<DisassociatedEvent>(disassociated =>
        {
            if (_connections.TryGetValue(disassociated.RemoteAddress, out var connection))
            {
                connection.Tell(new PeerLost(StateRequestFailure.PeerDisassociated));
            }
        });
        Receive<Terminated>(terminated =>
        {
            if (_peersByConnection.Remove(terminated.ActorRef, out var peer))
            {
                _connections.Remove(peer);
            }
        });
    }

    /// <summary>
    /// Props for the manager. <paramref name="registry"/> answers <see cref="StateRequestReceived"/> with a
    /// <see cref="StateReply"/> or <see cref="StateReject"/> and receives <see cref="StateAckReceived"/> and
    /// <see cref="StateTransferAbandoned"/>.
    /// </summary>
    /// <param name="directory">the service directory, whose view names the peers' replication channel ports.</param>
    /// <param name="direct">the direct replication channel's settings and TLS; null: replica messages go over Akka.Remote only.</param>
    public static Props Props(IActorRef registry, ControlSettings settings, IActorRef? directory = null, DirectReplication? direct = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(settings);
        return Akka.Actor.Props.Create(() => new ControlConnectionManager(registry, settings, directory, direct));
    }

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
        if (_direct is not null)
        {
            _directory?.Tell(new SubscribeAlternateServers(Self));
        }
        if (((ExtendedActorSystem)Context.System).Provider is ClusterActorRefProvider)
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(
                Self,
                ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(ClusterEvent.IMemberEvent),
                typeof(ClusterEvent.IReachabilityEvent));
        }
    }

    protected override void PostStop()
    {
        Context.System.EventStream.Unsubscribe(Self);
        if (((ExtendedActorSystem)Context.System).Provider is ClusterActorRefProvider)
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        }

        base.PostStop();
    }

    private void FromPeer(object message)
    {
        var peer = Sender.Path.Address;
        if (!peer.HasGlobalScope)
        {
            _refusals.Refuse(RefusalClass.ControlMessageDropped, $"{message.GetType().Name} from local {Sender} dropped: control messages come from peers; local endpoints send RequestState");
            return;
        }

        ConnectionFor(peer).Forward(message);
    }

    private IActorRef ConnectionFor(Address peer)
    {
        if (_connections.TryGetValue(peer, out var connection))
        {
            return connection;
        }

        connection = Context.ActorOf(ControlConnection.Props(peer, _registry, _settings, _authenticator, _replicas, _direct), $"peer-{++_connectionsCreated}");
        if (_channelPorts.TryGetValue(peer, out var channelPort))
        {
            connection.Tell(new PeerReplicationChannel(channelPort));
        }

        Context.Watch(connection);
        _connections.Add(peer, connection);
        _peersByConnection.Add(connection, peer);
        _log.Debug("control connection to {0} is {1}", peer, connection.Path.Name);
        return connection;
    }

    private void Lose(Address peer, StateRequestFailure reason, bool stop)
    {
        if (peer.Equals(Akka.Cluster.Cluster.Get(Context.System).SelfAddress))
        {
            return;
        }

        _lostPeers[peer] = reason;
        if (!_connections.TryGetValue(peer, out var connection))
        {
            return;
        }

        connection.Tell(new PeerLost(reason, stop));
        if (stop)
        {
            _connections.Remove(peer);
            _peersByConnection.Remove(connection);
        }
    }
}

/// <summary>Starting the control plane's actors under the names peers address them by.</summary>
internal static class ControlActorSystemExtensions
{
    /// <summary>
    /// Starts the node's <see cref="ControlConnectionManager"/> at <c>/user/mtcp-control</c>, with settings read
    /// (and validated) from the system's configuration; with <paramref name="direct"/>, replica messages take the direct
    /// replication channel to peers that announce one in <paramref name="directory"/>'s view.
    /// </summary>
    public static IActorRef StartControlConnectionManager(this ActorSystem system, IActorRef registry, IActorRef? directory = null, DirectReplication? direct = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        return system.ActorOf(ControlConnectionManager.Props(registry, ControlSettings.Create(system), directory, direct), ControlConnectionManager.ActorName);
    }
}

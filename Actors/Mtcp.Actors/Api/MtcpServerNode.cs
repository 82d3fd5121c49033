using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Replication;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>
/// One cooperating server of a service (thesis 4.2.3) on top of a runtime: the service directory that announces this
/// node's service endpoints (<c>mtcp.cluster.service-endpoints</c>) to the other members of the Akka.Cluster and keeps
/// its alternate servers and control mappings, and, when <c>mtcp.migration.cluster-key</c> is set, the control
/// connection manager that carries state requests between the nodes, so that the runtime's connections migrate in and
/// out. Start it before binding any listener: a listener's connections take part in migration only if it is on then.
/// </summary>
public sealed class MtcpServerNode
{
    private readonly MigrationAuthenticator? _authenticator;
    private ServiceView _view = new([], ServiceEndpoints: 0);

    /// <summary>With <c>mtcp.migration.replication = buddy</c>: this node's cluster address; null when replication is off.</summary>
    private Address? _replicatingAs;

    /// <summary>The ports last logged as unreplicated, so that only changes are logged.</summary>
    private string _unreplicatedLogged = string.Empty;

    private MtcpServerNode(MtcpRuntime runtime, MigrationAuthenticator? authenticator)
    {
        Runtime = runtime;
        _authenticator = authenticator;
    }

    /// <summary>Raised from an actor's thread each time the cluster view of this node's service changes.</summary>
    public event Action<ServiceView>? ViewChanged;

    public MtcpRuntime Runtime { get; }

    /// <summary>True when the node holds the cluster key, so its connections migrate.</summary>
    public bool MigrationEnabled => Runtime.MigrationEnabled;

    /// <summary>The cluster view of this node's service as last seen: no alternates until the directory hears from the cluster.</summary>
    public ServiceView View => Volatile.Read(ref _view);

    /// <summary>The generations of the cluster keys in force; null when the node has no cluster key.</summary>
    public ClusterKeyGenerations? KeyGenerations => _authenticator?.Options is { } options
        ? new ClusterKeyGenerations(options.CurrentKey.Generation, options.PreviousKey?.Generation)
        : null;

    /// <summary>
    /// The drain before a planned stop: asks the client of each of <paramref name="connections"/> to migrate
    /// (MIGRATE_TRIGGER, thesis 3.2.1) to a peer serving the same port, spreading them over the peers of the current
    /// view. Returns how many were asked; a connection whose port no peer serves is left alone (it closes as without
    /// migration). <see cref="MtcpConnection.MigratedAway"/> tells when each left.
    /// </summary>
    public int AskClientsToMigrate(IEnumerable<MtcpConnection> connections)
    {
        ArgumentNullException.ThrowIfNull(connections);
        var peers = View.Alternates;
        var asked = 0;
        foreach (var connection in connections)
        {
            var candidates = peers.Where(peer => peer.Port == connection.LocalEndPoint.Port).ToList();
            if (candidates.Count > 0)
            {
                connection.TriggerMigration(candidates[asked % candidates.Count]);
                asked++;
            }
        }

        return asked;
    }

    /// <summary>
    /// Puts the cluster keys of <paramref name="config"/> (<c>mtcp.migration.cluster-key</c> and
    /// <c>accepted-cluster-key</c>) in force without a restart: a step of a key rotation (docs/threat-model.md). From
    /// now on new connections' secrets and control messages use the new key; connections, control messages and
    /// announcements under either key in force are accepted.
    /// </summary>
    /// <exception cref="ConfigurationException">a key is invalid, or the change would turn migration on or off (that needs a restart).</exception>
    public ClusterKeyGenerations UseClusterKeys(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var options = MigrationKey.ReadOptions(config);
        if (_authenticator is null || options is null)
        {
            throw new ConfigurationException(_authenticator is null
                ? $"this node started without {MigrationKey.Path}: migration turns on only at a start"
                : $"{MigrationKey.Path} is empty: migration turns off only at a start; keep a key in force");
        }

        _authenticator.UseOptions(options);
        return KeyGenerations!;
    }

    /// <summary>
    /// <paramref name="config"/> with the runtime's and the cluster's settings validated; when
    /// <c>mtcp.cluster.service-endpoints</c> is empty, filled with the runtime's <c>mtcp.runtime.local-address</c> and
    /// each of <paramref name="ports"/> (the ports the node's listeners will bind).
    /// </summary>
    /// <exception cref="ConfigurationException">a setting is invalid, or a service endpoint is listed twice.</exception>
    public static Config WithServiceEndpoints(Config config, IEnumerable<ushort> ports)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(ports);
        var withReference = MtcpConfig.WithFallback(config);
        var localAddress = RuntimeSettings.Create(withReference).LocalAddress;
        if (ClusterSettings.Create(withReference).ServiceEndpoints.Count == 0)
        {
            var endpoints = ports.Select(port => $"\"{new System.Net.IPEndPoint(localAddress.ToIPAddress(), port)}\"");
            config = ConfigurationFactory.ParseString($"{ClusterSettings.ServiceEndpointsPath} = [{string.Join(", ", endpoints)}]").WithFallback(config);
            ClusterSettings.Create(MtcpConfig.WithFallback(config));
        }

        return config;
    }

    /// <summary>
    /// Joins <paramref name="runtime"/>'s node to its service: starts the service directory and, with a cluster key
    /// in the system's configuration, the control connection manager, and turns migration on. The actor system must
    /// run with <c>akka.actor.provider = cluster</c>; at most one node per actor system. With buddy replication over
    /// the direct channel (<c>mtcp.migration.buddy-channel.transport = direct</c>), <paramref name="channelSecurity"/>
    /// gives the channel its mutual TLS (the node's certificate and the cluster's CAs); without it the replica updates go
    /// over the control connection, and the node says so in its log.
    /// </summary>
    /// <exception cref="ConfigurationException">a <c>mtcp.cluster</c>, <c>mtcp.control</c>, <c>mtcp.migration</c> or the cluster key setting is invalid, or the channel's port cannot be bound.</exception>
    public static async Task<MtcpServerNode> StartAsync(MtcpRuntime runtime, CancellationToken cancellationToken = default, ReplicationChannelSecurity? channelSecurity = null)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        var system = runtime.System;
        var authenticator = MigrationKey.ReadAuthenticator(system.Settings.Config);
        var node = new MtcpServerNode(runtime, authenticator);
        ReplicationChannelListener? listener = null;
        var direct = authenticator is null ? null : StartReplicationChannel(system, authenticator, channelSecurity, out listener);
        var directory = system.StartServiceDirectory(authenticator, listener?.Port ?? 0);
        var cluster = ClusterSettings.Create(system);
        if (cluster.DownCrashedMembers)
        {
            system.ActorOf(CrashedMemberDowning.Props(cluster.CrashProbeTimeout), CrashedMemberDowning.ActorName);
        }

        system.ActorOf(Props.Create(() => new ServiceViewSubscriber(directory, node.OnViewChanged)), "mtcp-service-view");
        if (authenticator is not null)
        {
            // Thesis 4.2.3: the control connection manager carries this node's state requests to origins and hands
            // peers' requests to the registry of the runtime's connections.
            var control = system.StartControlConnectionManager(runtime.ConnectionRegistry, directory, direct);
            ReplicationSupport? replication = null;
            ClientStateSupport? clientState = null;
            var config = MtcpConfig.WithFallback(system.Settings.Config);
            switch (ReplicationSettings.Create(config))
            {
                case ReplicationMode.Buddy:
                    node._replicatingAs = Akka.Cluster.Cluster.Get(system).SelfAddress;
                    replication = ReplicationSettings.Support(system, node._replicatingAs);
                    break;
                case ReplicationMode.Client:
                    var maxSize = ReplicationSettings.ClientStateMaxSize(config);
                    clientState = new ClientStateSupport(maxSize, new ClientStateOpener(maxSize));
                    system.Log.Info("replication: client-stored state; each connection's state is sealed for its client (at most {0} bytes)", maxSize);
                    break;
            }

            await runtime.EnableMigrationAsync(new MigrationSupport(authenticator, control, directory, Replication: replication, ClientState: clientState), cancellationToken).ConfigureAwait(false);
        }

        return node;
    }

    /// <summary>
    /// The direct replication channel's listener, when this node replicates to a buddy over it: bound before the service
    /// directory starts, so that its port is in this node's first announcement. Null when the channel is not used.
    /// </summary>
    private static DirectReplication? StartReplicationChannel(ActorSystem system, IMigrationAuthenticator authenticator, ReplicationChannelSecurity? security, out ReplicationChannelListener? listener)
    {
        listener = null;
        var config = MtcpConfig.WithFallback(system.Settings.Config);
        if (ReplicationSettings.Create(config) != ReplicationMode.Buddy)
        {
            return null;
        }

        var settings = ReplicationChannelSettings.Create(config);
        if (settings.Transport != ReplicationTransport.Direct)
        {
            return null;
        }

        if (security is null)
        {
            system.Log.Warning("replication: {0}.transport = direct, but the control plane runs without TLS: replica updates go over the control connection", ReplicationChannelSettings.Path);
            return null;
        }

        var direct = new DirectReplication(settings, security);
        var self = Akka.Cluster.Cluster.Get(system).SelfAddress;
        try
        {
            listener = ReplicationChannelListener.Start(system, self, direct, authenticator, system.ActorSelection("/user/" + ControlConnectionManager.ActorName), IsUpMember(system));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            throw HoconValues.Invalid(config, ReplicationChannelSettings.Path + ".port", $"must be a port this node can listen on at {self.Host} ({e.Message})", e);
        }

        system.Log.Info("replication: direct channel on {0}:{1}; replica updates go on it to buddies that announce one", self.Host, listener.Port);
        return direct;
    }

    /// <summary>Whether an address is an Up member of the node's cluster, as the cluster's read view has it now (any thread).</summary>
    private static Func<Address, bool> IsUpMember(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        return address => cluster.State.Members.Any(member => member.Address.Equals(address) && member.Status == Akka.Cluster.MemberStatus.Up);
    }

    private void OnViewChanged(AlternateServersChanged view)
    {
        var current = new ServiceView(view.Alternates.Servers, view.ControlMappings.Count) { Nodes = view.ControlMappings.ControlByService };
        Volatile.Write(ref _view, current);
        LogReplication(view.ControlMappings);
        ViewChanged?.Invoke(current);
    }

    /// <summary>Says when a port of this node has no buddy (its connections die with the node) and when it has one again.</summary>
    private void LogReplication(ControlMappings mappings)
    {
        if (_replicatingAs is not { } self)
        {
            return;
        }

        var own = mappings.ControlByService.Where(pair => pair.Value.Equals(self)).Select(pair => pair.Key).ToList();
        var unreplicated = string.Join(", ", BuddyChoice.UnreplicatedPorts(mappings, self, own));
        if (unreplicated == _unreplicatedLogged)
        {
            return;
        }

        _unreplicatedLogged = unreplicated;
        if (unreplicated.Length > 0)
        {
            Runtime.System.Log.Warning("replication: no other member serves port(s) {0}; their connections run unreplicated and die with this node (metric mtcp.replication.unreplicated)", unreplicated);
        }
        else
        {
            Runtime.System.Log.Info("replication: every port of this node has a buddy ({0})", string.Join(", ", own.Select(endpoint => $"{endpoint.Port} -> {BuddyChoice.For(mappings, self, endpoint.Port)}").Distinct()));
        }
    }

    /// <summary>Hands every change of the directory's view to the node.</summary>
    private sealed class ServiceViewSubscriber : ReceiveActor
    {
        public ServiceViewSubscriber(IActorRef directory, Action<AlternateServersChanged> changed)
        {
            Receive<AlternateServersChanged>(changed);
            directory.Tell(new SubscribeAlternateServers(Self));
        }
    }
}

/// <summary>
/// The cluster view of a node's service: <paramref name="Alternates"/> are the other servers its connections
/// may migrate to (TCP_MIGRATE's content, thesis 4.2.3), <paramref name="ServiceEndpoints"/> the number of service
/// endpoints the cluster announces, this node's included.
/// </summary>
public sealed record ServiceView(IReadOnlyList<ServerEndpoint> Alternates, int ServiceEndpoints)
{
    /// <summary>
    /// The cluster member (its Akka.Remote address) that serves each service endpoint, this node's included: where a
    /// message about an endpoint goes, and the only member that may speak for it.
    /// </summary>
    public IReadOnlyDictionary<ServerEndpoint, Address> Nodes { get; init; } = new Dictionary<ServerEndpoint, Address>();

    public override string ToString() =>
        $"{ServiceEndpoints} service endpoints in the cluster; alternates of this node: [{string.Join(", ", Alternates)}]";
}

/// <summary>The cluster keys a node has in force, by generation: <paramref name="Current"/> signs, <paramref name="Accepted"/> is also accepted during a rotation.</summary>
public sealed record ClusterKeyGenerations(int Current, int? Accepted)
{
    public override string ToString() =>
        $"cluster key generation {Current}" + (Accepted is { } accepted ? $", also accepting generation {accepted}" : ", no other key accepted");
}

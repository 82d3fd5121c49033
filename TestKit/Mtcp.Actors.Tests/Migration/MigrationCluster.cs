using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Remote;
using Akka.Remote.Transport;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>The packet transports the multi-node tests run over, each with its addresses and service port.</summary>
public enum TestTransport
{
    Memory,
    Udp,
    Raw,
}

/// <summary>
/// Three server nodes, each its own ActorSystem in one Akka.Cluster on 127.0.0.1 (ephemeral ports), each with one MTCP
/// runtime per transport (in-memory fabric at 10.0.0.2-4, UDP at 127.0.0.2-4, raw protocol 253 at 127.0.0.2-4 when
/// the process may open raw sockets), a connection registry, a control connection manager and a service directory;
/// plus a client ActorSystem with a runtime per transport at .5. Every server runs the reference applications of
/// <see cref="ReferenceApps"/> behind a listener per runtime.
/// </summary>
public sealed class MigrationCluster : IAsyncDisposable
{
    public const int ServerCount = 3;

    /// <summary>
    /// Server HOCON that puts Akka.Remote's throttler adapter under the control network, so that
    /// <see cref="SetControlLinkAsync"/> can cut it.
    /// </summary>
    public const string ThrottledControlNetwork = "akka.remote.dot-netty.tcp.applied-adapters = [trttl]";
    private static readonly TimeSpan Convergence = TimeSpan.FromSeconds(30);

    private static readonly byte[] ServiceKey = "mtcp multi-node test service key"u8.ToArray();

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly CancellationTokenSource _stopping = new();

    private readonly MigrationClusterOptions _options;

    private MigrationCluster(string? rawUnavailable, MigrationClusterOptions options)
    {
        RawUnavailable = rawUnavailable;
        _options = options;
    }

    public List<ServerNode> Servers { get; } = [];

    /// <summary>The in-memory fabric the <see cref="TestTransport.Memory"/> runtimes are attached to.</summary>
    public InMemoryPacketFabric Fabric => _fabric;

    public ActorSystem ClientSystem { get; private set; } = null!;

    public Dictionary<TestTransport, MtcpRuntime> ClientRuntimes { get; } = [];

    /// <summary>Why raw sockets cannot be opened here; null when they can.</summary>
    public string? RawUnavailable { get; }

    public IEnumerable<TestTransport> Transports =>
        (RawUnavailable is null ? Enum.GetValues<TestTransport>() : [TestTransport.Memory, TestTransport.Udp]).Where(t => _options.Transports?.Contains(t) ?? true);

    public static MigrationAuthenticator Authenticator { get; } = MigrationAuthenticator.FromServiceKey(ServiceKey);

    public static ushort ServicePort(TestTransport transport) => (ushort)(7000 + (int)transport);

    public static string Address(TestTransport transport, int node) => transport == TestTransport.Memory ? $"10.0.0.{node}" : $"127.0.0.{node}";

    public static ServerEndpoint Service(TestTransport transport, int server) => new(IpAddress.Parse(Address(transport, server + 2)), ServicePort(transport));

    /// <param name="clientExtra">HOCON for the client's runtimes (e.g. a short connect timeout).</param>
    /// <param name="transports">the transports to run (null: every one this process can open).</param>
    public static Task<MigrationCluster> StartAsync(string clientExtra = "", int serverCount = ServerCount, IReadOnlyList<TestTransport>? transports = null) =>
        StartAsync(new MigrationClusterOptions { ClientExtra = clientExtra, ServerCount = serverCount, Transports = transports });

    public static async Task<MigrationCluster> StartAsync(MigrationClusterOptions options)
    {
        var cluster = new MigrationCluster(ProbeRawSockets(), options);
        try
        {
            for (var i = 0; i < options.ServerCount; i++)
            {
                cluster.Servers.Add(await cluster.StartServerAsync(i));
            }

            var seed = Akka.Cluster.Cluster.Get(cluster.Servers[0].System).SelfAddress;
            foreach (var server in cluster.Servers)
            {
                Akka.Cluster.Cluster.Get(server.System).JoinSeedNodes([seed]);
            }

            var endpoints = options.ServerCount * cluster.Transports.Count();
            foreach (var server in cluster.Servers)
            {
                await server.AwaitMappingsAsync(endpoints, Convergence);
            }

            cluster.ClientSystem = ActorSystem.Create("client", MtcpConfig.WithFallback(ConfigurationFactory.ParseString(RuntimeConfig.Common + "\n" + options.ClientSystemExtra)));
            foreach (var transport in cluster.Transports)
            {
                var config = RuntimeConfig.For(transport, 5, options.ClientExtra);
                var name = $"mtcp-{transport}".ToLowerInvariant();
                var runtime = transport == TestTransport.Memory && options.WrapMemoryTransport is { } wrap
                    ? MtcpRuntime.Start(cluster.ClientSystem, wrap(cluster._fabric.Attach(IpAddress.Parse(Address(transport, 5)))), config, name)
                    : MtcpRuntime.Start(cluster.ClientSystem, cluster._fabric, config, name);
                await runtime.EnableMigrationAsync(new MigrationSupport(Authenticator, Failover: options.ClientFailover));
                cluster.ClientRuntimes[transport] = runtime;
            }

            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Another client runtime in <see cref="ClientSystem"/>, on the in-memory fabric at <paramref name="address"/>
    /// (wrapped by <see cref="MigrationClusterOptions.WrapMemoryTransport"/>), with migration on: for tests that run many
    /// clients, each with its own address and so its own links.
    /// </summary>
    public async Task<MtcpRuntime> StartClientRuntimeAsync(IpAddress address, string name)
    {
        var config = ConfigurationFactory.ParseString($"""
            mtcp.runtime.transport = memory
            mtcp.runtime.local-address = "{address}"
            {_options.ClientExtra}
            """);
        var transport = _fabric.Attach(address);
        var runtime = MtcpRuntime.Start(ClientSystem, _options.WrapMemoryTransport is { } wrap ? wrap(transport) : transport, config, name);
        await runtime.EnableMigrationAsync(new MigrationSupport(Authenticator));
        return runtime;
    }

    /// <summary>Server <paramref name="index"/> leaves the cluster gracefully, then stops.</summary>
    public async Task LeaveServerAsync(int index)
    {
        var server = Servers[index];
        await Akka.Cluster.Cluster.Get(server.System).LeaveAsync();
        await server.StopAsync();
    }

    /// <summary>Starts server <paramref name="index"/> anew (after it stopped) and joins it to the cluster through server 0.</summary>
    public async Task JoinServerAsync(int index)
    {
        var server = await StartServerAsync(index);
        Servers[index] = server;
        Akka.Cluster.Cluster.Get(server.System).JoinSeedNodes([Akka.Cluster.Cluster.Get(Servers[0].System).SelfAddress]);
    }

    /// <summary>
    /// Cuts (<paramref name="cut"/>) or heals the control network between servers <paramref name="a"/> and
    /// <paramref name="b"/>: the throttler adapter drops their Akka.Remote traffic both ways (heartbeats, gossip,
    /// control connections), while the packet fabric still carries the client's segments to both. The servers must run
    /// with <see cref="ThrottledControlNetwork"/>.
    /// </summary>
    public async Task SetControlLinkAsync(int a, int b, bool cut)
    {
        ThrottleMode mode = cut ? Blackhole.Instance : Unthrottled.Instance;
        foreach (var (from, to) in new[] { (a, b), (b, a) })
        {
            var transport = ((RemoteActorRefProvider)((ExtendedActorSystem)Servers[from].System).Provider).Transport;
            var peer = Akka.Cluster.Cluster.Get(Servers[to].System).SelfAddress;
            if (!await transport.ManagementCommand(new SetThrottle(peer, ThrottleTransportAdapter.Direction.Both, mode)))
            {
                throw new InvalidOperationException($"server {from}'s control network refused to {(cut ? "cut" : "heal")} its link to {peer}: is {ThrottledControlNetwork} set?");
            }
        }
    }

    private async Task<ServerNode> StartServerAsync(int index)
    {
        var services = Transports.Select(t => Service(t, index).ToString());
        var system = ActorSystem.Create(TestNodes.ClusterSystemName, TestNodes.ClusterMember(services, RuntimeConfig.Common + "\n" + _options.ServerExtra));
        var node = new ServerNode(index, system);

        // One registry and one control connection manager serve all of the node's runtimes.
        var registry = system.ActorOf(ConnectionRegistry.Props(), "mtcp-registry");
        node.Registry = registry;
        foreach (var transport in Transports)
        {
            var config = RuntimeConfig.For(transport, index + 2);
            var name = $"mtcp-{transport}".ToLowerInvariant();
            var runtime = transport == TestTransport.Memory && _options.WrapMemoryTransport is { } wrap
                ? MtcpRuntime.Start(system, wrap(_fabric.Attach(IpAddress.Parse(Address(transport, index + 2)))), config, name, registry)
                : MtcpRuntime.Start(system, _fabric, config, name, registry);
            node.Runtimes[transport] = runtime;
        }

        if (_options.GateStateRequests)
        {
            node.StateRequestGate = system.ActorOf(StateRequestGate.Props(registry), "mtcp-state-request-gate");
        }

        node.Control = system.StartControlConnectionManager(_options.GateStateRequests ? node.StateRequestGate : registry);
        node.Directory = system.StartServiceDirectory();

        // As MtcpServerNode does: a member whose control port refuses connections (its system stopped) is downed at once.
        // Without it a crash that leaves an even split downs whichever side lacks the lowest address, and a buddy there
        // takes nothing over (KeptSide).
        var clusterSettings = Mtcp.Actors.Cluster.ClusterSettings.Create(system);
        if (clusterSettings.DownCrashedMembers)
        {
            system.ActorOf(CrashedMemberDowning.Props(clusterSettings.CrashProbeTimeout), CrashedMemberDowning.ActorName);
        }

        // One opener per node, as MtcpServerNode makes it: what it remembers of the states presented is the node's.
        var clientStateMaxSize = ReplicationSettings.ClientStateMaxSize(MtcpConfig.WithFallback(system.Settings.Config));
        var clientState = _options.ClientStoredState ? new ClientStateSupport(clientStateMaxSize, new ClientStateOpener(clientStateMaxSize)) : null;
        foreach (var (transport, runtime) in node.Runtimes)
        {
            var replication = _options.Replication
                ? ReplicationSettings.Support(system, Akka.Cluster.Cluster.Get(system).SelfAddress)
                : null;
            var endpointsControl = _options.WrapControlManager is { } wrapControl ? wrapControl(system, node.Control) : node.Control;
            await runtime.EnableMigrationAsync(new MigrationSupport(Authenticator, endpointsControl, node.Directory, Replication: replication, ClientState: clientState));
            var listener = new MtcpListener(runtime, ServicePort(transport));
            await listener.StartAsync();
            node.Listeners.Add(listener);
            node.AcceptLoops.Add(ReferenceApps.AcceptLoopAsync(listener, node, _stopping.Token));
        }

        return node;
    }

    private static string? ProbeRawSockets()
    {
        try
        {
            RawIPv4Transport.OpenExperimental(IpAddress.Parse("127.0.0.2")).Dispose();
            return null;
        }
        catch (InsufficientPrivilegeException e)
        {
            return e.Message;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        foreach (var runtime in ClientRuntimes.Values)
        {
            await runtime.DisposeAsync();
        }

        if (ClientSystem is not null)
        {
            await ClientSystem.Terminate();
        }

        foreach (var server in Servers)
        {
            await server.StopAsync();
        }

        _stopping.Dispose();
    }
}

/// <summary>How a <see cref="MigrationCluster"/> is set up.</summary>
public sealed record MigrationClusterOptions
{
    public int ServerCount { get; init; } = MigrationCluster.ServerCount;

    /// <summary>The transports to run (null: every one this process can open).</summary>
    public IReadOnlyList<TestTransport>? Transports { get; init; }

    /// <summary>HOCON for the client's runtimes (e.g. a short connect timeout).</summary>
    public string ClientExtra { get; init; } = "";

    /// <summary>HOCON for the client's ActorSystem (e.g. its log level).</summary>
    public string ClientSystemExtra { get; init; } = "";

    /// <summary>True: the servers keep each connection's state on a buddy node (<c>mtcp.migration.replication = buddy</c>).</summary>
    public bool Replication { get; init; }

    /// <summary>True: the servers seal each connection's state for its client (<c>mtcp.migration.replication = client</c>).</summary>
    public bool ClientStoredState { get; init; }

    /// <summary>How the client's connections leave a silent server (null: they wait for it, as without failover).</summary>
    public ClientFailover? ClientFailover { get; init; }

    /// <summary>HOCON for the server nodes' ActorSystems, under their runtimes and control connections too (e.g. TCP timers).</summary>
    public string ServerExtra { get; init; } = "";

    /// <summary>
    /// Wraps each in-memory endpoint (servers', the client's) before its runtime takes it, e.g. in a
    /// <see cref="LossyPacketTransport"/>; the runtime owns what it returns. Null: the endpoints are used as they are.
    /// </summary>
    public Func<InMemoryPacketTransport, IPacketTransport>? WrapMemoryTransport { get; init; }

    /// <summary>
    /// Stands between each server node's runtimes and its control connection manager (the node's system and manager in,
    /// what the endpoints and listeners send to out), e.g. to lose a replica update on its way. Null: they send to the
    /// manager itself.
    /// </summary>
    public Func<ActorSystem, IActorRef, IActorRef>? WrapControlManager { get; init; }

    /// <summary>Each node's control connections reach its registry through a <see cref="Migration.StateRequestGate"/>.</summary>
    public bool GateStateRequests { get; init; }
}

/// <summary>One server node of <see cref="MigrationCluster"/>.</summary>
public sealed class ServerNode(int index, ActorSystem system)
{
    private readonly List<string> _applicationFailures = [];
    private int _migratedIn;
    private int _migratedAway;
    private readonly List<(long Offset, string Sha256)> _largeStateImports = [];

    public int Index { get; } = index;

    public ActorSystem System { get; } = system;

    public Dictionary<TestTransport, MtcpRuntime> Runtimes { get; } = [];

    public List<MtcpListener> Listeners { get; } = [];

    public List<Task> AcceptLoops { get; } = [];

    public IActorRef Control { get; set; } = ActorRefs.Nobody;

    public IActorRef Directory { get; set; } = ActorRefs.Nobody;

    /// <summary>The node's <see cref="ConnectionRegistry"/>, shared by its runtimes.</summary>
    public IActorRef Registry { get; set; } = ActorRefs.Nobody;

    /// <summary>With <see cref="MigrationClusterOptions.GateStateRequests"/>: what holds the peers' state requests when told to.</summary>
    public IActorRef StateRequestGate { get; set; } = ActorRefs.Nobody;

    /// <summary>Called with every connection the applications here accept (new or migrated in), before it is served.</summary>
    public Action<ServerNode, MtcpConnection>? Accepted { get; set; }

    /// <summary>What went wrong in applications here that a client cannot see (e.g. a request cut short at the end of the stream).</summary>
    public IReadOnlyList<string> ApplicationFailures
    {
        get
        {
            lock (_applicationFailures)
            {
                return [.. _applicationFailures];
            }
        }
    }

    public void RecordApplicationFailure(string failure)
    {
        lock (_applicationFailures)
        {
            _applicationFailures.Add(failure);
        }
    }

    public bool Stopped { get; private set; }

    /// <summary>Connections the applications here resumed from an imported state.</summary>
    public int MigratedIn => Volatile.Read(ref _migratedIn);

    /// <summary>Connections the applications here saw migrate away (EMIGRATED).</summary>
    public int MigratedAway => Volatile.Read(ref _migratedAway);

    public void CountMigratedIn() => Interlocked.Increment(ref _migratedIn);

    public void CountMigratedAway() => Interlocked.Increment(ref _migratedAway);

    /// <summary>What the applications here imported of large states: the download offset and SHA-256 of the whole state.</summary>
    public IReadOnlyList<(long Offset, string Sha256)> LargeStateImports
    {
        get
        {
            lock (_largeStateImports)
            {
                return [.. _largeStateImports];
            }
        }
    }

    public void RecordLargeStateImport(ReadOnlySpan<byte> state)
    {
        var entry = (ReferenceApps.LargeStateOffset(state), Convert.ToHexString(SHA256.HashData(state)));
        lock (_largeStateImports)
        {
            _largeStateImports.Add(entry);
        }
    }

    public async Task AwaitMappingsAsync(int endpoints, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        while (true)
        {
            var view = await Directory.Ask<AlternateServersChanged>(GetAlternateServers.Instance, timeout.Token);
            if (view.ControlMappings.Count == endpoints)
            {
                return;
            }

            await Task.Delay(100, timeout.Token);
        }
    }

    /// <summary>Kills the node as a crash would: no leaving the cluster, transports closed, system terminated.</summary>
    public async Task StopAsync()
    {
        if (Stopped)
        {
            return;
        }

        Stopped = true;
        foreach (var runtime in Runtimes.Values)
        {
            await runtime.DisposeAsync();
        }

        await System.Terminate();
    }
}

/// <summary>HOCON of the test runtimes.</summary>
internal static class RuntimeConfig
{
    public const string Common = """
        mtcp.tcp.maximum-segment-lifetime = 200ms
        akka.loglevel = WARNING
        """;

    public static Config For(TestTransport transport, int node, string extra = "") => ConfigurationFactory.ParseString($"""
        mtcp.runtime.transport = {transport.ToString().ToLowerInvariant()}
        mtcp.runtime.local-address = "{MigrationCluster.Address(transport, node)}"
        mtcp.runtime.udp.port = 15310
        mtcp.runtime.udp.peer-port = 15310
        {extra}
        """);
}


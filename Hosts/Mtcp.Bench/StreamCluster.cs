using System.Buffers.Binary;
using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.Apps;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Transports;
using Mtcp.Wire;
using AppImportedState = Mtcp.Apps.ImportedState;

namespace Mtcp.Bench;

/// <summary>What every server serves during one run: the stream, its state size and its degradation curve.</summary>
internal sealed record StreamRun(long StreamLength, int StateBytes, DegradationCurve Curve);

/// <summary>
/// Server nodes of the stream experiment, each its own ActorSystem in one Akka.Cluster on loopback with an MTCP runtime
/// over the chosen transport, a connection registry, a control connection manager and a service directory, serving
/// <see cref="StreamServer"/>; and a client ActorSystem with its runtime.
/// </summary>
internal sealed class StreamCluster : IAsyncDisposable
{
    public const ushort ServicePort = 7100;
    private static readonly MigrationAuthenticator Authenticator = MigrationAuthenticator.FromServiceKey("mtcp stream experiment service key"u8);
    private static readonly TimeSpan Convergence = TimeSpan.FromSeconds(30);

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<ActorSystem> _serverSystems = [];
    private readonly List<MtcpRuntime> _serverRuntimes = [];
    private readonly List<IActorRef> _directories = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly string _transport;
    private readonly Config _config;
    private MtcpRuntime? _clientRuntime;

    private StreamCluster(string transport, Config config)
    {
        _transport = transport;
        _config = config;
    }

    /// <summary>What the servers serve; set before each run.</summary>
    public StreamRun Run { get; set; } = new(0, 0, DegradationCurve.None(1024, 1));

    /// <summary>Where the servers record the visits of the current download; set before each download.</summary>
    public StreamVisitLog Visits { get; set; } = new();

    public List<ServerEndpoint> Services { get; } = [];

    public ActorSystem ClientSystem { get; private set; } = null!;

    public MtcpRuntime ClientRuntime => _clientRuntime ?? throw new InvalidOperationException("not started");

    /// <summary>Connections resumed from an imported state, over all servers.</summary>
    public int MigratedIn => Volatile.Read(ref _migratedIn);

    private int _migratedIn;

    public static async Task<StreamCluster> StartAsync(string transport, int servers, Config config)
    {
        var cluster = new StreamCluster(transport, config);
        try
        {
            for (var i = 0; i < servers; i++)
            {
                cluster.Services.Add(new ServerEndpoint(IpAddress.Parse(cluster.Address(i + 2)), ServicePort));
            }

            for (var i = 0; i < servers; i++)
            {
                await cluster.StartServerAsync(i);
            }

            var seed = Akka.Cluster.Cluster.Get(cluster._serverSystems[0]).SelfAddress;
            foreach (var system in cluster._serverSystems)
            {
                Akka.Cluster.Cluster.Get(system).JoinSeedNodes([seed]);
            }

            foreach (var directory in cluster._directories)
            {
                await AwaitMappingsAsync(directory, servers);
            }

            cluster.ClientSystem = ActorSystem.Create("stream-client", MtcpConfig.WithFallback(config));
            cluster._clientRuntime = MtcpRuntime.Start(cluster.ClientSystem, cluster._fabric, cluster.RuntimeConfig(servers + 2), "mtcp");
            await cluster._clientRuntime.EnableMigrationAsync(new MigrationSupport(Authenticator));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public static IPEndPoint EndPoint(ServerEndpoint service) => new(service.Address.ToIPAddress(), service.Port);

    private string Address(int node) => _transport == "memory" ? $"10.0.0.{node}" : $"127.0.0.{node}";

    private Config RuntimeConfig(int node) => ConfigurationFactory.ParseString($"""
        mtcp.runtime.transport = {_transport}
        mtcp.runtime.local-address = "{Address(node)}"
        mtcp.runtime.udp.port = 15410
        mtcp.runtime.udp.peer-port = 15410
        """);

    private async Task StartServerAsync(int index)
    {
        var member = ConfigurationFactory.ParseString($"""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.port = 0
            akka.coordinated-shutdown.run-by-actor-system-terminate = off
            akka.cluster.run-coordinated-shutdown-when-down = off
            mtcp.cluster.service-endpoints = ["{Services[index]}"]
            """);
        var system = ActorSystem.Create("mtcp", MtcpConfig.WithFallback(member.WithFallback(_config)));
        _serverSystems.Add(system);
        var registry = system.ActorOf(ConnectionRegistry.Props(), "mtcp-registry");
        var runtime = MtcpRuntime.Start(system, _fabric, RuntimeConfig(index + 2), "mtcp", registry);
        _serverRuntimes.Add(runtime);
        var control = system.StartControlConnectionManager(registry);
        var directory = system.StartServiceDirectory();
        _directories.Add(directory);
        await runtime.EnableMigrationAsync(new MigrationSupport(Authenticator, control, directory));
        var listener = new MtcpListener(runtime, ServicePort);
        await listener.StartAsync();
        _acceptLoops.Add(AcceptLoopAsync(listener, index, _stopping.Token));
    }

    private static async Task AwaitMappingsAsync(IActorRef directory, int endpoints)
    {
        using var timeout = new CancellationTokenSource(Convergence);
        while (true)
        {
            var view = await directory.Ask<AlternateServersChanged>(GetAlternateServers.Instance, timeout.Token).ConfigureAwait(false);
            if (view.ControlMappings.Count == endpoints)
            {
                return;
            }

            await Task.Delay(100, timeout.Token).ConfigureAwait(false);
        }
    }

    private async Task AcceptLoopAsync(MtcpListener listener, int server, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            MtcpConnection connection;
            try
            {
                connection = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }

            var visit = Visits.Start(server, Run.Curve.DegradeAfter);
            _ = Task.Run(() => ServeAsync(connection, Run, visit), CancellationToken.None);
        }
    }

    private async Task ServeAsync(MtcpConnection connection, StreamRun run, StreamVisit visit)
    {
        var state = new PaddedConnectionState(connection, run.StateBytes, visit);
        if (state.Import().Kind == ConnectionKind.Migrated)
        {
            Interlocked.Increment(ref _migratedIn);
        }

        var server = new StreamServer(new StreamServerOptions(run.StreamLength, run.Curve.ChunkSize, int.MaxValue, TimeSpan.Zero, TimeSpan.Zero), TimeProvider.System);
        try
        {
            await using var paced = new PacedStream(connection.Stream, run.Curve, TimeProvider.System);
            await server.ServeAsync(paced, state, _stopping.Token).ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (ConnectionMigratedException)
        {
            // The connection went on to another server (EMIGRATED): this visit is over.
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client went away or the experiment is shutting down: nothing left to serve.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_clientRuntime is not null)
        {
            await _clientRuntime.DisposeAsync();
        }

        if (ClientSystem is not null)
        {
            await ClientSystem.Terminate();
        }

        foreach (var runtime in _serverRuntimes)
        {
            await runtime.DisposeAsync();
        }

        // Leaving the cluster first spares the surviving members the "association failed" errors of a crash.
        using (var leaving = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            try
            {
                await Task.WhenAll(_serverSystems.Select(system => Akka.Cluster.Cluster.Get(system).LeaveAsync(leaving.Token)));
            }
            catch (OperationCanceledException)
            {
                // Terminate anyway.
            }
        }

        foreach (var system in _serverSystems)
        {
            await system.Terminate();
        }

        _stopping.Dispose();
    }

    /// <summary>
    /// The thesis's application state for the stream server (5.3.2: the chunk number), padded to the run's state size so
    /// that the state a migration carries, and the snapshot copied after every chunk, have that size. The chunk numbers
    /// it exports tell <paramref name="visit"/> when this server starts to degrade.
    /// </summary>
    private sealed class PaddedConnectionState(MtcpConnection connection, int stateBytes, StreamVisit visit) : IConnectionState
    {
        private readonly byte[] _padded = new byte[Math.Max(stateBytes, StreamServer.SnapshotLength)];
        private AppImportedState? _imported;

        public bool CanMigrate => true;

        public int LastSnapshotBytes { get; private set; }

        public AppImportedState Import()
        {
            if (_imported is { } known)
            {
                return known;
            }

            var imported = connection.ImportState();

            // Migrated before the first export (the request not yet snapshotted): the read log replays the request.
            _imported = imported.Origin == ConnectionOrigin.Migrated && imported.AppState.Length >= StreamServer.SnapshotLength
                ? new AppImportedState(ConnectionKind.Migrated, imported.AppState)
                : AppImportedState.New;
            visit.FirstChunk = _imported.Value.Kind == ConnectionKind.Migrated ? BinaryPrimitives.ReadInt64BigEndian(_imported.Value.Snapshot.Span) : 0;
            return _imported.Value;
        }

        public void Export(ReadOnlySpan<byte> snapshot)
        {
            var begun = System.Diagnostics.Stopwatch.GetTimestamp();
            visit.Exported(BinaryPrimitives.ReadInt64BigEndian(snapshot));
            snapshot.CopyTo(_padded);
            BinaryPrimitives.WriteInt32BigEndian(_padded.AsSpan(_padded.Length - sizeof(int)), _padded.Length);
            connection.ExportState(_padded);
            LastSnapshotBytes = _padded.Length;
            visit.Snapshotted(System.Diagnostics.Stopwatch.GetTimestamp() - begun);
        }
    }
}

/// <summary>
/// One visit of the connection to a server (from accepting or importing it until it leaves), in
/// <see cref="System.Diagnostics.Stopwatch"/> ticks: when it started and when the server began to degrade, if it did.
/// </summary>
internal sealed class StreamVisit(int server, long started, int degradeAfter)
{
    private long _degradedFrom;
    private long _snapshotTicks;
    private int _snapshots;

    public int Server => server;

    public long Started => started;

    /// <summary>The first chunk this visit serves.</summary>
    public long FirstChunk { get; set; }

    /// <summary>When the first slowed interval began (after chunk <c>FirstChunk + degradeAfter</c> was written); null if it never did.</summary>
    public long? DegradedFrom
    {
        get
        {
            var at = Volatile.Read(ref _degradedFrom);
            return at == 0 ? null : at;
        }
    }

    /// <summary>Snapshots the server took in this visit.</summary>
    public int Snapshots => Volatile.Read(ref _snapshots);

    /// <summary>Time the server spent taking them (thesis 5.3.2: it grows with the state size), in Stopwatch ticks.</summary>
    public long SnapshotTicks => Interlocked.Read(ref _snapshotTicks);

    public void Snapshotted(long ticks)
    {
        Interlocked.Add(ref _snapshotTicks, ticks);
        Interlocked.Increment(ref _snapshots);
    }

    /// <summary>The server exported its snapshot: <paramref name="chunksWritten"/> chunks of the stream are written.</summary>
    public void Exported(long chunksWritten)
    {
        // Interval(degradeAfter) is the first slowed one (DegradationCurve): it follows write number degradeAfter of the visit.
        if (chunksWritten == FirstChunk + degradeAfter + 1)
        {
            Volatile.Write(ref _degradedFrom, System.Diagnostics.Stopwatch.GetTimestamp());
        }
    }
}

/// <summary>The visits of one download, over all servers.</summary>
internal sealed class StreamVisitLog
{
    private readonly List<StreamVisit> _visits = [];

    public StreamVisit Start(int server, int degradeAfter)
    {
        var visit = new StreamVisit(server, System.Diagnostics.Stopwatch.GetTimestamp(), degradeAfter);
        lock (_visits)
        {
            _visits.Add(visit);
        }

        return visit;
    }

    /// <summary>The visits so far, in the order they started.</summary>
    public IReadOnlyList<StreamVisit> Snapshot()
    {
        lock (_visits)
        {
            return [.. _visits.OrderBy(v => v.Started)];
        }
    }
}

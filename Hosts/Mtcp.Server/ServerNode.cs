using System.Collections.Concurrent;
using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Hosting;
using Mtcp.Policies;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.Server;

/// <summary>
/// How the node gives each accepted connection its <see cref="IConnectionState"/>: without migration every
/// connection gets a <see cref="NoMigrationState"/>; with migration, an adapter onto the connection's
/// <c>ImportState</c>/<c>ExportState</c>.
/// </summary>
public sealed record ConnectionStates(bool CanMigrate, Func<MtcpConnection, Action<int>, IConnectionState> For)
{
    public static ConnectionStates NoMigration { get; } = new(CanMigrate: false, (_, _) => new NoMigrationState());

    public static ConnectionStates Migrating { get; } = new(CanMigrate: true, (connection, migratedIn) => new MigratingConnectionState(connection, migratedIn));
}

/// <summary>
/// One server node: its actor system in the cluster, its MTCP runtime, the service directory announcing its
/// service endpoints, and a listener per hosted application. <see cref="RunAsync"/> serves until asked to stop,
/// then shuts down gracefully.
/// </summary>
public sealed class ServerNode
{
    private readonly Config _config;
    private readonly ServerSettings _settings;
    private readonly ConnectionStates _states;
    private readonly ServerMetrics _metrics;
    private readonly ControlPlaneSecurity _security;
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private readonly ConcurrentDictionary<long, MtcpConnection> _open = new();
    private readonly ConcurrentDictionary<ConnectionId, MtcpConnection> _byConnectionId = new();
    private readonly long _clockStart = TimeProvider.System.GetTimestamp();
    // Nobody while mtcp.hosts.server.policy is off: the connections' observations sent to it go nowhere.
    private IActorRef _loadBalancing = ActorRefs.Nobody;
    private int _emigrated;
    private long _nextConnectionId;

    private ServerNode(Config config, ServerSettings settings, bool canMigrate, ControlPlaneSecurity security, ServerMetrics metrics)
    {
        _config = config;
        _settings = settings;
        _security = security;
        _states = canMigrate ? ConnectionStates.Migrating : ConnectionStates.NoMigration;
        _metrics = metrics;
    }

    /// <summary>
    /// Validates everything the node will read before anything starts, so that a bad key fails at once. An empty
    /// <c>mtcp.cluster.service-endpoints</c> is filled with the local address and every application's port. With a
    /// <c>mtcp.migration.cluster-key</c> the node's connections migrate; without one they do not. The control plane
    /// must have TLS (<c>mtcp.security</c>) unless the configuration explicitly runs it insecure.
    /// </summary>
    /// <exception cref="ConfigurationException">a key is missing or invalid; the message names it.</exception>
    public static ServerNode Create(Config config, ServerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(config);
        var settings = ServerSettings.Create(config, TimeProvider.System);
        config = MtcpServerNode.WithServiceEndpoints(config, settings.Applications.Select(hosted => hosted.Port));
        var canMigrate = MigrationKey.ReadAuthenticator(config) is not null;
        if (settings.Policy is { } policy && (!canMigrate || policy.LoadSource is not (LoadSource.Connections or LoadSource.Cpu)))
        {
            throw new ConfigurationException(!canMigrate
                ? $"mtcp.hosts.server.policy = load-balancing moves connections: it needs {MigrationKey.Path}"
                : "mtcp.hosts.server.policy = load-balancing measures a node's connections or its cpu: set mtcp.policies.server.load-source to one of them");
        }

        return new ServerNode(config, settings, canMigrate, ControlPlaneSecurity.Read(config), metrics);
    }

    /// <summary>
    /// Serves until <paramref name="stopping"/> fires or the cluster downs this node, then shuts down gracefully. On
    /// SIGHUP it reads <paramref name="readConfiguration"/> again and puts its cluster keys and CAs in force (a key or
    /// certificate rotation, docs/threat-model.md); every other setting takes effect at the next start.
    /// </summary>
    public async Task RunAsync(Func<Config> readConfiguration, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(readConfiguration);
        if (_security.Insecure)
        {
            ConsoleLog.Warning($"control plane WITHOUT TLS ({ControlPlaneSecurity.InsecurePath} = on): any host that reaches this node's Akka.Remote port can join the cluster, stop its actors and down nodes");
        }
        else
        {
            ConsoleLog.Info($"control plane: mutual TLS as {_security.Subject}, peers must present a certificate of the cluster's CA");
        }

        using var metricsEndpoint = _settings.MetricsEndpoint is { } endPoint ? PrometheusEndpoint.Start(endPoint, ServerSettings.MetricsEndpointPath) : null;
        var system = CreateSystem();
        _security.ReportRefusalsTo(system);
        var cluster = Akka.Cluster.Cluster.Get(system);
        ConsoleLog.Info($"node {cluster.SelfAddress} joining the cluster through seeds [{string.Join(", ", _config.GetStringList("akka.cluster.seed-nodes"))}]");
        cluster.RegisterOnMemberUp(() => ConsoleLog.Info($"node {cluster.SelfAddress} is Up in the cluster"));

        using var applicationsStopping = new CancellationTokenSource();
        MtcpRuntime runtime;
        MtcpServerNode node;
        var listeners = new List<MtcpListener>();
        var acceptLoops = new List<Task>();
        try
        {
            runtime = MtcpRuntime.Start(system);
            ConsoleLog.Info($"transport: {runtime.TransportDescription} (mtcp.runtime.transport = {runtime.ConfiguredTransport})");

            // Migration must be on before a listener binds.
            node = await MtcpServerNode.StartAsync(runtime, stopping, _security.ReplicationChannel).ConfigureAwait(false);
            node.ViewChanged += view => ConsoleLog.Info($"cluster view: {view}");

            foreach (var hosted in _settings.Applications)
            {
                var listener = new MtcpListener(runtime, hosted.Port);
                await listener.StartAsync(stopping).ConfigureAwait(false);
                listeners.Add(listener);
                acceptLoops.Add(AcceptLoopAsync(listener, hosted.Application, applicationsStopping.Token));
            }
        }
        catch
        {
            // Leave no actor system behind: its threads would keep the process from exiting.
            await system.Terminate().ConfigureAwait(false);
            throw;
        }

        if (node.KeyGenerations is { } keys)
        {
            ConsoleLog.Info($"migration keys: {keys}");
        }

        if (_settings.Policy is { } policySettings)
        {
            StartLoadBalancing(system, cluster.SelfAddress, node, policySettings);
        }

        using var reload = new ReloadSignal(() => Reload(node, readConfiguration));
        ConsoleLog.Info($"server node ready: {string.Join(", ", _settings.Applications.Select(hosted => $"{hosted.Application.Name} on {runtime.LocalAddress}:{hosted.Port}"))}; "
            + (_states.CanMigrate ? "connections can migrate" : $"connections do not migrate ({MigrationKey.Path} is empty)"));

        var terminated = system.WhenTerminated;
        using var reportStopping = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var reporting = _settings.RuntimeReportInterval > TimeSpan.Zero ? ReportRuntimeAsync(_settings.RuntimeReportInterval, reportStopping.Token) : Task.CompletedTask;
        await Task.WhenAny(Task.Delay(Timeout.Infinite, stopping), terminated).ConfigureAwait(false);
        await reportStopping.CancelAsync().ConfigureAwait(false);
        await reporting.ConfigureAwait(false);
        ConsoleLog.Info(terminated.IsCompleted ? "the actor system terminated (the cluster downed this node); stopping" : "shutdown requested: stopping");

        foreach (var listener in listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(acceptLoops).ConfigureAwait(false);
        if (_states.CanMigrate && !_open.IsEmpty)
        {
            await DrainAsync(node).ConfigureAwait(false);
        }

        var open = _connections.Count;
        applicationsStopping.Cancel();
        var connectionsDone = Task.WhenAll(_connections.Values);
        if (await Task.WhenAny(connectionsDone, Task.Delay(_settings.ShutdownTimeout, CancellationToken.None)).ConfigureAwait(false) != connectionsDone)
        {
            ConsoleLog.Warning($"{_connections.Count} connections still open after {_settings.ShutdownTimeout.TotalSeconds:0.#} s; stopping the runtime under them");
        }

        ConsoleLog.Info($"closed {open} open connections gracefully; waiting {_settings.CloseLinger.TotalMilliseconds:0} ms for their FINs to be acknowledged");
        await Task.Delay(_settings.CloseLinger, CancellationToken.None).ConfigureAwait(false);
        await runtime.DisposeAsync().ConfigureAwait(false);
        if (!terminated.IsCompleted)
        {
            await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).ConfigureAwait(false);
        }

        await terminated.ConfigureAwait(false);
        ConsoleLog.Info("left the cluster; stopped");
    }

    /// <summary>
    /// The server policy (mtcp.hosts.server.policy = load-balancing): one per service port of this node, fed with its
    /// connections and the cluster's view; its decisions become MIGRATE_TRIGGERs.
    /// </summary>
    private void StartLoadBalancing(ActorSystem system, Akka.Actor.Address self, MtcpServerNode node, ServerPolicySettings settings)
    {
        var ports = _settings.Applications.Select(hosted => hosted.Port).ToHashSet();
        var endpoints = HoconValues.EndPoints(_config, "mtcp.cluster.service-endpoints")
            .Where(endpoint => ports.Contains((ushort)endpoint.Port))
            .Select(endpoint => new ServerEndpoint(IpAddress.FromIPAddress(endpoint.Address), (ushort)endpoint.Port))
            .ToList();
        var triggers = system.ActorOf(PolicyTriggers.Props(id => _byConnectionId.GetValueOrDefault(id)), "mtcp-policy-triggers");
        _loadBalancing = system.ActorOf(LoadBalancingExchange.Props(endpoints, self, settings, triggers, Now), LoadBalancingExchange.ActorName);
        node.ViewChanged += view => _loadBalancing.Tell(view);
        _loadBalancing.Tell(node.View);
        ConsoleLog.Info($"policy: load balancing of [{string.Join(", ", endpoints)}] by {settings.LoadSource} every {settings.EvaluationInterval.TotalSeconds:0.###} s (push {(settings.Push ? "on" : "off")}, pull {(settings.Pull ? "on" : "off")})");
    }

    private Instant Now() => Instant.Zero + TimeProvider.System.GetElapsedTime(_clockStart);

    private static ConnectionId ConnectionIdOf(MtcpConnection connection) => new(
        IpAddress.FromIPAddress(connection.RemoteEndPoint.Address),
        (ushort)connection.RemoteEndPoint.Port,
        IpAddress.FromIPAddress(connection.LocalEndPoint.Address),
        (ushort)connection.LocalEndPoint.Port);

    /// <summary>A SIGHUP: the keys and the CAs each reload on their own; what is refused leaves what is in force, and says why.</summary>
    private void Reload(MtcpServerNode node, Func<Config> readConfiguration)
    {
        Config config;
        try
        {
            config = readConfiguration();
        }
        catch (ConfigurationException e)
        {
            ConsoleLog.Error($"reload (SIGHUP) refused, the keys and CAs in force stay: {e.Message}");
            return;
        }

        if (node.KeyGenerations is not null || HoconValues.Text(config, MigrationKey.Path).Length > 0)
        {
            try
            {
                ConsoleLog.Info($"reload (SIGHUP): migration keys now {node.UseClusterKeys(config)}");
            }
            catch (ConfigurationException e)
            {
                ConsoleLog.Error($"reload (SIGHUP): migration keys refused, {node.KeyGenerations?.ToString() ?? "no cluster key"} stays: {e.Message}");
            }
        }

        if (!_security.Insecure)
        {
            try
            {
                ConsoleLog.Info($"reload (SIGHUP): trusted CAs now [{string.Join("; ", _security.ReloadAuthorities(config))}]");
            }
            catch (ConfigurationException e)
            {
                ConsoleLog.Error($"reload (SIGHUP): CAs refused, [{string.Join("; ", _security.Authorities)}] stay: {e.Message}");
            }
        }
    }

    /// <summary>Logs the process's managed memory, allocation and GC pauses every <paramref name="interval"/> (runtime-report-interval).</summary>
    private async Task ReportRuntimeAsync(TimeSpan interval, CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                // The last gen2 collection, blocking or background: its pause (a node that stalls longer than the
                // failure detector's acceptable-heartbeat-pause is marked unreachable, and a blocking gen2 of a large
                // heap is the usual cause) and the bytes that survived it, the live heap without garbage (what a
                // migrated-away connection leaves behind shows there, where the heap and RSS also count garbage).
                var blocking = GC.GetGCMemoryInfo(GCKind.FullBlocking);
                var background = GC.GetGCMemoryInfo(GCKind.Background);
                var gen2 = background.Index > blocking.Index ? background : blocking;
                ConsoleLog.Info(string.Create(
                    System.Globalization.CultureInfo.InvariantCulture,
                    $"runtime: heap {GC.GetTotalMemory(forceFullCollection: false)} bytes, allocated {GC.GetTotalAllocatedBytes()} bytes, gc pause {GC.GetTotalPauseDuration().TotalMilliseconds:F1} ms, collections {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}, connections {_open.Count}, last gen2 #{gen2.Index} ({(gen2.Concurrent ? "background" : "blocking")}) paused {gen2.PauseDurations[0].TotalMilliseconds:F1} ms, {gen2.PromotedBytes} bytes live after it"));
            }
        }
        catch (OperationCanceledException)
        {
            // The node is stopping.
        }
    }

    /// <exception cref="InvalidOperationException">the control address and port are in use (Akka.Remote binds without SO_REUSEPORT).</exception>
    private ActorSystem CreateSystem()
    {
        try
        {
            // The load-balancing messages travel between nodes (mtcp.hosts.server.policy).
            return HostActorSystem.Create(_settings.SystemName, _security.SystemSetup(_config).And(PolicySerialization.Setup));
        }
        catch (Exception e) when (IsAddressInUse(e))
        {
            var host = _config.GetString("akka.remote.dot-netty.tcp.hostname");
            var control = $"{(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host)}:{_config.GetString("akka.remote.dot-netty.tcp.port")}";
            throw new InvalidOperationException($"the control address {control} (akka.remote.dot-netty.tcp) is already in use by another process", e);
        }

        static bool IsAddressInUse(Exception e) => e switch
        {
            System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse } => true,
            AggregateException aggregate => aggregate.InnerExceptions.Any(IsAddressInUse),
            _ => e.InnerException is { } inner && IsAddressInUse(inner),
        };
    }

    /// <summary>
    /// The drain: asks every open connection's client to migrate to a peer serving the same port (MIGRATE_TRIGGER,
    /// thesis 3.2.1), spreading them over the peers, and waits up to <c>shutdown-timeout</c> for them to leave; the
    /// connections still here afterwards are closed as without migration.
    /// </summary>
    private async Task DrainAsync(MtcpServerNode node)
    {
        var triggered = node.AskClientsToMigrate(_open.Values);
        if (triggered == 0)
        {
            ConsoleLog.Info($"drain: no peer serves the ports of the {_open.Count} open connections; closing them");
            return;
        }

        var before = Volatile.Read(ref _emigrated);
        ConsoleLog.Info($"drain: asked the clients of {triggered} connections to migrate to peers (MIGRATE_TRIGGER)");
        var allDone = Task.WhenAll(_connections.Values);
        await Task.WhenAny(allDone, Task.Delay(_settings.ShutdownTimeout, CancellationToken.None)).ConfigureAwait(false);
        ConsoleLog.Info($"drain: {Volatile.Read(ref _emigrated) - before} of {triggered} connections migrated to peers; {_open.Count} remain");
    }

    private async Task AcceptLoopAsync(MtcpListener listener, IServerApplication application, CancellationToken applicationsStopping)
    {
        while (true)
        {
            MtcpConnection connection;
            try
            {
                connection = await listener.AcceptAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            var id = Interlocked.Increment(ref _nextConnectionId);
            _open[id] = connection;
            _connections[id] = ServeAsync(id, connection, application, applicationsStopping);
        }
    }

    private async Task ServeAsync(long id, MtcpConnection connection, IServerApplication application, CancellationToken applicationsStopping)
    {
        await Task.Yield();
        var tag = new KeyValuePair<string, object?>("application", application.Name);
        _metrics.Accepted.Add(1, tag);
        _metrics.Active.Add(1, tag);
        var remote = connection.RemoteEndPoint;
        var connectionId = ConnectionIdOf(connection);
        _byConnectionId[connectionId] = connection;
        // The ping-pong guard of the server policy needs where a migrated connection came from.
        var migratedFrom = connection.IsMigratedAway ? null : connection.ImportState().MigratedFrom;
        _loadBalancing.Tell(new ConnectionAccepted(connectionId, migratedFrom, Now()));
        var stream = new CountingStream(connection.Stream, _metrics.Io, tag);
        var cid = connection.FirstCid;
        var here = connection.LocalEndPoint;
        _ = connection.MigratedAway.ContinueWith(
            _ => ConsoleLog.Info($"migration out: cid {cid}, {here} -> {(object?)connection.MigratedTo ?? "the node that took it over"}: the state ack came, this node is silent on the old 4-tuple"),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        var state = _states.For(connection, snapshotBytes =>
        {
            _metrics.MigrationsResumed.Add(1, tag);
            var arrival = connection.Arrival;
            ConsoleLog.Info($"migration in: cid {cid}, {(object?)arrival?.From ?? "an unknown server"} -> {here}: {application.Name} connection resumes from a {snapshotBytes}-byte application snapshot"
                + (arrival is null ? "" : string.Create(CultureInfo.InvariantCulture, $"; state reply {arrival.StateReplyBytes} bytes, {arrival.StateWait.TotalMilliseconds:0.000} ms after the state request")));
        });
        // The applications here end their loops at end of stream: a migration ends their reads there too, without an
        // exception thrown through each of their frames, and IsMigratedAway tells it from the client's FIN.
        connection.EndOfStreamOnMigration = true;
        try
        {
            await application.ServeAsync(stream, state, applicationsStopping).ConfigureAwait(false);
            if (connection.IsMigratedAway)
            {
                Emigrated(application, remote, cid, state);
            }
        }
        catch (Exception e) when (e is ConnectionMigratedException || (connection.IsMigratedAway && e is IOException or ProtocolViolationException))
        {
            // A write or export after the migration fails with EMIGRATED; a read that ended inside a request at the
            // migration ends the application with its own error: both are the migration, not a failure.
            Emigrated(application, remote, cid, state);
        }
        catch (OperationCanceledException) when (applicationsStopping.IsCancellationRequested)
        {
            ConsoleLog.Info($"{application.Name} connection from {remote}: closed by the shutdown");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or ProtocolViolationException)
        {
            _metrics.Failed.Add(1, tag);
            ConsoleLog.Warning($"{application.Name} connection from {remote} failed: {e.Message}");
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            _metrics.Active.Add(-1, tag);
            _connections.TryRemove(id, out _);
            _open.TryRemove(id, out _);
            _byConnectionId.TryRemove(connectionId, out _);
            _loadBalancing.Tell(new ConnectionEnded(connectionId, Now()));
        }
    }

    private void Emigrated(IServerApplication application, System.Net.IPEndPoint remote, ConnectionId cid, IConnectionState state)
    {
        Interlocked.Increment(ref _emigrated);
        ConsoleLog.Info($"{application.Name} connection from {remote} (cid {cid}): EMIGRATED, its application stops serving here (last snapshot {state.LastSnapshotBytes} bytes)");
    }
}

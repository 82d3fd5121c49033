using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors;
using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Hosting;

namespace Mtcp.Server;

/// <summary>
/// How the node gives each accepted connection its <see cref="IConnectionState"/>: without migration every
/// connection gets a <see cref="NoMigrationState"/>; with migration, an adapter onto the connection's
/// <c>ImportState</c>/<c>ExportState</c>.
/// </summary>
public sealed record ConnectionStates(bool CanMigrate, Func<MtcpConnection, IConnectionState> For)
{
    public static ConnectionStates NoMigration { get; } = new(CanMigrate: false, _ => new NoMigrationState());
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
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private long _nextConnectionId;

    private ServerNode(Config config, ServerSettings settings, ConnectionStates states, ServerMetrics metrics)
    {
        _config = config;
        _settings = settings;
        _states = states;
        _metrics = metrics;
    }

    /// <summary>
    /// Validates everything the node will read before anything starts, so that a bad key fails at once. An empty
    /// <c>mtcp.cluster.service-endpoints</c> is filled with the local address and every application's port.
    /// </summary>
    /// <exception cref="ConfigurationException">a key is missing or invalid; the message names it.</exception>
    public static ServerNode Create(Config config, ConnectionStates states, ServerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(config);
        var settings = ServerSettings.Create(config, TimeProvider.System);
        var runtime = RuntimeSettings.Create(config);
        if (ClusterSettings.Create(config).ServiceEndpoints.Count == 0)
        {
            var endpoints = settings.Applications.Select(hosted => $"\"{new System.Net.IPEndPoint(runtime.LocalAddress.ToIPAddress(), hosted.Port)}\"");
            config = ConfigurationFactory.ParseString($"{ClusterSettings.ServiceEndpointsPath} = [{string.Join(", ", endpoints)}]").WithFallback(config);
        }

        ClusterSettings.Create(config);
        return new ServerNode(config, settings, states, metrics);
    }

    /// <summary>Serves until <paramref name="stopping"/> fires or the cluster downs this node, then shuts down gracefully.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        var system = ActorSystem.Create(_settings.SystemName, _config);
        var cluster = Akka.Cluster.Cluster.Get(system);
        ConsoleLog.Info($"node {cluster.SelfAddress} joining the cluster through seeds [{string.Join(", ", _config.GetStringList("akka.cluster.seed-nodes"))}]");
        cluster.RegisterOnMemberUp(() => ConsoleLog.Info($"node {cluster.SelfAddress} is Up in the cluster"));

        using var applicationsStopping = new CancellationTokenSource();
        MtcpRuntime runtime;
        var listeners = new List<MtcpListener>();
        var acceptLoops = new List<Task>();
        try
        {
            runtime = MtcpRuntime.Start(system);
            ConsoleLog.Info($"transport: {runtime.TransportDescription} (mtcp.runtime.transport = {runtime.Settings.Transport.ToString().ToLowerInvariant()})");
            var directory = system.StartServiceDirectory();
            system.ActorOf(Props.Create(() => new ServiceViewLogger(directory)), "service-view-logger");
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

        ConsoleLog.Info($"server node ready: {string.Join(", ", _settings.Applications.Select(hosted => $"{hosted.Application.Name} on {runtime.LocalAddress}:{hosted.Port}"))}; "
            + (_states.CanMigrate ? "connections can migrate" : "connections do not migrate in this build"));

        var terminated = system.WhenTerminated;
        await Task.WhenAny(Task.Delay(Timeout.Infinite, stopping), terminated).ConfigureAwait(false);
        ConsoleLog.Info(terminated.IsCompleted ? "the actor system terminated (the cluster downed this node); stopping" : "shutdown requested: stopping");

        foreach (var listener in listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(acceptLoops).ConfigureAwait(false);
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
        var stream = new CountingStream(connection.Stream, _metrics.BytesReceived, _metrics.BytesSent, tag);
        try
        {
            await application.ServeAsync(stream, _states.For(connection), applicationsStopping).ConfigureAwait(false);
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
        }
    }

    /// <summary>Logs every change of the node's alternate servers, i.e. of the cluster seen by the service directory.</summary>
    private sealed class ServiceViewLogger : ReceiveActor
    {
        public ServiceViewLogger(IActorRef directory)
        {
            Receive<AlternateServersChanged>(view =>
                ConsoleLog.Info($"cluster view: {view.ControlMappings.Count} service endpoints in the cluster; alternates of this node: {view.Alternates}"));
            directory.Tell(new SubscribeAlternateServers(Self));
        }
    }
}

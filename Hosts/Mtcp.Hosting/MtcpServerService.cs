using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Mtcp.Actors.Api;
using Mtcp.Stack.Migration;

namespace Mtcp.Hosting;

/// <summary>What an application does with one accepted connection; it returns when it is done with it.</summary>
public delegate Task MtcpConnectionHandler(MtcpConnection connection, CancellationToken stopping);

/// <summary>
/// A migrating MTCP server as a Generic Host service (<see cref="MtcpServerServiceCollectionExtensions.AddMtcpServer"/>):
/// on start, the node's actor system joins its cluster with the control plane of <c>mtcp.security</c>, then the MTCP
/// runtime, the server node (directory, control plane, migration) and a listener per mapped port, each accepted
/// connection handed to its handler. On stop it drains: each client is asked to migrate to a peer serving its port
/// (the same drain as <c>Mtcp.Server</c>'s on SIGTERM), the handlers get until the host's shutdown timeout, then their
/// token is cancelled, and the node leaves the cluster. If the cluster downs the node, the host is stopped.
/// </summary>
public sealed class MtcpServerService : IHostedService, IAsyncDisposable
{
    private readonly string _systemName;
    private readonly Config _config;
    private readonly IReadOnlyDictionary<ushort, MtcpConnectionHandler> _handlers;
    private readonly ILogger<MtcpServerService> _log;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ConcurrentDictionary<MtcpConnection, Task> _connections = new();
    private readonly CancellationTokenSource _handlersStopping = new();
    private readonly List<MtcpListener> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private ActorSystem? _system;
    private MtcpRuntime? _runtime;
    private MtcpServerNode? _node;

    internal MtcpServerService(string systemName, Config config, IReadOnlyDictionary<ushort, MtcpConnectionHandler> handlers, ILogger<MtcpServerService> log, IHostApplicationLifetime lifetime)
    {
        _systemName = systemName;
        _config = config;
        _handlers = handlers;
        _log = log;
        _lifetime = lifetime;
    }

    /// <summary>The server node once started: its cluster view, its keys, <see cref="MtcpServerNode.TriggerMigration"/>.</summary>
    public MtcpServerNode Node => _node ?? throw new InvalidOperationException("the MTCP server has not started");

    /// <exception cref="ConfigurationException">a key is missing or invalid; the message names it.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var config = MtcpServerNode.WithServiceEndpoints(_config, _handlers.Keys);
        var security = ControlPlaneSecurity.Read(config);
        if (security.Insecure)
        {
            _log.LogWarning("control plane WITHOUT TLS ({Key} = on): any host that reaches this node's Akka.Remote port can join the cluster", ControlPlaneSecurity.InsecurePath);
        }

        RemoteBufferLeakDetection.Configure(MtcpConfig.WithFallback(config));
        _system = HostActorSystem.Create(_systemName, security.SystemSetup(config));
        security.ReportRefusalsTo(_system);
        try
        {
            _runtime = MtcpRuntime.Start(_system);

            // Migration must be on before a listener binds.
            _node = await MtcpServerNode.StartAsync(_runtime, cancellationToken, security.ReplicationChannel).ConfigureAwait(false);
            _node.ViewChanged += view => _log.LogInformation("cluster view: {View}", view);
            foreach (var (port, handler) in _handlers)
            {
                var listener = new MtcpListener(_runtime, port);
                await listener.StartAsync(cancellationToken).ConfigureAwait(false);
                _listeners.Add(listener);
                _acceptLoops.Add(AcceptLoopAsync(listener, handler));
            }
        }
        catch
        {
            // Leave no actor system behind: its threads would keep the process from exiting.
            await _system.Terminate().ConfigureAwait(false);
            throw;
        }

        _ = _system.WhenTerminated.ContinueWith(
            _ =>
            {
                if (!_handlersStopping.IsCancellationRequested)
                {
                    _log.LogError("the actor system terminated (the cluster downed this node); stopping the host");
                    _lifetime.StopApplication();
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        _log.LogInformation(
            "MTCP server ready on {Address}, ports [{Ports}]; {Migration}",
            _runtime.LocalAddress,
            string.Join(", ", _handlers.Keys),
            _node.MigrationEnabled ? "connections can migrate" : $"connections do not migrate ({MigrationKey.Path} is empty)");
    }

    /// <summary>The drain, then the handlers' cancellation when <paramref name="cancellationToken"/> (the host's shutdown timeout) fires.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_system is null || _runtime is null || _node is null)
        {
            return;
        }

        foreach (var listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        var handlersDone = Task.WhenAll(_connections.Values);
        if (_node.MigrationEnabled && !_connections.IsEmpty)
        {
            var asked = _node.AskClientsToMigrate(_connections.Keys);
            _log.LogInformation("drain: asked the clients of {Asked} of {Open} connections to migrate to peers (MIGRATE_TRIGGER)", asked, _connections.Count);
            await Task.WhenAny(handlersDone, Task.Delay(Timeout.Infinite, cancellationToken)).ConfigureAwait(false);
        }

        await _handlersStopping.CancelAsync().ConfigureAwait(false);
        await handlersDone.ConfigureAwait(false);
        await _runtime.DisposeAsync().ConfigureAwait(false);
        if (!_system.WhenTerminated.IsCompleted)
        {
            await CoordinatedShutdown.Get(_system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).ConfigureAwait(false);
        }

        await _system.WhenTerminated.ConfigureAwait(false);
        _log.LogInformation("MTCP server stopped; left the cluster");
    }

    public async ValueTask DisposeAsync()
    {
        _handlersStopping.Dispose();
        if (_system is not null)
        {
            await _system.Terminate().ConfigureAwait(false);
        }
    }

    private async Task AcceptLoopAsync(MtcpListener listener, MtcpConnectionHandler handler)
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

            _connections[connection] = ServeAsync(connection, handler);
        }
    }

    private async Task ServeAsync(MtcpConnection connection, MtcpConnectionHandler handler)
    {
        await Task.Yield();
        var remote = connection.RemoteEndPoint;
        try
        {
            await handler(connection, _handlersStopping.Token).ConfigureAwait(false);
        }
        catch (ConnectionMigratedException)
        {
            // EMIGRATED (thesis 4.2.4): the connection now lives on another node, which resumes from the last export.
            _log.LogInformation("connection from {Remote} on port {Port} migrated away", remote, connection.LocalEndPoint.Port);
        }
        catch (OperationCanceledException) when (_handlersStopping.IsCancellationRequested)
        {
            _log.LogInformation("connection from {Remote} closed by the shutdown", remote);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            _log.LogWarning("connection from {Remote} failed: {Reason}", remote, e.Message);
        }
        catch (Exception e)
        {
            // One connection's fault is not the server's: it is logged and the connection closed.
            _log.LogError(e, "the handler of the connection from {Remote} failed", remote);
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            _connections.TryRemove(connection, out _);
        }
    }
}

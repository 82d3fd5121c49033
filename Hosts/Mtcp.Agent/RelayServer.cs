using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mtcp.Actors.Api;
using Mtcp.Hosting;

namespace Mtcp.Agent;

/// <summary>One relayed connection as <c>status</c> shows it.</summary>
public sealed record RelayStatus(long Id, string Client, string Service, DateTimeOffset Since, long BytesToService, long BytesFromService);

/// <summary>What a running <c>serve</c> answers to <c>status</c> on its control endpoint.</summary>
public sealed record AgentStatus(
    string Transport,
    string LocalAddress,
    string Listen,
    IReadOnlyList<string> Services,
    bool MigrationAvailable,
    long Accepted,
    long Failed,
    IReadOnlyList<RelayStatus> Connections);

/// <summary>
/// The agent's <c>serve</c>: accepts kernel-TCP clients and relays each over its own MTCP connection to the
/// service pool, byte for byte in both directions, so that unmodified programs use MTCP. A server's FIN
/// reaches the client as a FIN; a reset or failure of either side reaches the other as a reset, so a client
/// never mistakes a broken transfer for a complete one.
/// </summary>
public sealed class RelayServer(AgentRuntime agent, AgentSettings settings)
{
    private readonly ConcurrentDictionary<long, Relay> _relays = new();
    private long _accepted;
    private long _failed;

    public async Task RunAsync(CancellationToken stopping)
    {
        var services = settings.RequireServices();
        var listener = new TcpListener(settings.ServeListen);
        listener.Start();
        var control = new TcpListener(settings.ControlEndpoint);
        try
        {
            control.Start();
        }
        catch (SocketException e)
        {
            listener.Stop();
            throw new IOException($"cannot listen on the control endpoint {settings.ControlEndpoint} (mtcp.agent.control-endpoint): {e.Message}", e);
        }

        var controlLoop = ControlLoopAsync(control, services, stopping);
        ConsoleLog.Info($"agent ready: listening on {settings.ServeListen}, relaying to [{string.Join(", ", services)}]; control on {settings.ControlEndpoint}");
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await listener.AcceptSocketAsync(stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                var relay = new Relay(Interlocked.Increment(ref _accepted), client, settings);
                _relays[relay.Id] = relay;
                _ = RelayAsync(relay, services, stopping);
            }
        }
        finally
        {
            listener.Stop();
            control.Stop();
        }

        ConsoleLog.Info($"stopping: closing {_relays.Count} relayed connections");
        foreach (var relay in _relays.Values)
        {
            relay.Abort("the agent is stopping");
        }

        await controlLoop.ConfigureAwait(false);
    }

    private async Task RelayAsync(Relay relay, IReadOnlyList<IPEndPoint> services, CancellationToken stopping)
    {
        try
        {
            await Task.Yield();
            MtcpStream stream;
            IPEndPoint service;
            try
            {
                (stream, service) = await agent.ConnectAsync(services, stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                Interlocked.Increment(ref _failed);
                ConsoleLog.Error($"relay {relay.Id} from {relay.ClientEndPoint}: {e.Message}; resetting the client");
                relay.Abort(e.Message);
                return;
            }

            ConsoleLog.Info($"relay {relay.Id}: {relay.ClientEndPoint} -> {service} over MTCP from {stream.LocalEndPoint}");
            if (!await relay.RunAsync(stream, service).ConfigureAwait(false))
            {
                Interlocked.Increment(ref _failed);
            }
        }
        finally
        {
            _relays.TryRemove(relay.Id, out _);
        }
    }

    private async Task ControlLoopAsync(TcpListener control, IReadOnlyList<IPEndPoint> services, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await control.AcceptSocketAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            using (socket)
            {
                var answer = JsonSerializer.Serialize(CurrentStatus(services), AgentJson.Default.AgentStatus) + "\n";
                try
                {
                    await socket.SendAsync(Encoding.UTF8.GetBytes(answer), stopping).ConfigureAwait(false);
                    socket.Shutdown(SocketShutdown.Send);
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    ConsoleLog.Warning($"status request from {socket.RemoteEndPoint} failed: {e.Message}");
                }
            }
        }
    }

    private AgentStatus CurrentStatus(IReadOnlyList<IPEndPoint> services) => new(
        agent.Runtime.TransportDescription,
        agent.Runtime.LocalAddress.ToString(),
        settings.ServeListen.ToString(),
        [.. services.Select(service => service.ToString())],
        MigrationAvailable: false,
        Interlocked.Read(ref _accepted),
        Interlocked.Read(ref _failed),
        [.. _relays.Values.OrderBy(relay => relay.Id).Select(relay => relay.Status())]);
}

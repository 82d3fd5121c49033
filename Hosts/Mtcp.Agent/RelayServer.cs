using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Wire;

namespace Mtcp.Agent;

/// <summary>
/// One migration of a relay's MTCP connection: when it ended, from and to which service endpoint, whether it
/// completed, whether a server's MIGRATE_TRIGGER asked for it, the client's wait from the special SYN to the switch
/// (or to the failure), how many bytes the relay had received from the service when it ended, and who asked for it
/// and why (<see cref="MigrationCause"/>).
/// </summary>
public sealed record MigrationStatus(
    DateTimeOffset At,
    string From,
    string To,
    bool Completed,
    bool Triggered,
    double DurationMs,
    long AtByteFromService,
    string? FailureReason,
    string Cause,
    string Reason);

/// <summary>
/// One relayed connection as <c>status</c> shows it. <paramref name="Cid"/> is the MTCP connection's first Cid, the name
/// every server node's log gives it across hops (empty while connecting).
/// </summary>
/// <param name="Alternates">
/// The other servers of its service its current server announced (TCP_MIGRATE's alternates with the service's port),
/// null when not known (before the connection is up, or with migration off). 0 means its server has no buddy: the
/// connection runs unreplicated and a crash of its server resets it. A positive count does not tell whether the
/// server replicates (<c>mtcp.migration.replication</c> is the server's setting, and no segment carries it).
/// </param>
public sealed record RelayStatus(long Id, string Client, string Service, string Cid, DateTimeOffset Since, long BytesToService, long BytesFromService, IReadOnlyList<MigrationStatus> Migrations, int? Alternates = null);

/// <summary>What <c>migrate</c> asked of the running agent and how each relay's migration ended.</summary>
public sealed record MigrateResult(IReadOnlyList<MigrateOutcome> Outcomes, string? Error);

/// <summary>One relay's migration as <c>migrate</c> reports it; one that did not start (e.g. the policy's was in progress) has no duration.</summary>
public sealed record MigrateOutcome(long Relay, string From, string To, bool Completed, double DurationMs, string? FailureReason);

/// <summary>What a running <c>serve</c> answers to <c>status</c> on its control endpoint.</summary>
public sealed record AgentStatus(
    string Transport,
    string LocalAddress,
    string Listen,
    IReadOnlyList<string> Services,
    bool MigrationAvailable,
    long Accepted,
    long Failed,
    long Refused,
    int MaxConnections,
    IReadOnlyList<RelayStatus> Connections,
    IReadOnlyList<RelayStatus> RecentlyClosed);

/// <summary>
/// The agent's <c>serve</c>: accepts kernel-TCP clients and relays each over its own MTCP connection to the
/// service pool, byte for byte in both directions, so that unmodified programs use MTCP. A server's FIN
/// reaches the client as a FIN; a reset or failure of either side reaches the other as a reset, so a client
/// never mistakes a broken transfer for a complete one. At most <see cref="AgentSettings.MaxRelays"/> relays are open at
/// once: the next client is refused with a RST at once (rather than left waiting), counted in <c>status</c>, and logged
/// once per episode of refusals. The control endpoint is a Unix socket readable and writable by the agent's user only
/// (0600) unless a TCP endpoint is configured.
/// </summary>
public sealed class RelayServer(AgentRuntime agent, AgentSettings settings)
{
    private static readonly TimeSpan ControlRequestTimeout = TimeSpan.FromSeconds(5);

    private const int ClosedRelaysKept = 32;

    private readonly ConcurrentDictionary<long, Relay> _relays = new();
    private readonly ConcurrentQueue<RelayStatus> _closed = new();

    // What the closed relays did, folded in as each one ends: with the open relays' own counts, the totals the metrics
    // observe. Folding and removing happen under one lock with the observation, so that no relay is counted twice or
    // missed and the counters never go down.
    private readonly Lock _totalsGate = new();
    private readonly Dictionary<(string Cause, bool Completed), long> _closedMigrations = [];
    private long _closedToService;
    private long _closedFromService;
    private long _accepted;
    private long _failed;
    private long _refused;
    private long _refusedInEpisode;

    public async Task RunAsync(CancellationToken stopping)
    {
        var services = settings.RequireServices();
        using var metrics = new AgentMetrics(Totals);
        var listener = new TcpListener(settings.ServeListen);
        listener.Start();
        Socket control;
        try
        {
            control = ControlSocket.Listen(settings.ControlEndpoint);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            listener.Stop();
            throw new IOException($"cannot listen on the control endpoint {settings.ControlEndpoint} ({AgentSettings.ControlEndpointPath}): {e.Message}", e);
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

                if (_relays.Count >= settings.MaxRelays)
                {
                    Refuse(client);
                    continue;
                }

                EndRefusalEpisode();
                var relay = new Relay(Interlocked.Increment(ref _accepted), client, settings);
                _relays[relay.Id] = relay;
                _ = RelayAsync(relay, services, stopping);
            }
        }
        finally
        {
            listener.Stop();
            ControlSocket.Close(control, settings.ControlEndpoint);
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
            MtcpClient mtcp;
            MtcpStream stream;
            IPEndPoint service;
            try
            {
                (mtcp, stream, service) = await agent.ConnectAsync(services, stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                Interlocked.Increment(ref _failed);
                ConsoleLog.Error($"relay {relay.Id} from {relay.ClientEndPoint}: {e.Message}; resetting the client");
                relay.Abort(e.Message);
                return;
            }

            ConsoleLog.Info($"relay {relay.Id}: {relay.ClientEndPoint} -> {service} over MTCP from {stream.LocalEndPoint} (cid {stream.FirstCid})");
            using (mtcp)
            {
                if (!await relay.RunAsync(agent, mtcp, stream, service).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref _failed);
                }
            }
        }
        finally
        {
            // Kept for status after the relay closed, so that a finished transfer's migrations can still be read.
            var final = relay.Status();
            _closed.Enqueue(final);
            while (_closed.Count > ClosedRelaysKept && _closed.TryDequeue(out _))
            {
            }

            lock (_totalsGate)
            {
                _closedToService += final.BytesToService;
                _closedFromService += final.BytesFromService;
                AddMigrations(_closedMigrations, final);
                _relays.TryRemove(relay.Id, out _);
            }
        }
    }

    /// <summary>Every relay's counts since serve started, for <see cref="AgentMetrics"/>.</summary>
    private RelayTotals Totals()
    {
        lock (_totalsGate)
        {
            var open = _relays.Values.Select(relay => relay.Status()).ToList();
            var migrations = new Dictionary<(string Cause, bool Completed), long>(_closedMigrations);
            foreach (var relay in open)
            {
                AddMigrations(migrations, relay);
            }

            return new RelayTotals(
                Interlocked.Read(ref _accepted),
                Interlocked.Read(ref _failed),
                Interlocked.Read(ref _refused),
                open.Count,
                _closedToService + open.Sum(relay => relay.BytesToService),
                _closedFromService + open.Sum(relay => relay.BytesFromService),
                migrations);
        }
    }

    private static void AddMigrations(Dictionary<(string Cause, bool Completed), long> counts, RelayStatus relay)
    {
        foreach (var migration in relay.Migrations)
        {
            var key = (migration.Cause, migration.Completed);
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>A client beyond the cap gets a RST at once: it learns that it was refused instead of waiting for a relay.</summary>
    private void Refuse(Socket client)
    {
        var total = Interlocked.Increment(ref _refused);
        if (Interlocked.Increment(ref _refusedInEpisode) == 1)
        {
            ConsoleLog.Warning($"relay refused: {client.RemoteEndPoint} finds {settings.MaxRelays} relays open ({AgentSettings.MaxRelaysPath}); further refusals are counted until one is accepted again ({total} since start)");
        }

        client.LingerState = new LingerOption(true, 0);
        client.Dispose();
    }

    private void EndRefusalEpisode()
    {
        var refused = Interlocked.Exchange(ref _refusedInEpisode, 0);
        if (refused > 0)
        {
            ConsoleLog.Info($"relays accepted again after {refused} clients were refused at the cap of {settings.MaxRelays}");
        }
    }

    private async Task ControlLoopAsync(Socket control, IReadOnlyList<IPEndPoint> services, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await control.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = AnswerControlAsync(socket, services, stopping);
        }
    }

    /// <summary>
    /// One control request, one line: <c>status</c>, or <c>migrate &lt;relay id | *&gt; &lt;address:port | *&gt;</c>
    /// (* for every relay, or for the next endpoint of the same service in the pool); the answer is one JSON document, then the agent closes.
    /// </summary>
    private async Task AnswerControlAsync(Socket socket, IReadOnlyList<IPEndPoint> services, CancellationToken stopping)
    {
        using (socket)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                timeout.CancelAfter(ControlRequestTimeout);
                using var reader = new StreamReader(new NetworkStream(socket, ownsSocket: false), Encoding.ASCII);
                var request = (await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var answer = request is ["migrate", var relay, var destination]
                    ? JsonSerializer.Serialize(await MigrateAsync(relay, destination, stopping).ConfigureAwait(false), AgentJson.Default.MigrateResult)
                    : JsonSerializer.Serialize(CurrentStatus(services), AgentJson.Default.AgentStatus);
                await socket.SendAsync(Encoding.UTF8.GetBytes(answer + "\n"), stopping).ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                ConsoleLog.Warning($"control request from {socket.RemoteEndPoint} failed: {e.Message}");
            }
        }
    }

    private async Task<MigrateResult> MigrateAsync(string relayText, string destinationText, CancellationToken stopping)
    {
        ServerEndpoint? destination = null;
        if (destinationText != "*")
        {
            if (!IPEndPoint.TryParse(destinationText, out var endPoint) || endPoint.Port == 0)
            {
                return new MigrateResult([], $"--to {destinationText} is not address:port");
            }

            destination = new ServerEndpoint(IpAddress.FromIPAddress(endPoint.Address), (ushort)endPoint.Port);
        }

        List<Relay> targets;
        if (relayText == "*")
        {
            targets = [.. _relays.Values.OrderBy(relay => relay.Id)];
        }
        else if (long.TryParse(relayText, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && _relays.TryGetValue(id, out var relay))
        {
            targets = [relay];
        }
        else
        {
            return new MigrateResult([], $"no open relay {relayText}");
        }

        var outcomes = new List<MigrateOutcome>();
        foreach (var target in targets)
        {
            var from = target.Status().Service;
            try
            {
                var report = await target.MigrateAsync(destination, stopping).ConfigureAwait(false);
                outcomes.Add(new MigrateOutcome(target.Id, report.From.ToString(), report.To.ToString(), report.Outcome == MigrationOutcome.Completed, report.Duration.TotalMilliseconds, report.FailureReason));
            }
            catch (InvalidOperationException e)
            {
                outcomes.Add(new MigrateOutcome(target.Id, from, destinationText, Completed: false, 0, e.Message));
            }
        }

        return new MigrateResult(outcomes, null);
    }

    private AgentStatus CurrentStatus(IReadOnlyList<IPEndPoint> services) => new(
        agent.Runtime.TransportDescription,
        agent.Runtime.LocalAddress.ToString(),
        settings.ServeListen.ToString(),
        [.. services.Select(service => service.ToString())],
        agent.Runtime.MigrationEnabled,
        Interlocked.Read(ref _accepted),
        Interlocked.Read(ref _failed),
        Interlocked.Read(ref _refused),
        settings.MaxRelays,
        [.. _relays.Values.OrderBy(relay => relay.Id).Select(relay => relay.Status())],
        [.. _closed]);
}

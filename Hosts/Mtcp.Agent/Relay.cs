using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Wire;

namespace Mtcp.Agent;

/// <summary>
/// One kernel-TCP client and its MTCP connection to the service, copied in both directions. Each direction ends on
/// its own (a half-close, RFC 9293 §3.10.4): the client's FIN becomes a shutdown of the MTCP stream's writing and the
/// service's answer goes on to its FIN; the service's FIN becomes a shutdown of the client socket's sending and the
/// client's bytes go on to its FIN. The relay ends once both directions have.
/// </summary>
internal sealed class Relay(long id, Socket client, AgentSettings settings)
{
    private readonly DateTimeOffset _since = DateTimeOffset.UtcNow;
    private readonly List<MigrationStatus> _migrations = [];
    private readonly MigrationCauses _causes = new();
    private MtcpStream? _stream;
    private MtcpClient? _mtcp;
    private string _service = "(connecting)";

    /// <summary>Alternates of the current service endpoint its server announced; -1 while unknown.</summary>
    private int _alternates = -1;
    private long _toService;
    private long _fromService;
    private long _lastActivity = Environment.TickCount64;

    /// <summary>1 once the relay closed both sides or reset them: from then on nothing of it may be reset again.</summary>
    private int _ended;

    public long Id { get; } = id;

    public EndPoint? ClientEndPoint { get; } = client.RemoteEndPoint;

    public RelayStatus Status()
    {
        lock (_migrations)
        {
            var alternates = Volatile.Read(ref _alternates);
            return new(Id, ClientEndPoint?.ToString() ?? "?", Volatile.Read(ref _service), Volatile.Read(ref _stream)?.FirstCid.ToString() ?? "", _since, Interlocked.Read(ref _toService), Interlocked.Read(ref _fromService), [.. _migrations], alternates < 0 ? null : alternates);
        }
    }

    /// <summary>
    /// The operator's migration of the MTCP connection to <paramref name="destination"/> or, when null, to the next
    /// alternate of the same service (<see cref="AgentSettings.DestinationsOf"/>); client-initiated (thesis
    /// 3.2), the relay's byte copying goes on across it.
    /// </summary>
    /// <exception cref="InvalidOperationException">not connected yet, migration off, no alternate, or a migration (the policy's or another) in progress.</exception>
    public async Task<MigrationReport> MigrateAsync(ServerEndpoint? destination, CancellationToken cancellationToken)
    {
        var mtcp = Volatile.Read(ref _mtcp) ?? throw new InvalidOperationException($"relay {Id} is not connected yet");
        var to = destination ?? await NextAlternateAsync(mtcp, cancellationToken).ConfigureAwait(false);
        if (to.ToString() == Volatile.Read(ref _service))
        {
            throw new InvalidOperationException($"relay {Id} is already served by {to}");
        }

        var cause = new MigrationCause(MigrationCause.Operator, destination is null ? "migrate (next endpoint of the service)" : $"migrate --to {to}");
        _causes.Requested(to, cause);
        try
        {
            return await mtcp.MigrateAsync(to, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            _causes.Withdrawn(to, cause);
            throw;
        }
    }

    /// <summary>
    /// The destination of a migration asked for without one: the first alternate with the current endpoint's port that
    /// the server announced, else the pool's next (<see cref="AgentSettings.DestinationsOf"/>).
    /// </summary>
    private async Task<ServerEndpoint> NextAlternateAsync(MtcpClient mtcp, CancellationToken cancellationToken)
    {
        var current = IPEndPoint.Parse(Volatile.Read(ref _service));
        var announced = await mtcp.GetAlternateServersAsync(cancellationToken).ConfigureAwait(false);
        return settings.DestinationsOf(current, announced) is [var next, ..]
            ? next
            : throw new InvalidOperationException($"neither the server nor {AgentSettings.ServiceEndpointsPath} names another endpoint with port {current.Port} than {current}: name the destination with --to");
    }

    /// <summary>
    /// Relays until both sides closed (true) or either side fails (false, both sides reset). With the agent's client
    /// policy on, every read from the service and every write to it is its observation (the writes mark the requests of
    /// a request/response protocol, the reads their answers) and it may migrate the connection at any time.
    /// </summary>
    public async Task<bool> RunAsync(AgentRuntime agent, MtcpClient mtcp, MtcpStream stream, IPEndPoint service)
    {
        // The service first: a migration may be asked for as soon as _mtcp is set.
        _service = service.ToString();
        _stream = stream;
        Volatile.Write(ref _mtcp, mtcp);
        mtcp.MigrationEnded += (_, report) => OnMigrationEnded(report);
        if (agent.Runtime.MigrationEnabled)
        {
            await CountAlternatesAsync(mtcp).ConfigureAwait(false);
        }
        var policy = await agent.WatchWithPolicyAsync(mtcp, service, _causes, $"relay {Id}").ConfigureAwait(false);
        await using var _ = policy;
        var observed = policy?.Stream ?? stream;
        using var done = new CancellationTokenSource();
        var upstream = ClientToServiceAsync(observed, stream, done.Token);
        var watchdog = settings.IdleTimeout > TimeSpan.Zero ? IdleWatchdogAsync(done.Token) : Task.CompletedTask;
        var buffer = new byte[settings.RelayBufferSize];
        try
        {
            int read;
            while ((read = await observed.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                // A client that reads slowly blocks this send once its socket is full; meanwhile the MTCP window closes
                // and the service's rate falls, which the policy must not blame on the service. A send the socket took
                // at once did not wait on the client.
                var sending = client.SendAsync(buffer.AsMemory(0, read));
                var blockedSince = sending.IsCompleted ? 0 : Stopwatch.GetTimestamp();
                await sending.ConfigureAwait(false);
                if (blockedSince != 0)
                {
                    policy?.NoteReaderWait(Stopwatch.GetElapsedTime(blockedSince));
                }
                Interlocked.Add(ref _fromService, read);
                Volatile.Write(ref _lastActivity, Environment.TickCount64);
            }

            // The service closed its side: the client gets a FIN once every byte is sent (RFC 9293 §3.10.4), and what
            // it still sends goes on to the service until its own FIN (the idle timeout bounds a client that neither
            // sends nor closes). Closing the socket before that would send a RST, which can overtake the last bytes
            // the client has not read yet.
            ConsoleLog.Info($"relay {Id}: {_service} closed after {Interlocked.Read(ref _fromService)} bytes; FIN to {ClientEndPoint}");
            client.Shutdown(SocketShutdown.Send);
            if (!await upstream.ConfigureAwait(false))
            {
                return false;
            }

            await done.CancelAsync().ConfigureAwait(false);
            if (Interlocked.Exchange(ref _ended, 1) != 0)
            {
                // The agent reset the relay (it is stopping) while the last bytes went out.
                return false;
            }

            client.Close();
            await stream.DisposeAsync().ConfigureAwait(false);
            ConsoleLog.Info($"relay {Id}: closed ({Interlocked.Read(ref _toService)} bytes to the service, {Interlocked.Read(ref _fromService)} from it)");
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            Abort(e.Message);
            return false;
        }
        finally
        {
            await done.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(upstream, watchdog).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// How many other servers of the current endpoint's service its server announced: none means the server has no
    /// buddy either (both come from the cluster's view of who serves the port), so the connection runs unreplicated.
    /// </summary>
    private async Task CountAlternatesAsync(MtcpClient mtcp)
    {
        try
        {
            var current = MigrationCauses.Endpoint(IPEndPoint.Parse(Volatile.Read(ref _service)));
            var announced = await mtcp.GetAlternateServersAsync().ConfigureAwait(false);
            Volatile.Write(ref _alternates, announced.Count(alternate => alternate.Port == current.Port && alternate != current));
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or FormatException)
        {
            // The connection ended first: nothing to show.
            Volatile.Write(ref _alternates, -1);
        }
    }

    private void OnMigrationEnded(MigrationReport report)
    {
        var completed = report.Outcome == MigrationOutcome.Completed;
        var cause = _causes.Of(report);
        var record = new MigrationStatus(
            DateTimeOffset.UtcNow,
            report.From.ToString(),
            report.To.ToString(),
            completed,
            report.Triggered,
            report.Duration.TotalMilliseconds,
            Interlocked.Read(ref _fromService),
            report.FailureReason,
            cause.Cause,
            cause.Reason);
        lock (_migrations)
        {
            _migrations.Add(record);
        }

        if (completed)
        {
            Volatile.Write(ref _service, report.To.ToString());
            if (Volatile.Read(ref _mtcp) is { } mtcp)
            {
                // The new server announces its own alternates.
                _ = CountAlternatesAsync(mtcp);
            }

            ConsoleLog.Info($"relay {Id}: migrated {report.From} -> {report.To} (cid {_stream?.FirstCid}) in {report.Duration.TotalMilliseconds:0.000} ms at byte {record.AtByteFromService} ({cause})");
        }
        else
        {
            ConsoleLog.Warning($"relay {Id}: migration {report.From} -> {report.To} (cid {_stream?.FirstCid}) ({cause}) failed after {report.Duration.TotalMilliseconds:0.000} ms: {report.FailureReason}; the connection stays on {report.From}");
        }
    }

    /// <summary>
    /// Resets both sides: the client's socket closes with RST (linger 0), the MTCP connection aborts. Nothing once the
    /// relay ended: a relay that closed normally stays in the agent's table until its MTCP client is disposed, and the
    /// agent stopping then must not touch its closed socket.
    /// </summary>
    public void Abort(string reason)
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        ConsoleLog.Warning($"relay {Id} ({ClientEndPoint} -> {_service}) reset: {reason}");
        try
        {
            client.LingerState = new LingerOption(true, 0);
            client.Close();
        }
        catch (SocketException)
        {
            // Already closed by the client; nothing left to reset.
        }

        _stream?.Abort();
    }

    /// <summary>
    /// Copies the client's bytes to the service through <paramref name="toService"/> (the policy's stream when it watches
    /// the connection) up to the client's FIN, which it forwards on <paramref name="stream"/>; false when either side failed.
    /// </summary>
    private async Task<bool> ClientToServiceAsync(Stream toService, MtcpStream stream, CancellationToken done)
    {
        var buffer = new byte[settings.RelayBufferSize];
        try
        {
            int read;
            while ((read = await client.ReceiveAsync(buffer, done).ConfigureAwait(false)) > 0)
            {
                await toService.WriteAsync(buffer.AsMemory(0, read), done).ConfigureAwait(false);
                Interlocked.Add(ref _toService, read);
                Volatile.Write(ref _lastActivity, Environment.TickCount64);
            }

            // The client half-closed (or closed): the service reads the end of the stream after the last byte, and
            // its answer goes on to the client until the service closes.
            ConsoleLog.Info($"relay {Id}: {ClientEndPoint} closed its side after {Interlocked.Read(ref _toService)} bytes; FIN to {_service}");
            stream.Shutdown(SocketShutdown.Send);
            return true;
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            if (!done.IsCancellationRequested)
            {
                Abort($"client side: {e.Message}");
            }

            return false;
        }
    }

    private async Task IdleWatchdogAsync(CancellationToken done)
    {
        var idle = settings.IdleTimeout;
        try
        {
            while (true)
            {
                await Task.Delay(idle / 4, done).ConfigureAwait(false);
                if (Environment.TickCount64 - Volatile.Read(ref _lastActivity) > idle.TotalMilliseconds)
                {
                    Abort($"no byte in either direction for {idle.TotalSeconds:0.#} s (mtcp.agent.serve.idle-timeout)");
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}

using System.Net;
using System.Net.Sockets;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Wire;

namespace Mtcp.Agent;

/// <summary>One kernel-TCP client and its MTCP connection to the service, copied in both directions.</summary>
internal sealed class Relay(long id, Socket client, AgentSettings settings)
{
    private static readonly TimeSpan ClientFinTimeout = TimeSpan.FromSeconds(10);

    private readonly DateTimeOffset _since = DateTimeOffset.UtcNow;
    private readonly List<MigrationStatus> _migrations = [];
    private readonly MigrationCauses _causes = new();
    private MtcpStream? _stream;
    private MtcpClient? _mtcp;
    private string _service = "(connecting)";
    private long _toService;
    private long _fromService;
    private long _lastActivity = Environment.TickCount64;
    private int _aborted;

    public long Id { get; } = id;

    public EndPoint? ClientEndPoint { get; } = client.RemoteEndPoint;

    public RelayStatus Status()
    {
        lock (_migrations)
        {
            return new(Id, ClientEndPoint?.ToString() ?? "?", Volatile.Read(ref _service), _since, Interlocked.Read(ref _toService), Interlocked.Read(ref _fromService), [.. _migrations]);
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
    /// Relays until the service closes (true) or either side fails (false, both sides reset). With the agent's client
    /// policy on, every read from the service is its observation and it may migrate the connection at any time.
    /// </summary>
    public async Task<bool> RunAsync(AgentRuntime agent, MtcpClient mtcp, MtcpStream stream, IPEndPoint service)
    {
        // The service first: a migration may be asked for as soon as _mtcp is set.
        _service = service.ToString();
        _stream = stream;
        Volatile.Write(ref _mtcp, mtcp);
        mtcp.MigrationEnded += (_, report) => OnMigrationEnded(report);
        var policy = await agent.WatchWithPolicyAsync(mtcp, service, _causes, $"relay {Id}").ConfigureAwait(false);
        await using var _ = policy;
        var fromService = policy?.Stream ?? stream;
        using var done = new CancellationTokenSource();
        var upstream = ClientToServiceAsync(stream, done.Token);
        var watchdog = settings.IdleTimeout > TimeSpan.Zero ? IdleWatchdogAsync(done.Token) : Task.CompletedTask;
        var buffer = new byte[settings.RelayBufferSize];
        try
        {
            int read;
            while ((read = await fromService.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                await client.SendAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
                Interlocked.Add(ref _fromService, read);
                Volatile.Write(ref _lastActivity, Environment.TickCount64);
            }

            // The service closed gracefully: the client gets a FIN once every byte is sent (RFC 9293 §3.10.4).
            ConsoleLog.Info($"relay {Id}: {_service} closed after {Interlocked.Read(ref _fromService)} bytes; closing {ClientEndPoint}");
            client.Shutdown(SocketShutdown.Send);

            // A lingering close: wait (bounded) for the client's FIN, because closing a socket that still has
            // unread received bytes sends a RST, which can overtake the last bytes the client has not read yet.
            if (await Task.WhenAny(upstream, Task.Delay(ClientFinTimeout, CancellationToken.None)).ConfigureAwait(false) != upstream)
            {
                ConsoleLog.Warning($"relay {Id}: {ClientEndPoint} did not close within {ClientFinTimeout.TotalSeconds:0} s of the service; closing it");
            }

            await done.CancelAsync().ConfigureAwait(false);
            client.Close();
            await stream.DisposeAsync().ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            Abort(Volatile.Read(ref _aborted) == 0 ? $"{e.Message}" : "aborted");
            return false;
        }
        finally
        {
            await done.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(upstream, watchdog).ConfigureAwait(false);
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
            ConsoleLog.Info($"relay {Id}: migrated {report.From} -> {report.To} in {report.Duration.TotalMilliseconds:0.000} ms at byte {record.AtByteFromService} ({cause})");
        }
        else
        {
            ConsoleLog.Warning($"relay {Id}: migration {report.From} -> {report.To} ({cause}) failed after {report.Duration.TotalMilliseconds:0.000} ms: {report.FailureReason}; the connection stays on {report.From}");
        }
    }

    /// <summary>Resets both sides: the client's socket closes with RST (linger 0), the MTCP connection aborts.</summary>
    public void Abort(string reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
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

    private async Task ClientToServiceAsync(MtcpStream stream, CancellationToken done)
    {
        var buffer = new byte[settings.RelayBufferSize];
        try
        {
            int read;
            while ((read = await client.ReceiveAsync(buffer, done).ConfigureAwait(false)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, read), done).ConfigureAwait(false);
                Interlocked.Add(ref _toService, read);
                Volatile.Write(ref _lastActivity, Environment.TickCount64);
            }

            // The client half-closed. MTCP streams have no half-close, so the service keeps the connection
            // open until it has answered and closes it; the relay ends then.
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            if (!done.IsCancellationRequested)
            {
                Abort($"client side: {e.Message}");
            }
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

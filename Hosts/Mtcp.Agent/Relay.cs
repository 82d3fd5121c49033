using System.Net;
using System.Net.Sockets;
using Mtcp.Actors.Api;
using Mtcp.Hosting;

namespace Mtcp.Agent;

/// <summary>One kernel-TCP client and its MTCP connection to the service, copied in both directions.</summary>
internal sealed class Relay(long id, Socket client, AgentSettings settings)
{
    private static readonly TimeSpan ClientFinTimeout = TimeSpan.FromSeconds(10);

    private readonly DateTimeOffset _since = DateTimeOffset.UtcNow;
    private MtcpStream? _stream;
    private string _service = "(connecting)";
    private long _toService;
    private long _fromService;
    private long _lastActivity = Environment.TickCount64;
    private int _aborted;

    public long Id { get; } = id;

    public EndPoint? ClientEndPoint { get; } = client.RemoteEndPoint;

    public RelayStatus Status() => new(Id, ClientEndPoint?.ToString() ?? "?", _service, _since, Interlocked.Read(ref _toService), Interlocked.Read(ref _fromService));

    /// <summary>Relays until the service closes (true) or either side fails (false, both sides reset).</summary>
    public async Task<bool> RunAsync(MtcpStream stream, IPEndPoint service)
    {
        _stream = stream;
        _service = service.ToString();
        using var done = new CancellationTokenSource();
        var upstream = ClientToServiceAsync(stream, done.Token);
        var watchdog = settings.IdleTimeout > TimeSpan.Zero ? IdleWatchdogAsync(done.Token) : Task.CompletedTask;
        var buffer = new byte[settings.RelayBufferSize];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer).ConfigureAwait(false)) > 0)
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

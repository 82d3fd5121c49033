using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Hosting;
using Mtcp.Wire;
using Spectre.Console;

namespace Mtcp.Agent;

/// <summary>A fetch that did not deliver the whole file; the message says what happened.</summary>
public sealed class FetchFailedException(string message) : Exception(message);

/// <summary>What a completed fetch delivered.</summary>
/// <param name="PolicyMigrations">how many of <paramref name="Migrations"/> the client policy asked for.</param>
public sealed record FetchResult(IPEndPoint Service, string Path, long Bytes, string Sha256, TimeSpan Elapsed, int Migrations, int PolicyMigrations);

/// <summary>
/// The agent's <c>fetch</c>: one HTTP/1.1 GET (RFC 9112) over an MTCP connection, the body written to a file and
/// hashed with SHA-256 as it arrives, with a progress bar on standard error. With the agent's client policy on, the
/// body's reads are its observations and it migrates the connection when the service's throughput drops (thesis 5.3.2).
/// </summary>
public sealed class Fetcher(AgentRuntime agent, AgentSettings settings)
{
    /// <param name="migrateEvery">
    /// when positive, migrates the connection each time this many more bytes of the body arrived, to the next endpoint of
    /// <c>mtcp.agent.service-endpoints</c> (client-initiated, thesis 3.2); 0: only a server's MIGRATE_TRIGGER migrates it.
    /// </param>
    public async Task<FetchResult> FetchAsync(string target, FileInfo output, bool showProgress, long migrateEvery, CancellationToken cancellationToken)
    {
        var (services, host, path) = Resolve(target);
        var started = Stopwatch.GetTimestamp();
        var (client, stream, service) = await agent.ConnectAsync(services, cancellationToken).ConfigureAwait(false);
        using var __ = client;
        await using var _ = stream.ConfigureAwait(false);
        var migrations = 0;
        var policyMigrations = 0;
        var migrationLines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var causes = new MigrationCauses();
        var current = service;
        client.MigrationEnded += (_, report) =>
        {
            var cause = causes.Of(report);
            var text = report.Outcome == MigrationOutcome.Completed
                ? $"migrated {report.From} -> {report.To} (cid {stream.FirstCid}) in {report.Duration.TotalMilliseconds:0.0} ms ({cause})"
                : $"migration {report.From} -> {report.To} (cid {stream.FirstCid}) ({cause}) failed: {report.FailureReason}";
            if (report.Outcome == MigrationOutcome.Completed)
            {
                Interlocked.Increment(ref migrations);
                Volatile.Write(ref current, IPEndPoint.Parse(report.To.ToString()));
                if (cause.Cause == MigrationCause.Policy)
                {
                    Interlocked.Increment(ref policyMigrations);
                }
            }

            if (showProgress)
            {
                // Written under the bar once the download ends: a line printed while it draws would break it.
                migrationLines.Enqueue(text);
            }
            else
            {
                ConsoleLog.Info(text);
            }
        };
        ConsoleLog.Info($"fetching {path} from {service} over MTCP ({stream.LocalEndPoint}, cid {stream.FirstCid})");
        var policy = await agent.WatchWithPolicyAsync(client, service, causes, "fetch").ConfigureAwait(false);
        await using var ___ = policy;
        var request = $"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mtcp-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n";
        await (policy?.Stream ?? stream).WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken).ConfigureAwait(false);

        var reader = new ProtocolReader(policy?.Stream ?? stream, maxLineLength: 8192);
        var (status, contentLength) = await ReadHeadAsync(reader, cancellationToken).ConfigureAwait(false);
        if (status != 200)
        {
            var body = new byte[4096];
            var read = await WithStallTimeoutAsync(token => reader.ReadAsync(body, token), cancellationToken).ConfigureAwait(false);
            throw new FetchFailedException($"{service} answered {status}: {Encoding.UTF8.GetString(body, 0, read).Trim()}");
        }

        var pool = settings.ServiceEndpoints;
        if (migrateEvery > 0 && pool.Count < 2)
        {
            throw new FetchFailedException($"--migrate-every needs at least two endpoints in {AgentSettings.ServiceEndpointsPath} (or --service) to migrate between");
        }

        var bodyBytes = 0L;
        var nextMigrationAt = migrateEvery;
        Task migrating = Task.CompletedTask;
        void MigrateWhenDue(long bytes)
        {
            bodyBytes += bytes;
            if (migrateEvery <= 0 || bodyBytes < nextMigrationAt || !migrating.IsCompleted)
            {
                return;
            }

            nextMigrationAt = bodyBytes + migrateEvery;
            var destination = pool[(pool.ToList().IndexOf(Volatile.Read(ref current)) + 1) % pool.Count];
            migrating = MigrateAsync(destination);
        }

        async Task MigrateAsync(IPEndPoint destination)
        {
            var to = MigrationCauses.Endpoint(destination);
            var cause = new MigrationCause(MigrationCause.Operator, $"--migrate-every-mib {migrateEvery >> 20}");
            causes.Requested(to, cause);
            try
            {
                await client.MigrateAsync(to, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidOperationException e)
            {
                // Migration off, the policy's migration in progress, or the connection already closing: the download
                // goes on where it is.
                causes.Withdrawn(to, cause);
                ConsoleLog.Warning($"cannot migrate to {destination}: {e.Message}");
            }
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received;
        var file = new FileStream(output.FullName, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0, useAsync: true);
        await using (file.ConfigureAwait(false))
        {
            received = showProgress
                ? await ProgressConsole().Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                    .StartAsync(async context =>
                    {
                        var name = ShortName(path);
                        var task = context.AddTask(Markup.Escape(name), maxValue: contentLength ?? 1);
                        return await CopyBodyAsync(reader, file, hash, contentLength, bytes =>
                        {
                            task.Increment(bytes);
                            MigrateWhenDue(bytes);

                            // Short enough to leave the bar its room in 80 columns: the count and the current server.
                            if (Volatile.Read(ref migrations) is var moved and > 0)
                            {
                                task.Description = Markup.Escape($"{name} on {Volatile.Read(ref current)} ({moved} moves)");
                            }
                        }, cancellationToken).ConfigureAwait(false);
                    }).ConfigureAwait(false)
                : await CopyBodyAsync(reader, file, hash, contentLength, MigrateWhenDue, cancellationToken).ConfigureAwait(false);
        }

        // A migration asked for near the end may still be waiting for its SYN+ACK; its report is what counts.
        await migrating.ConfigureAwait(false);
        while (migrationLines.TryDequeue(out var line))
        {
            ConsoleLog.Info(line);
        }

        if (contentLength is { } expected && received != expected)
        {
            throw new FetchFailedException($"{service} closed the connection after {received} of {expected} bytes");
        }

        return new FetchResult(service, path, received, Convert.ToHexStringLower(hash.GetHashAndReset()), Stopwatch.GetElapsedTime(started), Volatile.Read(ref migrations), Volatile.Read(ref policyMigrations));
    }

    /// <summary>A URL names its own service endpoint; a bare path goes to the configured service pool.</summary>
    private (IReadOnlyList<IPEndPoint> Services, string Host, string Path) Resolve(string target)
    {
        if (target.StartsWith('/'))
        {
            var services = settings.RequireServices();
            return (services, services[0].ToString(), target);
        }

        if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || !IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address))
        {
            throw new FetchFailedException($"{target} must be a path (/file) or an http:// URL with an IP address (http://127.0.0.2:8080/file)");
        }

        return ([new IPEndPoint(address, uri.Port)], uri.Authority, uri.PathAndQuery);
    }

    private async Task<(int Status, long? ContentLength)> ReadHeadAsync(ProtocolReader reader, CancellationToken cancellationToken)
    {
        var statusLine = await WithStallTimeoutAsync(token => reader.ReadLineAsync(token), cancellationToken).ConfigureAwait(false)
            ?? throw new FetchFailedException("the service closed the connection without answering");
        var parts = statusLine.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var status))
        {
            throw new FetchFailedException($"the service's answer is not HTTP/1.x: {statusLine}");
        }

        long? contentLength = null;
        while (true)
        {
            var header = await WithStallTimeoutAsync(token => reader.ReadLineAsync(token), cancellationToken).ConfigureAwait(false)
                ?? throw new FetchFailedException("the service closed the connection inside the response headers");
            if (header.Length == 0)
            {
                return (status, contentLength);
            }

            var colon = header.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && header[..colon].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                contentLength = long.TryParse(header[(colon + 1)..].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
                    ? length
                    : throw new FetchFailedException($"invalid Content-Length: {header}");
            }
        }
    }

    private async Task<long> CopyBodyAsync(ProtocolReader reader, Stream file, IncrementalHash hash, long? contentLength, Action<long> progress, CancellationToken cancellationToken)
    {
        var buffer = new byte[256 * 1024];
        long received = 0;
        while (contentLength is not { } expected || received < expected)
        {
            var wanted = contentLength is { } total ? (int)Math.Min(buffer.Length, total - received) : buffer.Length;
            var read = await WithStallTimeoutAsync(token => reader.ReadAsync(buffer.AsMemory(0, wanted), token), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, read);
            await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            received += read;
            progress(read);
        }

        return received;
    }

    private async Task<T> WithStallTimeoutAsync<T>(Func<CancellationToken, ValueTask<T>> read, CancellationToken cancellationToken)
    {
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(settings.FetchStallTimeout);
        try
        {
            return await read(stall.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new FetchFailedException($"no data from the service for {settings.FetchStallTimeout.TotalSeconds:0.#} s (mtcp.agent.fetch.stall-timeout); giving up");
        }
        catch (IOException e)
        {
            throw new FetchFailedException($"the connection to the service failed: {e.Message}");
        }
    }

    /// <summary>The last segment of a request path, at most 24 characters, for the progress bar's label.</summary>
    private static string ShortName(string path)
    {
        var name = path[(path.LastIndexOf('/') + 1)..];
        name = name.Length == 0 ? path : name;
        return name.Length <= 24 ? name : $"{name[..11]}..{name[^11..]}";
    }

    private static IAnsiConsole ProgressConsole() =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
}

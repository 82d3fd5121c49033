using System.Net;
using Akka.Actor;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Migration;
using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>
/// The client side of one MTCP connection, in the manner of <see cref="System.Net.Sockets.TcpClient"/>:
/// <see cref="ConnectAsync"/> opens it to a service endpoint and returns its stream.
/// </summary>
/// <remarks>
/// Client-initiated migration (thesis ch. 3.2) belongs to this object: the stream it returned keeps working
/// across migrations, so the reads and writes of the application never see one. Migration needs the runtime's
/// <see cref="MtcpRuntime.EnableMigrationAsync"/> before connecting; every migration's end is reported by
/// <see cref="MigrationEnded"/> and the <see cref="MigrationMetrics"/> instruments.
/// </remarks>
public sealed class MtcpClient : IDisposable
{
    private readonly MtcpRuntime _runtime;
    private MtcpStream? _stream;
    private EndpointChannel? _channel;

    public MtcpClient(MtcpRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        _runtime = runtime;
    }

    /// <summary>The connected stream; null before <see cref="ConnectAsync"/> completes.</summary>
    public MtcpStream? Stream => _stream;

    /// <summary>
    /// Raised when a migration ends, completed or failed (started by <see cref="MigrateAsync"/> or by a server's
    /// MIGRATE_TRIGGER). Runs on the connection's actor: keep handlers short and non-blocking.
    /// </summary>
    public event EventHandler<MigrationReport>? MigrationEnded;

    /// <summary>Opens the connection (three-way handshake) to <paramref name="service"/>.</summary>
    /// <exception cref="IOException">the peer refused (RST) or did not answer within <c>mtcp.tcp.connect-timeout</c>.</exception>
    /// <exception cref="OperationCanceledException">cancelled before the handshake completed; the attempt is aborted.</exception>
    public async Task<MtcpStream> ConnectAsync(IPEndPoint service, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (_stream is not null)
        {
            throw new InvalidOperationException("this client is already connected");
        }

        if (service.Port is 0)
        {
            throw new ArgumentException("the service endpoint needs a port", nameof(service));
        }

        // The endpoint watches the token: cancelling aborts the handshake and fails the task with OperationCanceledException.
        var channel = await _runtime.ConnectAsync(IpAddress.FromIPAddress(service.Address), (ushort)service.Port, cancellationToken).ConfigureAwait(false);
        _channel = channel;
        channel.MigrationReported = report => MigrationEnded?.Invoke(this, report);
        _stream = new MtcpStream(channel);
        return _stream;
    }

    /// <summary>
    /// Migrates the connection to <paramref name="destination"/>, or when null to the first alternate server learned
    /// from the servers' TCP_MIGRATE (thesis 4.2.3). Completes when the migration ends: a failed one (refused, timed
    /// out, unreachable) reports <see cref="MigrationOutcome.Failed"/> and leaves the connection on its server.
    /// Cancelling stops the wait, not the migration.
    /// </summary>
    /// <exception cref="InvalidOperationException">not connected, migration not enabled, a migration in progress, or no destination known.</exception>
    public async Task<MigrationReport> MigrateAsync(ServerEndpoint? destination = null, CancellationToken cancellationToken = default)
    {
        var channel = _channel ?? throw new InvalidOperationException("connect before migrating");
        if (channel.MigrationReported is null || !_runtime.MigrationEnabled)
        {
            throw new InvalidOperationException("migration is not enabled on this client's runtime (MtcpRuntime.EnableMigrationAsync before connecting)");
        }

        var completion = new TaskCompletionSource<MigrationReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        return await channel.AskAsync(new MigrateRequested(destination, completion), completion, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The cooperating servers this connection learned from the servers' TCP_MIGRATE (thesis 4.2.3, fig. 4.6): on
    /// the SYN+ACK, and on later segments when the SYN+ACK had no room for them all. <see cref="MigrateAsync"/>
    /// without a destination takes the first that is not the current server.
    /// </summary>
    /// <exception cref="InvalidOperationException">not connected.</exception>
    public async Task<IReadOnlyList<ServerEndpoint>> GetAlternateServersAsync(CancellationToken cancellationToken = default)
    {
        var channel = _channel ?? throw new InvalidOperationException("connect before asking for alternate servers");
        var completion = new TaskCompletionSource<IReadOnlyList<ServerEndpoint>>(TaskCreationOptions.RunContinuationsAsynchronously);
        return await channel.AskAsync(new AlternateServersRequested(completion), completion, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _stream?.Dispose();
}

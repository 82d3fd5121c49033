using System.Net;
using Akka.Actor;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Migration;
using Mtcp.Stack.Migration;
using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>
/// A server-side connection accepted by an <see cref="MtcpListener"/>. The application talks through
/// <see cref="Stream"/>; disposing the connection closes it gracefully.
/// </summary>
/// <remarks>
/// Migration (thesis 3.3.2): the application exports its state at restart points with <see cref="ExportState"/>;
/// on a connection that migrated in, <see cref="ImportState"/> returns the last exported state, from which the
/// application resumes (it re-executes from there; bytes it writes again are discarded, thesis 4.2.3). When the
/// connection migrates away, <see cref="MigratedAway"/> completes and every read, write and export fails with
/// <see cref="ConnectionMigratedException"/> (EMIGRATED), never silently; with <see cref="EndOfStreamOnMigration"/>
/// reads end at 0 instead, and <see cref="IsMigratedAway"/> says why.
/// </remarks>
public sealed class MtcpConnection : IAsyncDisposable, IDisposable
{
    private readonly EndpointChannel _channel;

    internal MtcpConnection(EndpointChannel channel)
    {
        _channel = channel;
        Stream = new MtcpStream(channel);
    }

    public MtcpStream Stream { get; }

    public IPEndPoint LocalEndPoint => Stream.LocalEndPoint;

    public IPEndPoint RemoteEndPoint => Stream.RemoteEndPoint;

    /// <summary>Completes when the connection migrated to another server; the application should then stop serving it.</summary>
    public Task MigratedAway => _channel.MigratedAway.Task;

    public bool IsMigratedAway => _channel.MigratedAway.Task.IsCompleted;

    /// <summary>
    /// Where the connection went once <see cref="MigratedAway"/> completed; null before, and when a buddy that took the
    /// connection over told this node to drop it (docs/failover.md).
    /// </summary>
    public ServerEndpoint? MigratedTo => _channel.MigratedAway.Task.IsCompletedSuccessfully ? _channel.MigratedAway.Task.Result : null;

    /// <summary>
    /// How a read ends when the connection migrates away. False (the default): it fails with
    /// <see cref="ConnectionMigratedException"/> (EMIGRATED), as every write and export does. True: it returns 0, as at
    /// the client's FIN, and <see cref="IsMigratedAway"/> is already true when it does; writes and exports still fail with
    /// EMIGRATED. For an application whose serving loop ends at end of stream anyway, this spares throwing an exception
    /// through every frame of that loop at each migration (allocation and CPU on the migration path). Set it before the
    /// first read.
    /// </summary>
    public bool EndOfStreamOnMigration
    {
        get => _channel.Reader.EndOfStreamOnMigration;
        set => _channel.Reader.EndOfStreamOnMigration = value;
    }

    /// <summary>The connection's first Cid (thesis 3.2.1): the same on every node it visits, so logs name it by this.</summary>
    public ConnectionId FirstCid => _channel.FirstCid;

    /// <summary>For a connection that migrated in: the server it came from and how its state arrived; null for a new one.</summary>
    public MigrationArrival? Arrival => _channel.Arrival;

    /// <summary>
    /// export_state (thesis 3.3.2): a restart point. Call it between reads and writes (not with one in flight): the
    /// snapshot covers every byte read and written so far.
    /// </summary>
    /// <exception cref="ConnectionMigratedException">the connection migrated away.</exception>
    public void ExportState(ReadOnlySpan<byte> appState)
    {
        if (IsMigratedAway)
        {
            throw new ConnectionMigratedException("the connection migrated to another server (EMIGRATED)");
        }

        // Counted before it is told: a read or write asked after it waits until the endpoint has taken it.
        _channel.Exports.Asked();
        _channel.Endpoint.Tell(new ExportRequested(appState.ToArray()), Akka.Actor.ActorRefs.NoSender);
    }

    /// <summary>import_state (thesis 3.3.2): NEW, or MIGRATED with the origin's last exported application state.</summary>
    /// <exception cref="ConnectionMigratedException">the connection migrated away.</exception>
    public ImportedState ImportState() =>
        IsMigratedAway ? throw new ConnectionMigratedException("the connection migrated to another server (EMIGRATED)") : _channel.Imported;

    /// <summary>
    /// Sends the client a MIGRATE_TRIGGER (thesis 3.2.1) asking it to migrate to <paramref name="destination"/>, or when
    /// null to an alternate server of its choice. Best effort: the client acts on it only if its authenticator
    /// verifies and no migration is in progress; <see cref="MigratedAway"/> tells when the connection left.
    /// </summary>
    public void TriggerMigration(ServerEndpoint? destination = null) =>
        _channel.Endpoint.Tell(new TriggerRequested(destination), Akka.Actor.ActorRefs.NoSender);

    /// <summary>
    /// The grant a third party needs to trigger this connection's migration until its next one (thesis 3.2.1), e.g. a
    /// load-balancing node or an operator tool, which sends it with <see cref="MtcpRuntime.SendMigrationTrigger"/>.
    /// Null when this server holds no credential for the connection (migration off, or it migrated away).
    /// </summary>
    public async Task<MigrationTriggerGrant?> IssueTriggerGrantAsync(CancellationToken cancellationToken = default)
    {
        if (IsMigratedAway)
        {
            return null;
        }

        var answer = await _channel.Endpoint.Ask<TriggerKeyAnswer>(TriggerKeyRequested.Instance, cancellationToken).ConfigureAwait(false);
        return answer.Grant;
    }

    public void Dispose() => Stream.Dispose();

    public ValueTask DisposeAsync()
    {
        Stream.Dispose();
        return ValueTask.CompletedTask;
    }
}

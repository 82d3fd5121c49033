using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// <c>t_conn_state</c> of thesis 4.2.2: the state snapshot the server application exported at its last restart
/// point, with the two stream positions that tie it to the socket buffers (thesis 4.2.3, end).
/// </summary>
/// <param name="AppState"><c>app_state</c>: the application's own bytes.</param>
/// <param name="RcvSeqSnapshot"><c>rcv_seq_snapshot</c> = <c>rcv_nxt - so_rcv.sb_cc</c>, the application's read pointer.</param>
/// <param name="SndSeqSnapshot"><c>snd_seq_snapshot</c> = <c>snd_una - so_snd_bytes_dups + so_snd.sb_cc</c>.</param>
/// <param name="TSnapshot"><c>t_snapshot</c>: TCP state, flags and MSS at the snapshot.</param>
/// <param name="SoSnapshot"><c>so_snapshot</c>: socket state and options at the snapshot.</param>
public sealed record ConnectionSnapshot(
    ReadOnlyMemory<byte> AppState,
    SeqNumber RcvSeqSnapshot,
    SeqNumber SndSeqSnapshot,
    TcpSnapshot TSnapshot,
    SocketSnapshot SoSnapshot);

/// <summary>Whether an accepted connection is a fresh one or the continuation of a migrated one (thesis 4.2.1, TCP_APP_STATE).</summary>
public enum ConnectionOrigin
{
    /// <summary>A new client session: the application starts from its initial state.</summary>
    New,

    /// <summary>A migrated session: the application resumes from <see cref="ImportedState.AppState"/>.</summary>
    Migrated,
}

/// <summary>What <see cref="TcpConnection.ImportState"/> returns: NEW or MIGRATED, and the last snapshot's application bytes.</summary>
public sealed record ImportedState(ConnectionOrigin Origin, ReadOnlyMemory<byte> AppState)
{
    /// <summary>The service endpoint a migrated connection came from (the previous server); null for a new one.</summary>
    public ServerEndpoint? MigratedFrom { get; init; }
}

/// <summary>
/// EMIGRATED: the connection has migrated to another server; this endpoint no longer carries it (thesis 4.1.2,
/// <c>so_error</c> "used to report to the application that a particular connection has migrated").
/// </summary>
public sealed class ConnectionMigratedException : InvalidOperationException
{
    public ConnectionMigratedException()
        : base("EMIGRATED: the connection has migrated to another server")
    {
    }

    public ConnectionMigratedException(string message)
        : base(message)
    {
    }

    public ConnectionMigratedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Stack.Migration;

namespace Mtcp.Server;

/// <summary>
/// The applications' <see cref="IConnectionState"/> onto an MTCP connection: <c>get_state</c> is
/// <see cref="MtcpConnection.ImportState"/>, <c>set_state</c> is <see cref="MtcpConnection.ExportState"/> (thesis 3.3.2).
/// </summary>
/// <param name="migratedIn">called from <see cref="Import"/> with the snapshot's size when the connection arrived by migration.</param>
internal sealed class MigratingConnectionState(MtcpConnection connection, Action<int>? migratedIn = null) : IConnectionState
{
    public bool CanMigrate => true;

    public int LastSnapshotBytes { get; private set; }

    /// <summary>Bytes of the snapshot the connection arrived with; 0 for a new connection.</summary>
    public int ImportedSnapshotBytes { get; private set; }

    public bool ArrivedByMigration { get; private set; }

    public Apps.ImportedState Import()
    {
        var imported = connection.ImportState();
        if (imported.Origin != ConnectionOrigin.Migrated)
        {
            return Apps.ImportedState.New;
        }

        ArrivedByMigration = true;
        ImportedSnapshotBytes = imported.AppState.Length;
        migratedIn?.Invoke(ImportedSnapshotBytes);
        return new Apps.ImportedState(ConnectionKind.Migrated, imported.AppState);
    }

    public void Export(ReadOnlySpan<byte> snapshot)
    {
        connection.ExportState(snapshot);
        LastSnapshotBytes = snapshot.Length;
    }
}

namespace Mtcp.Apps;

/// <summary>
/// The connection state of a runtime that does not migrate connections: every connection is new, and an exported
/// snapshot is not kept, because no other server will ever ask for it. Its size is remembered so that hosts can
/// still report what a snapshot would cost.
/// </summary>
public sealed class NoMigrationState : IConnectionState
{
    public bool CanMigrate => false;

    public int LastSnapshotBytes { get; private set; }

    public ImportedState Import() => ImportedState.New;

    public void Export(ReadOnlySpan<byte> snapshot) => LastSnapshotBytes = snapshot.Length;
}

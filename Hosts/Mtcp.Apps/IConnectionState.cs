namespace Mtcp.Apps;

/// <summary>What <see cref="IConnectionState.Import"/> found for a connection (thesis 6.1.2, <c>get_state</c>).</summary>
public enum ConnectionKind
{
    /// <summary>A fresh connection: the application starts from its request.</summary>
    New,

    /// <summary>A connection that migrated here: the application resumes from the imported snapshot.</summary>
    Migrated,
}

/// <summary>The result of <c>get_state</c>: the connection's kind and, when migrated, the application's last snapshot.</summary>
public readonly record struct ImportedState(ConnectionKind Kind, ReadOnlyMemory<byte> Snapshot)
{
    public static ImportedState New { get; } = new(ConnectionKind.New, ReadOnlyMemory<byte>.Empty);
}

/// <summary>
/// The application's side of migration for one connection, the two primitives of thesis 6.1.1: importing the
/// state on accept (<c>get_state</c>) and exporting a snapshot whenever the application's state is consistent with
/// the bytes it has written (<c>set_state</c>).
/// </summary>
public interface IConnectionState
{
    /// <summary>Whether this connection can migrate at all; when false, <see cref="Export"/> keeps nothing.</summary>
    bool CanMigrate { get; }

    /// <summary>Bytes of the last snapshot exported (0 before the first).</summary>
    int LastSnapshotBytes { get; }

    /// <summary>Called once, right after accept.</summary>
    ImportedState Import();

    /// <summary>Replaces the connection's snapshot; called after every write that changed the application's state.</summary>
    void Export(ReadOnlySpan<byte> snapshot);
}

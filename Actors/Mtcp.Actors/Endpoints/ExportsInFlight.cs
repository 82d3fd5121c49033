namespace Mtcp.Actors.Endpoints;

/// <summary>
/// The exports an application asked for (<see cref="Api.MtcpConnection.ExportState"/>) that its endpoint actor has not
/// taken yet. export_state records a restart point (thesis 3.3.2): the read and write pointers as the application
/// stands when it exports. The call only tells the actor, which meanwhile completes reads and writes from its own
/// mailbox as segments come; a read or write the application asked for after the export and served before the actor took
/// it would move the restart point past bytes the exported state does not cover (the next server's replay would skip
/// them and take as many of the client's later bytes instead). So while one is in flight, the stream's operations wait.
/// </summary>
internal sealed class ExportsInFlight
{
    private int _count;

    /// <summary>Whether an export is asked and not yet taken: reads and writes wait for it.</summary>
    public bool Any => Volatile.Read(ref _count) > 0;

    /// <summary>Application side, before the export is told to the actor (and so before any later read or write is asked).</summary>
    public void Asked() => Interlocked.Increment(ref _count);

    /// <summary>Actor side, once the export is taken (recorded or refused).</summary>
    public void Taken() => Interlocked.Decrement(ref _count);
}

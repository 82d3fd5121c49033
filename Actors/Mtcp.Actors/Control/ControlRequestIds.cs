namespace Mtcp.Actors.Control;

/// <summary>
/// Hands out state-request ids for one node: unique among the node's requests in flight (a 64-bit counter
/// does not wrap in practice), so any number of endpoint actors can share one control connection
/// (thesis 4.2.3 multiplexes every transfer onto it). Thread-safe; one instance per node, passed to the
/// endpoint actors that request state.
/// </summary>
internal sealed class ControlRequestIds
{
    private long _last;

    /// <summary>Starts after <paramref name="start"/>; a node may start from a random value so that ids of a restarted node are unlikely to match its previous run's.</summary>
    public ControlRequestIds(ulong start = 0) => _last = unchecked((long)start);

    public ulong Next() => unchecked((ulong)Interlocked.Increment(ref _last));
}

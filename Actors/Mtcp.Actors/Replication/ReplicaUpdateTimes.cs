using System.Diagnostics;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

/// <summary>
/// Replica updates awaiting their ack, by connection, with when each passed one point of the replication path (a
/// control connection sending or receiving it), so that its ack passing the same point measures the time between
/// (<c>mtcp.replication.round_trip.duration</c> on the serving node, <c>mtcp.replication.buddy.hold</c> on the buddy).
/// Bounded by the updates a connection has unacknowledged; a connection's entries go with its release or its endpoint.
/// </summary>
internal sealed class ReplicaUpdateTimes
{
    private readonly Dictionary<ConnectionId, Queue<(ulong Update, long At)>> _pending = [];

    /// <summary>Update <paramref name="update"/> of <paramref name="cid"/> passed at <paramref name="at"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public void Passed(ConnectionId cid, ulong update, long at)
    {
        if (!_pending.TryGetValue(cid, out var updates))
        {
            _pending[cid] = updates = new Queue<(ulong Update, long At)>();
        }

        updates.Enqueue((update, at));
    }

    public void Forget(ConnectionId cid) => _pending.Remove(cid);

    /// <summary>The connections with updates awaiting their ack.</summary>
    public IReadOnlyList<ConnectionId> Awaiting => [.. _pending.Keys];

    /// <summary>
    /// <paramref name="ack"/> passed at <paramref name="now"/>: an ack covers every update up to its own, which are
    /// forgotten; the time since the update it names passed, or null when that one was not seen here.
    /// </summary>
    public TimeSpan? Acknowledged(ReplicaAck ack, long now)
    {
        ArgumentNullException.ThrowIfNull(ack);
        if (!_pending.TryGetValue(ack.Cid, out var updates))
        {
            return null;
        }

        TimeSpan? elapsed = null;
        while (updates.TryPeek(out var update) && update.Update <= ack.RequestId)
        {
            updates.Dequeue();
            if (update.Update == ack.RequestId)
            {
                elapsed = Stopwatch.GetElapsedTime(update.At, now);
            }
        }

        if (updates.Count == 0)
        {
            _pending.Remove(ack.Cid);
        }

        return elapsed;
    }
}

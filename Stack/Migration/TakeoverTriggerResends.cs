using Mtcp.Wire;

namespace Mtcp.Stack.Migration;

/// <summary>
/// When a buddy sends a takeover MIGRATE_TRIGGER again (buddy replication, beyond the thesis; docs/failover.md,
/// "Takeover"). The trigger is one segment to a client that may be busy or behind a lossy path: lost, it left the
/// client to its own silence detection (seconds). So each connection's trigger goes again every
/// <see cref="Interval"/>, at most <see cref="MaxResends"/> times, until the client's special SYN reaches the replica
/// (<see cref="Answered"/>) or the connection is gone (<see cref="Forget"/>: its replica released, or its origin back).
/// Deterministic and clock-free: the driver passes the time in and sends what <see cref="Due"/> returns.
/// </summary>
public sealed class TakeoverTriggerResends
{
    private readonly Dictionary<ConnectionId, (Instant Due, int Left)> _pending = [];

    /// <param name="interval">between two sends of one connection's trigger; positive.</param>
    /// <param name="maxResends">sends after the first; 0: never again.</param>
    public TakeoverTriggerResends(TimeSpan interval, int maxResends)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegative(maxResends);
        Interval = interval;
        MaxResends = maxResends;
    }

    public TimeSpan Interval { get; }

    public int MaxResends { get; }

    /// <summary>Connections whose trigger may still go again.</summary>
    public int Count => _pending.Count;

    /// <summary>The earliest time a trigger is due again; null when none is.</summary>
    public Instant? NextDue => _pending.Count == 0 ? null : _pending.Values.Min(pending => pending.Due);

    /// <summary>The first trigger of <paramref name="cid"/> went at <paramref name="now"/>.</summary>
    public void Sent(ConnectionId cid, Instant now)
    {
        if (MaxResends > 0)
        {
            _pending[cid] = (now + Interval, MaxResends);
        }
    }

    /// <summary>The client's special SYN for <paramref name="cid"/> reached the replica: it has the trigger, or did without.</summary>
    public void Answered(ConnectionId cid) => _pending.Remove(cid);

    /// <summary><paramref name="cid"/> needs no trigger any more (its replica is gone, or its origin is no longer lost).</summary>
    public void Forget(ConnectionId cid) => _pending.Remove(cid);

    /// <summary>The connections whose trigger is to go again now; each is due again one interval later, while sends are left.</summary>
    public IReadOnlyList<ConnectionId> Due(Instant now)
    {
        var due = _pending.Where(pair => pair.Value.Due <= now).Select(pair => pair.Key).ToList();
        foreach (var cid in due)
        {
            var left = _pending[cid].Left - 1;
            if (left == 0)
            {
                _pending.Remove(cid);
            }
            else
            {
                _pending[cid] = (now + Interval, left);
            }
        }

        return due;
    }
}

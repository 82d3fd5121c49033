namespace Mtcp.Stack.Migration;

/// <summary>
/// The 4-tuples a client's connection no longer uses but still holds, each until its release time: the one it left at
/// a switch stays in BLACKHOLE for 2 MSL (thesis 4.2.3 step 4), so that its port is not given to another connection
/// whose segments the old server could still take for the old incarnation's; a failed migration's 4-tuple likewise.
/// A connection holds a few at a time (moving back and forth, it takes each back: <see cref="TakeBack"/>), so a list.
/// Sans-IO: the driver adds <see cref="PollTimeout"/> to the deadline of its one engine timer instead of arming a
/// timer per migration, and frees what <see cref="PollReleased"/> gives when it fires. (A timer per migration, cancelled
/// when the connection came back, left the runtime's timer wheel one pending timer per migration of the last 2 MSL:
/// the client's timers were 8.8 % of its CPU samples during the scale benchmark's migrations.)
/// </summary>
/// <typeparam name="TKey">the driver's name of a 4-tuple.</typeparam>
public sealed class TupleHolds<TKey>
    where TKey : IEquatable<TKey>
{
    private readonly List<(TKey Key, Instant Until)> _held = [];

    /// <summary>4-tuples held now, released or not yet polled as released.</summary>
    public int Count => _held.Count;

    /// <summary>Holds <paramref name="key"/> until <paramref name="until"/>; a 4-tuple held already gets the new time.</summary>
    public void Hold(TKey key, Instant until)
    {
        var index = IndexOf(key);
        if (index >= 0)
        {
            _held[index] = (key, until);
        }
        else
        {
            _held.Add((key, until));
        }
    }

    /// <summary>The connection uses <paramref name="key"/> again: no longer held. False when it was not held.</summary>
    public bool TakeBack(TKey key)
    {
        var index = IndexOf(key);
        if (index < 0)
        {
            return false;
        }

        _held.RemoveAt(index);
        return true;
    }

    /// <summary>The earliest release time; null when nothing is held.</summary>
    public Instant? PollTimeout()
    {
        Instant? earliest = null;
        foreach (var (_, until) in _held)
        {
            earliest = Instant.Earliest(earliest, until);
        }

        return earliest;
    }

    /// <summary>A 4-tuple whose release time is <paramref name="now"/> or earlier, no longer held; call until false.</summary>
    public bool PollReleased(Instant now, out TKey key)
    {
        for (var i = 0; i < _held.Count; i++)
        {
            if (_held[i].Until <= now)
            {
                key = _held[i].Key;
                _held.RemoveAt(i);
                return true;
            }
        }

        key = default!;
        return false;
    }

    private int IndexOf(TKey key)
    {
        for (var i = 0; i < _held.Count; i++)
        {
            if (_held[i].Key.Equals(key))
            {
                return i;
            }
        }

        return -1;
    }
}

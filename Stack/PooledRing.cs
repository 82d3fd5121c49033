using System.Buffers;

namespace Mtcp.Stack;

/// <summary>
/// Storage for the send and receive rings, rented from <see cref="ArrayPool{T}.Shared"/> on demand and returned when
/// a ring empties: a connection's memory follows the bytes it holds, not its configured maxima. Pooled arrays are
/// not zeroed; the rings only ever read bytes they wrote.
/// </summary>
internal static class PooledRing
{
    /// <summary>Smallest ring rented: skips the copies of growing through tiny sizes, costs little per connection.</summary>
    public const int MinimumStorage = 4 * 1024;

    /// <summary>
    /// Returns a ring of at least <paramref name="required"/> bytes holding <paramref name="storage"/>'s bytes at the
    /// same offsets from <paramref name="head"/> (then rebased to 0). Grows by doubling, never beyond
    /// <paramref name="limit"/> unless <paramref name="required"/> itself is larger. An empty ring starts at the size
    /// it last had (<paramref name="lastLength"/>): a connection that empties its buffer at every read (a bulk
    /// transfer) rents the same array again from the pool instead of growing it anew, with a copy per doubling, each
    /// time. The old ring goes back to the pool.
    /// </summary>
    public static byte[] Ensure(byte[] storage, ref int head, int required, int limit, int lastLength)
    {
        if (required <= storage.Length)
        {
            return storage;
        }

        var grownFrom = storage.Length > 0 ? 2 * storage.Length : Math.Max(MinimumStorage, lastLength);
        var wanted = Math.Max(required, Math.Min(limit, grownFrom));
        var grown = ArrayPool<byte>.Shared.Rent(wanted);
        if (storage.Length > 0)
        {
            var first = storage.Length - head;
            storage.AsSpan(head).CopyTo(grown);
            storage.AsSpan(0, head).CopyTo(grown.AsSpan(first));
            ArrayPool<byte>.Shared.Return(storage);
        }

        head = 0;
        return grown;
    }

    /// <summary>Gives <paramref name="storage"/> back to the pool; returns the empty ring to hold instead.</summary>
    public static byte[] Return(byte[] storage)
    {
        if (storage.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(storage);
        }

        return [];
    }
}

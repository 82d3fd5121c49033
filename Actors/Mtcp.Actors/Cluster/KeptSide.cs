using Akka.Actor;
using Akka.Cluster;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// Whether the split-brain resolver's keep-majority strategy (the reference one, <c>akka.cluster.split-brain-resolver</c>)
/// keeps this node's side of a split: the side with more members, and on an even split the side holding the member
/// with the lowest address (<see cref="Member.AddressOrdering"/>). Overload looks like a partition to the failure
/// detector (a pair whose node stalls in a GC pause marks each other unreachable); a buddy on the side that downs
/// itself must not call its peer's clients over, or they would be lost with it (docs/failover.md).
/// </summary>
internal static class KeptSide
{
    /// <param name="self">this node, always on its own side.</param>
    /// <param name="members">the members the resolver counts (Up, Leaving or Exiting), with or without <paramref name="self"/>.</param>
    /// <param name="unreachable">the members this node's view holds unreachable.</param>
    public static bool KeepsSelf(Address self, IEnumerable<Address> members, IEnumerable<Address> unreachable)
    {
        var away = unreachable.Where(member => member != self).ToHashSet();
        var ours = members.Where(member => !away.Contains(member)).Append(self).ToHashSet();
        if (ours.Count != away.Count)
        {
            return ours.Count > away.Count;
        }

        var lowest = ours.Concat(away).Min(Member.AddressOrdering);
        return lowest is not null && ours.Contains(lowest);
    }
}

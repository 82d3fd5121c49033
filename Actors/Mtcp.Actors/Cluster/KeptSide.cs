using Akka.Cluster;
using Akka.Configuration;

namespace Mtcp.Actors.Cluster;

/// <summary>A member as the split-brain resolver counts it: its unique address, its status and its roles.</summary>
internal readonly record struct SplitMember(UniqueAddress Node, MemberStatus Status, IReadOnlySet<string> Roles);

/// <summary>
/// What <see cref="KeptSide.Decide"/> found: whether this node's side of a split is the one the resolver keeps, the
/// members it counted on each side, and why, for the log.
/// </summary>
internal readonly record struct KeptSideDecision(bool Kept, int ThisSide, int OtherSide, string Why);

/// <summary>
/// Whether Akka.Cluster's split-brain resolver, strategy <c>keep-majority</c>, keeps this node's side of a split, decided
/// from this node's view exactly as the resolver's <c>KeepMajority.Decide</c> (Akka.Cluster.SBR, DowningStrategy.cs)
/// decides it on this side:
/// <list type="bullet">
/// <item>it counts the members with the strategy's role (all members without one) whose status is Up or Leaving, not
/// Joining or WeaklyUp (not yet Up everywhere), nor Down or Exiting (already leaving); this node counts on its own side,
/// never as unreachable;</item>
/// <item>the side with more of them is kept; on an even split, the side holding the lowest of them in
/// the resolver's member ordering (host, then port, then uid) is kept; with none of them, every side is downed;</item>
/// <item>a side kept that way must also be kept when the membership changes under way are counted against it (a
/// Joining or WeaklyUp member across the split may be Up over there, a Leaving member on this side may be Exiting
/// over there); otherwise the resolver downs every side.</item>
/// </list>
/// A buddy acts on an unreachable peer only on the kept side: overload looks like a partition to the failure detector,
/// and a pair that marks each other unreachable must not both call the other's clients over (docs/failover.md). The
/// resolver also downs members it finds indirectly connected (unreachable from some members, reachable through others);
/// that needs the cluster's reachability records, which Akka.Cluster does not publish, so it is not decided here.
/// </summary>
internal static class KeptSide
{
    public const string DowningProviderPath = "akka.cluster.downing-provider-class";
    public const string ActiveStrategyPath = "akka.cluster.split-brain-resolver.active-strategy";
    public const string KeepMajorityRolePath = "akka.cluster.split-brain-resolver.keep-majority.role";
    public const string TakeoverSettlePath = "mtcp.cluster.takeover-settle";

    /// <summary>How long a buddy's view must stay unchanged before it takes an unreachable peer over (HOCON/mtcp-reference.conf).</summary>
    public static TimeSpan TakeoverSettle(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var settle = config.GetTimeSpan(TakeoverSettlePath, null);
        return settle > TimeSpan.Zero ? settle : throw new ConfigurationException($"{TakeoverSettlePath} must be a positive duration, not {settle}");
    }

    /// <summary>
    /// Whether the cluster downs with Akka.Cluster's split-brain resolver under <c>keep-majority</c>
    /// (HOCON/mtcp-reference.conf), and the role it counts (empty: every member). Under another downing, no side of a
    /// split can be known to be kept before the down itself.
    /// </summary>
    public static bool IsKeepMajority(Config config, out string role)
    {
        ArgumentNullException.ThrowIfNull(config);
        role = config.GetString(KeepMajorityRolePath, string.Empty) ?? string.Empty;
        return (config.GetString(DowningProviderPath, string.Empty) ?? string.Empty).StartsWith("Akka.Cluster.SBR.SplitBrainResolverProvider", StringComparison.Ordinal)
            && config.GetString(ActiveStrategyPath, string.Empty) == "keep-majority";
    }

    /// <param name="self">this node.</param>
    /// <param name="members">the cluster's members as this node's view holds them, with or without removed ones.</param>
    /// <param name="unreachable">the members this node's view holds unreachable.</param>
    /// <param name="role">the role the resolver counts (<c>keep-majority.role</c>); null or empty: every member.</param>
    public static KeptSideDecision Decide(UniqueAddress self, IReadOnlyCollection<SplitMember> members, IReadOnlySet<UniqueAddress> unreachable, string? role)
    {
        ArgumentNullException.ThrowIfNull(self);
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(unreachable);
        var present = members.Where(member => member.Status != MemberStatus.Removed).ToList();
        var selfStatus = present.Where(member => member.Node.Equals(self)).Select(member => (MemberStatus?)member.Status).FirstOrDefault();
        if (selfStatus is null or MemberStatus.Down or MemberStatus.Exiting)
        {
            return new KeptSideDecision(false, 0, 0, selfStatus is null ? "this node is not a member" : $"this node is {selfStatus}");
        }

        bool Away(SplitMember member) => !member.Node.Equals(self) && unreachable.Contains(member.Node);
        if (!present.Any(Away))
        {
            return new KeptSideDecision(true, 0, 0, "no member is unreachable");
        }

        // The resolver's first decision: Up and Leaving members on either side.
        var counted = Counted(present, role, includingPossiblyUp: false, excludingPossiblyExiting: false);
        var first = Majority(counted, counted, Away);
        if (!first.Kept)
        {
            return first;
        }

        // Membership changing during the split: this side without its Leaving members against the other side with its
        // Joining and WeaklyUp ones. A different answer makes the resolver down every side.
        var fewest = Counted(present, role, includingPossiblyUp: false, excludingPossiblyExiting: true);
        var most = Counted(present, role, includingPossiblyUp: true, excludingPossiblyExiting: false);
        var second = Majority(fewest, most, Away);
        return second.Kept
            ? first
            : new KeptSideDecision(false, second.ThisSide, second.OtherSide, $"membership changing during the split ({second.Why}): every side is downed");
    }

    /// <summary>The resolver's majority decision: this side counted in <paramref name="ours"/>, the other in <paramref name="theirs"/>.</summary>
    private static KeptSideDecision Majority(List<SplitMember> ours, List<SplitMember> theirs, Func<SplitMember, bool> away)
    {
        if (ours.Count == 0)
        {
            return new KeptSideDecision(false, 0, 0, "no member counts: every side is downed");
        }

        var thisSide = ours.Count(member => !away(member));
        var otherSide = theirs.Count(away);
        if (thisSide != otherSide)
        {
            return new KeptSideDecision(thisSide > otherSide, thisSide, otherSide, thisSide > otherSide ? "the majority is here" : "the majority is across the split");
        }

        var lowest = ours.MinBy(member => member.Node, NodeOrdering.Instance);
        return away(lowest)
            ? new KeptSideDecision(false, thisSide, otherSide, $"even split, the lowest address {lowest.Node.Address} is across it")
            : new KeptSideDecision(true, thisSide, otherSide, $"even split, the lowest address {lowest.Node.Address} is here");
    }

    /// <summary>
    /// The members the resolver counts (its <c>GetMembersWithRole</c>): never Down or Exiting; Joining and WeaklyUp only
    /// when <paramref name="includingPossiblyUp"/>; Leaving unless <paramref name="excludingPossiblyExiting"/>.
    /// </summary>
    private static List<SplitMember> Counted(List<SplitMember> members, string? role, bool includingPossiblyUp, bool excludingPossiblyExiting) =>
        members.Where(member => member.Status switch
        {
            MemberStatus.Up => true,
            MemberStatus.Leaving => !excludingPossiblyExiting,
            MemberStatus.Joining or MemberStatus.WeaklyUp => includingPossiblyUp,
            _ => false,
        } && (string.IsNullOrEmpty(role) || member.Roles.Contains(role))).ToList();

    /// <summary>Akka.Cluster's member ordering on unique addresses: <see cref="Member.AddressOrdering"/> (host, then port), then uid.</summary>
    private sealed class NodeOrdering : IComparer<UniqueAddress>
    {
        public static readonly NodeOrdering Instance = new();

        public int Compare(UniqueAddress? x, UniqueAddress? y)
        {
            ArgumentNullException.ThrowIfNull(x);
            ArgumentNullException.ThrowIfNull(y);
            var byAddress = Member.AddressOrdering.Compare(x.Address, y.Address);
            return byAddress != 0 ? byAddress : x.Uid.CompareTo(y.Uid);
        }
    }
}

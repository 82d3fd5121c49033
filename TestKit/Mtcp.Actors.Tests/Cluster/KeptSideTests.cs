using System.Reflection;
using Akka.Cluster;
using Mtcp.Actors.Cluster;

namespace Mtcp.Actors.Tests;

/// <summary>
/// <see cref="KeptSide"/> decides as Akka.Cluster's split-brain resolver (keep-majority) does: Up and Leaving members
/// count, Joining, WeaklyUp, Down and Exiting ones do not; more members win; an even split goes to the side with the
/// lowest address; membership changes under way that could turn the answer make every side downed. Each case names the
/// situation it stands for; the last test checks random views against the resolver's own strategy.
/// </summary>
[Trait("Category", "Failover")]
public sealed class KeptSideTests
{
    private static readonly UniqueAddress N1 = ClusterMembers.Node("10.0.0.1");
    private static readonly UniqueAddress N2 = ClusterMembers.Node("10.0.0.2");
    private static readonly UniqueAddress N3 = ClusterMembers.Node("10.0.0.3");
    private static readonly UniqueAddress N4 = ClusterMembers.Node("10.0.0.4");
    private static readonly UniqueAddress N5 = ClusterMembers.Node("10.0.0.5");

    [Fact]
    public void A_pair_that_marks_each_other_unreachable_must_be_kept_only_on_the_side_of_the_lowest_address()
    {
        SplitMember[] pair = [Up(N1), Up(N2)];

        var low = KeptSide.Decide(N1, pair, Set(N2), role: null);
        var high = KeptSide.Decide(N2, pair, Set(N1), role: null);

        Assert.True(low.Kept, low.Why);
        Assert.False(high.Kept, high.Why);
        Assert.Equal((1, 1), (high.ThisSide, high.OtherSide));
    }

    [Fact]
    public void An_odd_split_must_keep_the_larger_side_whatever_its_addresses()
    {
        SplitMember[] five = [Up(N1), Up(N2), Up(N3), Up(N4), Up(N5)];

        Assert.True(KeptSide.Decide(N2, [Up(N1), Up(N2), Up(N3)], Set(N1), role: null).Kept);
        Assert.True(KeptSide.Decide(N3, [Up(N1), Up(N2), Up(N3)], Set(N1), role: null).Kept);
        Assert.False(KeptSide.Decide(N1, [Up(N1), Up(N2), Up(N3)], Set(N2, N3), role: null).Kept);
        var majority = KeptSide.Decide(N3, five, Set(N1, N2), role: null);
        Assert.True(majority.Kept);
        Assert.Equal((3, 2), (majority.ThisSide, majority.OtherSide));
        Assert.False(KeptSide.Decide(N1, five, Set(N3, N4, N5), role: null).Kept);
    }

    [Fact]
    public void An_even_split_must_keep_the_side_holding_the_lowest_address_by_host_then_port()
    {
        SplitMember[] four = [Up(N1), Up(N2), Up(N3), Up(N4)];
        Assert.True(KeptSide.Decide(N4, four, Set(N2, N3), role: null).Kept);
        Assert.False(KeptSide.Decide(N2, four, Set(N1, N4), role: null).Kept);

        // Akka orders hosts as strings (ordinal), then ports as numbers: "10.0.0.10" comes before "10.0.0.9".
        var ten = ClusterMembers.Node("10.0.0.10");
        var nine = ClusterMembers.Node("10.0.0.9");
        Assert.True(KeptSide.Decide(ten, [Up(nine), Up(ten)], Set(nine), role: null).Kept);
        var low = ClusterMembers.Node("127.0.0.1", 40000);
        var high = ClusterMembers.Node("127.0.0.1", 9000);
        Assert.True(KeptSide.Decide(high, [Up(low), Up(high)], Set(low), role: null).Kept);
    }

    [Fact]
    public void A_downed_member_not_yet_removed_must_count_on_neither_side()
    {
        // The buddy crashed and was downed; the origin then dies: the survivor is alone against the origin.
        SplitMember[] afterBuddyDowned = [Up(N1), Member(N2, MemberStatus.Down), Up(N3)];
        var survivor = KeptSide.Decide(N3, afterBuddyDowned, Set(N1, N2), role: null);
        Assert.False(survivor.Kept, survivor.Why);
        Assert.Equal((1, 1), (survivor.ThisSide, survivor.OtherSide));
        Assert.True(KeptSide.Decide(N1, [Up(N1), Member(N2, MemberStatus.Down), Up(N3)], Set(N2, N3), role: null).Kept);

        // Once the origin is downed too (its control port refused), the survivor stands alone.
        Assert.True(KeptSide.Decide(N3, [Member(N1, MemberStatus.Down), Member(N2, MemberStatus.Down), Up(N3)], Set(N1, N2), role: null).Kept);

        // A reachable downed member does not make this side larger either.
        Assert.False(KeptSide.Decide(N1, [Up(N1), Member(N2, MemberStatus.Down), Up(N3), Up(N4)], Set(N3, N4), role: null).Kept);
    }

    [Fact]
    public void Joining_members_must_not_count_here_and_may_count_across_the_split()
    {
        // A joining member on this side does not break the tie.
        Assert.False(KeptSide.Decide(N2, [Up(N1), Up(N2), Member(N3, MemberStatus.Joining)], Set(N1), role: null).Kept);
        Assert.False(KeptSide.Decide(N2, [Up(N1), Up(N2), Member(N3, MemberStatus.WeaklyUp)], Set(N1), role: null).Kept);

        // Two against one, but a joiner across the split may be Up over there: two against two, lowest across, and the
        // resolver downs every side.
        var changing = KeptSide.Decide(N2, [Up(N1), Up(N2), Up(N3), Member(N4, MemberStatus.Joining)], Set(N1, N4), role: null);
        Assert.False(changing.Kept, changing.Why);
        Assert.Contains("every side", changing.Why);

        // The same with the lowest address here: still kept.
        Assert.True(KeptSide.Decide(N1, [Up(N1), Up(N2), Up(N3), Member(N4, MemberStatus.Joining)], Set(N3, N4), role: null).Kept);
    }

    [Fact]
    public void A_leaving_member_must_count_here_only_if_the_answer_holds_without_it()
    {
        // Up and Leaving count: two against one. Without the leaving member (it may be Exiting over there), one against
        // one with the lowest across: the resolver downs every side.
        var withLeaving = KeptSide.Decide(N2, [Up(N1), Up(N2), Member(N3, MemberStatus.Leaving)], Set(N1), role: null);
        Assert.False(withLeaving.Kept, withLeaving.Why);
        Assert.True(KeptSide.Decide(N2, [Up(N1), Up(N2), Up(N3), Member(N4, MemberStatus.Leaving)], Set(N1), role: null).Kept);

        // A leaving member across the split counts over there.
        Assert.False(KeptSide.Decide(N3, [Up(N1), Member(N2, MemberStatus.Leaving), Up(N3)], Set(N1, N2), role: null).Kept);

        // Exiting members count nowhere.
        Assert.True(KeptSide.Decide(N2, [Member(N1, MemberStatus.Exiting), Up(N2)], Set(N1), role: null).Kept);
    }

    [Fact]
    public void A_node_that_is_downed_removed_or_not_a_member_must_never_be_kept()
    {
        Assert.False(KeptSide.Decide(N1, [Member(N1, MemberStatus.Down), Up(N2), Up(N3)], Set(N2), role: null).Kept);
        Assert.False(KeptSide.Decide(N1, [Member(N1, MemberStatus.Exiting), Up(N2)], Set(N2), role: null).Kept);
        Assert.False(KeptSide.Decide(N1, [Member(N1, MemberStatus.Removed), Up(N2)], Set(N2), role: null).Kept);
        Assert.False(KeptSide.Decide(N1, [Up(N2)], Set(N2), role: null).Kept);
    }

    [Fact]
    public void Nothing_unreachable_but_this_node_itself_must_keep_it()
    {
        Assert.True(KeptSide.Decide(N2, [Up(N1), Up(N2)], Set(), role: null).Kept);

        // The resolver ignores this node's own unreachability (it is always on its own side).
        Assert.True(KeptSide.Decide(N2, [Up(N1), Up(N2)], Set(N2), role: null).Kept);
        Assert.False(KeptSide.Decide(N2, [Up(N1), Up(N2)], Set(N1, N2), role: null).Kept);
    }

    [Fact]
    public void A_role_must_count_only_the_members_that_have_it()
    {
        SplitMember[] members = [Member(N1, MemberStatus.Up, "svc"), Up(N2), Up(N3)];
        Assert.True(KeptSide.Decide(N2, members, Set(N1), role: null).Kept);
        Assert.True(KeptSide.Decide(N2, members, Set(N1), role: string.Empty).Kept);
        Assert.False(KeptSide.Decide(N2, members, Set(N1), role: "svc").Kept);
        Assert.False(KeptSide.Decide(N2, members, Set(N1), role: "other").Kept);
    }

    [Fact]
    public void Random_views_must_be_decided_as_the_split_brain_resolvers_own_keep_majority_decides_them()
    {
        var random = new Random(20261207);
        UniqueAddress[] nodes = [N1, N2, N3, N4, N5, ClusterMembers.Node("10.0.0.1", 4054), ClusterMembers.Node("10.0.0.10"), ClusterMembers.Node("10.0.0.2", 4053, uid: 2)];
        MemberStatus[] statuses = [MemberStatus.Up, MemberStatus.Up, MemberStatus.Up, MemberStatus.Joining, MemberStatus.WeaklyUp, MemberStatus.Leaving, MemberStatus.Exiting, MemberStatus.Down];
        var kept = 0;
        for (var view = 0; view < 2000; view++)
        {
            var count = random.Next(1, nodes.Length + 1);
            var chosen = nodes.OrderBy(_ => random.Next()).Take(count).ToList();
            var self = chosen[0];
            var role = random.Next(4) == 0 ? "svc" : null;
            var members = chosen.Select(node => node.Equals(self)
                ? Member(node, random.Next(5) == 0 ? MemberStatus.Leaving : MemberStatus.Up, random.Next(2) == 0 ? ["svc"] : [])
                : Member(node, statuses[random.Next(statuses.Length)], random.Next(2) == 0 ? ["svc"] : [])).ToList();
            var unreachable = chosen.Skip(1).Where(_ => random.Next(2) == 0).ToHashSet();

            var ours = KeptSide.Decide(self, members, unreachable, role);
            var theirs = ResolverKeepMajority.KeepsThisSide(members, unreachable, role);

            Assert.True(ours.Kept == theirs, $"view {view}: self {self.Address}, members [{string.Join(", ", members.Select(m => $"{m.Node.Address}#{m.Node.Uid} {m.Status} [{string.Join(",", m.Roles)}]"))}], unreachable [{string.Join(", ", unreachable.Select(n => n.Address))}], role {role}: ours {ours.Kept} ({ours.Why}), the resolver's {theirs}");
            kept += ours.Kept ? 1 : 0;
        }

        // Both answers occur often enough for the comparison to mean something.
        Assert.InRange(kept, 400, 1600);
    }

    private static SplitMember Up(UniqueAddress node) => Member(node, MemberStatus.Up);

    private static SplitMember Member(UniqueAddress node, MemberStatus status, params string[] roles) => new(node, status, roles.ToHashSet());

    private static HashSet<UniqueAddress> Set(params UniqueAddress[] nodes) => [.. nodes];

    /// <summary>
    /// Akka.Cluster's own keep-majority strategy (internal <c>Akka.Cluster.SBR.KeepMajority</c>) fed the same view, as the
    /// resolver feeds it from cluster events: this side is kept when it decides to down the unreachable members.
    /// </summary>
    private static class ResolverKeepMajority
    {
        private static readonly Type Strategy = typeof(Akka.Cluster.Cluster).Assembly.GetType("Akka.Cluster.SBR.KeepMajority", throwOnError: true)!;

        public static bool KeepsThisSide(IEnumerable<SplitMember> members, IReadOnlySet<UniqueAddress> unreachable, string? role)
        {
            var strategy = Activator.CreateInstance(Strategy, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, null, [role], null)!;
            var add = Strategy.GetMethod("Add")!;
            var addUnreachable = Strategy.GetMethod("AddUnreachable")!;
            foreach (var member in members.Where(member => member.Status != MemberStatus.Removed))
            {
                var akkaMember = ClusterMembers.Of(member.Node, member.Status, [.. member.Roles]);
                (unreachable.Contains(member.Node) ? addUnreachable : add).Invoke(strategy, [akkaMember]);
            }

            // The resolver decides only with something unreachable; with nothing, it downs nobody.
            var anyUnreachable = (System.Collections.IEnumerable)Strategy.GetProperty("Unreachable")!.GetValue(strategy)!;
            if (!anyUnreachable.GetEnumerator().MoveNext())
            {
                return true;
            }

            var decision = Strategy.GetMethod("Decide")!.Invoke(strategy, null)!;
            return decision.GetType().Name == "DownUnreachable";
        }
    }
}

using Akka.Actor;
using Mtcp.Actors.Cluster;

namespace Mtcp.Actors.Tests;

/// <summary>
/// <see cref="KeptSide"/> decides as the split-brain resolver's keep-majority does: more members win, an even split
/// goes to the side with the lowest address; a buddy on the other side takes nothing over on unreachability.
/// </summary>
[Trait("Category", "Failover")]
public sealed class KeptSideTests
{
    private static readonly Address S1 = Node("10.0.0.1");
    private static readonly Address S2 = Node("10.0.0.2");
    private static readonly Address S3 = Node("10.0.0.3");

    [Fact]
    public void A_pair_split_must_keep_only_the_side_with_the_lowest_address()
    {
        Assert.True(KeptSide.KeepsSelf(S1, [S1, S2], [S2]));
        Assert.False(KeptSide.KeepsSelf(S2, [S1, S2], [S1]));
    }

    [Fact]
    public void Three_nodes_must_keep_the_two_and_not_the_one_cut_off()
    {
        Assert.True(KeptSide.KeepsSelf(S2, [S1, S2, S3], [S1]));
        Assert.True(KeptSide.KeepsSelf(S3, [S1, S2, S3], [S1]));
        Assert.False(KeptSide.KeepsSelf(S1, [S1, S2, S3], [S2, S3]));
    }

    [Fact]
    public void Self_must_count_on_its_own_side_even_when_its_view_lacks_or_suspects_it()
    {
        Assert.True(KeptSide.KeepsSelf(S1, [S2], [S2]));
        Assert.True(KeptSide.KeepsSelf(S2, [S1, S2, S3], [S2, S3]));
        Assert.True(KeptSide.KeepsSelf(S1, [], []));
    }

    [Fact]
    public void Ports_must_order_nodes_on_the_same_host()
    {
        var low = new Address("akka.tcp", "mtcp", "10.0.0.1", 4053);
        var high = new Address("akka.tcp", "mtcp", "10.0.0.1", 4054);

        Assert.True(KeptSide.KeepsSelf(low, [low, high], [high]));
        Assert.False(KeptSide.KeepsSelf(high, [low, high], [low]));
    }

    private static Address Node(string host) => new("akka.tcp", "mtcp", host, 4053);
}

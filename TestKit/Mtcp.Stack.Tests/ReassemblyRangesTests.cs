namespace Mtcp.Stack.Tests;

[Trait("Category", "Stack")]
public sealed class ReassemblyRangesTests
{
    private static (int, int)[] Ranges(ReassemblyRanges ranges) =>
        Enumerable.Range(0, ranges.Count).Select(i => ranges[i]).Select(r => (r.Start, r.End)).ToArray();

    [Fact]
    public void Add_must_keep_ranges_sorted_and_merge_touching_ones()
    {
        var ranges = new ReassemblyRanges(4);
        Assert.True(ranges.Add(20, 30));
        Assert.True(ranges.Add(5, 10));
        Assert.True(ranges.Add(40, 50));
        Assert.Equal([(5, 10), (20, 30), (40, 50)], Ranges(ranges));
        Assert.True(ranges.Add(10, 20)); // bridges the first two
        Assert.Equal([(5, 30), (40, 50)], Ranges(ranges));
        Assert.True(ranges.Add(1, 60)); // swallows everything
        Assert.Equal([(1, 60)], Ranges(ranges));
    }

    [Fact]
    public void Add_must_refuse_a_new_range_when_full_but_still_merge()
    {
        var ranges = new ReassemblyRanges(2);
        ranges.Add(10, 20);
        ranges.Add(30, 40);
        Assert.False(ranges.Add(50, 60));
        Assert.True(ranges.Add(35, 45));
        Assert.Equal([(10, 20), (30, 45)], Ranges(ranges));
    }

    [Fact]
    public void Advance_must_absorb_contiguous_ranges_and_rebase_the_rest()
    {
        var ranges = new ReassemblyRanges(4);
        ranges.Add(5, 10);
        ranges.Add(12, 20);
        Assert.Equal(10, ranges.Advance(5));
        Assert.Equal([(2, 10)], Ranges(ranges));
        Assert.Equal(10, ranges.Advance(3)); // 3 in-order bytes reach the range at 2, which is absorbed whole
        Assert.Equal(0, ranges.Count);
    }
}

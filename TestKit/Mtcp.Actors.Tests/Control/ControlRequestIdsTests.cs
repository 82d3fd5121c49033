using Mtcp.Actors.Control;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class ControlRequestIdsTests
{
    [Fact]
    public void Ids_taken_concurrently_must_all_differ()
    {
        const int PerThread = 20_000;
        var ids = new ControlRequestIds(start: ulong.MaxValue - 10);
        var taken = new ulong[4][];

        Parallel.For(0, taken.Length, thread => taken[thread] = Enumerable.Range(0, PerThread).Select(_ => ids.Next()).ToArray());

        Assert.Equal(taken.Length * PerThread, taken.SelectMany(batch => batch).Distinct().Count());
    }

    [Fact]
    public void Ids_must_follow_the_start_value()
    {
        var ids = new ControlRequestIds(start: 41);

        Assert.Equal(42UL, ids.Next());
        Assert.Equal(43UL, ids.Next());
    }
}

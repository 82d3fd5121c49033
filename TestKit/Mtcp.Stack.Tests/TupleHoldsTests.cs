using Mtcp.Stack.Migration;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The 4-tuples a client's connection left, each held until its release time (<see cref="TupleHolds{TKey}"/>): one
/// deadline for the driver's engine timer, released only when due, taken back when the connection reuses one.
/// </summary>
[Trait("Category", "Stack")]
public sealed class TupleHoldsTests
{
    private static readonly ServerEndpoint S1 = new(IpAddress.Parse("10.0.0.2"), 80);
    private static readonly ServerEndpoint S2 = new(IpAddress.Parse("10.0.0.3"), 80);
    private static readonly TimeSpan TwoMsl = TimeSpan.FromSeconds(60);
    private static readonly Instant Start = Instant.FromMilliseconds(1_000);

    [Fact]
    public void Nothing_held_must_ask_for_no_deadline_and_release_nothing()
    {
        var holds = new TupleHolds<ServerEndpoint>();

        Assert.Null(holds.PollTimeout());
        Assert.False(holds.PollReleased(Start + TwoMsl, out _));
        Assert.False(holds.TakeBack(S1));
        Assert.Equal(0, holds.Count);
    }

    [Fact]
    public void A_hold_must_be_released_at_its_time_and_not_a_microsecond_before()
    {
        var holds = new TupleHolds<ServerEndpoint>();
        holds.Hold(S1, Start + TwoMsl);

        Assert.Equal(Start + TwoMsl, holds.PollTimeout());
        Assert.False(holds.PollReleased(Start + TwoMsl - TimeSpan.FromTicks(10), out _));
        Assert.Equal(1, holds.Count);

        Assert.True(holds.PollReleased(Start + TwoMsl, out var released));
        Assert.Equal(S1, released);
        Assert.False(holds.PollReleased(Start + TwoMsl, out _));
        Assert.Null(holds.PollTimeout());
    }

    [Fact]
    public void The_deadline_must_be_the_earliest_hold_and_each_must_be_released_once_in_its_turn()
    {
        var holds = new TupleHolds<ServerEndpoint>();
        holds.Hold(S2, Start + TwoMsl + TimeSpan.FromSeconds(1));
        holds.Hold(S1, Start + TwoMsl);

        Assert.Equal(Start + TwoMsl, holds.PollTimeout());
        Assert.True(holds.PollReleased(Start + TwoMsl, out var first));
        Assert.Equal(S1, first);
        Assert.False(holds.PollReleased(Start + TwoMsl, out _));
        Assert.Equal(Start + TwoMsl + TimeSpan.FromSeconds(1), holds.PollTimeout());

        // A late timer releases everything due at once.
        holds.Hold(S1, Start + TwoMsl + TimeSpan.FromSeconds(2));
        var late = Start + TwoMsl + TimeSpan.FromSeconds(5);
        var released = new List<ServerEndpoint>();
        while (holds.PollReleased(late, out var key))
        {
            released.Add(key);
        }

        Assert.Equal([S2, S1], released);
        Assert.Equal(0, holds.Count);
    }

    [Fact]
    public void A_tuple_taken_back_must_not_be_released_and_must_leave_the_deadline_to_the_others()
    {
        var holds = new TupleHolds<ServerEndpoint>();
        holds.Hold(S1, Start + TwoMsl);
        holds.Hold(S2, Start + TwoMsl + TimeSpan.FromSeconds(1));

        Assert.True(holds.TakeBack(S1));
        Assert.False(holds.TakeBack(S1));

        Assert.Equal(Start + TwoMsl + TimeSpan.FromSeconds(1), holds.PollTimeout());
        Assert.False(holds.PollReleased(Start + TwoMsl, out _));
        Assert.True(holds.PollReleased(Start + TwoMsl + TimeSpan.FromSeconds(1), out var released));
        Assert.Equal(S2, released);
    }

    [Fact]
    public void Holding_a_held_tuple_again_must_move_its_time_not_add_a_second_hold()
    {
        var holds = new TupleHolds<ServerEndpoint>();
        holds.Hold(S1, Start + TwoMsl);
        holds.Hold(S1, Start + TwoMsl + TwoMsl);

        Assert.Equal(1, holds.Count);
        Assert.Equal(Start + TwoMsl + TwoMsl, holds.PollTimeout());
        Assert.False(holds.PollReleased(Start + TwoMsl, out _));
        Assert.True(holds.PollReleased(Start + TwoMsl + TwoMsl, out _));
        Assert.Equal(0, holds.Count);
    }

    [Fact]
    public void Back_and_forth_for_thousands_of_migrations_must_hold_at_most_one_tuple()
    {
        // A connection moving between two servers within 2 MSL: each switch holds the 4-tuple it left and takes back the
        // one it goes to, so the holds never grow and the deadline only moves later.
        var holds = new TupleHolds<ServerEndpoint>();
        var now = Start;
        for (var migration = 0; migration < 10_000; migration++)
        {
            var (left, to) = migration % 2 == 0 ? (S1, S2) : (S2, S1);
            holds.TakeBack(to);
            holds.Hold(left, now + TwoMsl);
            Assert.Equal(1, holds.Count);
            Assert.Equal(now + TwoMsl, holds.PollTimeout());
            Assert.False(holds.PollReleased(now, out _));
            now += TimeSpan.FromMilliseconds(1);
        }
    }
}

using Mtcp.Stack.Migration;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The race between a live origin's answer to a state request and the buddy's replica (<see cref="SilentOriginRace{TAnswer}"/>,
/// which the control connection drives): exactly one answer reaches the requester in every order of the origin's
/// answer, its silence being noticed, the replica keeper's decision and the request's own end.
/// </summary>
[Trait("Category", "Stack")]
public sealed class SilentOriginRaceTests
{
    private static readonly string Reply = "reply";
    private static readonly string Reject = "reject";

    [Fact]
    public void An_origin_that_answers_in_time_must_be_delivered_and_its_silence_never_asked_about()
    {
        var race = new SilentOriginRace<string>();

        Assert.Equal(SilentOriginStep.DeliverOrigin, race.OriginAnswered(Reply));
        Assert.Same(Reply, race.OriginAnswer);
        Assert.True(race.IsEnded);
        Assert.Equal(SilentOriginStep.Wait, race.OriginSilent());
        Assert.Equal(SilentOriginStep.Wait, race.ReplicaDecided(answered: true, tookOver: true));
    }

    [Fact]
    public void A_silent_origin_must_be_asked_about_once_and_its_late_answer_fenced_when_the_replica_answered()
    {
        var race = new SilentOriginRace<string>();

        Assert.Equal(SilentOriginStep.AskReplica, race.OriginSilent());
        Assert.Equal(SilentOriginStep.Wait, race.OriginSilent());
        Assert.Equal(SilentOriginStep.ReplicaAnswered, race.ReplicaDecided(answered: true, tookOver: true));
        Assert.True(race.IsEnded);
        Assert.True(race.IsTakenOver);
        Assert.Null(race.OriginAnswer);
        Assert.Equal(SilentOriginStep.FenceOrigin, race.OriginAnswered(Reply));
        Assert.Equal(SilentOriginStep.EndRequest, race.RequestEnding());
        Assert.True(race.IsTakenOver);
    }

    [Fact]
    public void An_origin_answer_while_the_keeper_decides_must_be_held_and_left_to_fence_when_the_replica_answered()
    {
        var race = new SilentOriginRace<string>();
        race.OriginSilent();

        Assert.Equal(SilentOriginStep.Wait, race.OriginAnswered(Reply));
        Assert.False(race.IsEnded);
        Assert.Equal(SilentOriginStep.ReplicaAnswered, race.ReplicaDecided(answered: true, tookOver: true));
        Assert.Same(Reply, race.OriginAnswer);
        Assert.True(race.IsTakenOver);
    }

    [Fact]
    public void An_origin_answer_while_a_keeper_without_its_replica_decides_must_be_delivered_then()
    {
        var race = new SilentOriginRace<string>();
        race.OriginSilent();

        Assert.Equal(SilentOriginStep.Wait, race.OriginAnswered(Reply));
        Assert.Equal(SilentOriginStep.Wait, race.OriginAnswered(Reject));
        Assert.Equal(SilentOriginStep.DeliverOrigin, race.ReplicaDecided(answered: false, tookOver: false));
        Assert.Same(Reply, race.OriginAnswer);
        Assert.True(race.IsEnded);
    }

    [Fact]
    public void Without_the_replica_the_request_must_wait_for_the_origin_until_its_own_deadline()
    {
        var answered = new SilentOriginRace<string>();
        answered.OriginSilent();
        Assert.Equal(SilentOriginStep.Wait, answered.ReplicaDecided(answered: false, tookOver: false));
        Assert.False(answered.IsEnded);
        Assert.Equal(SilentOriginStep.Wait, answered.OriginSilent());
        Assert.Equal(SilentOriginStep.DeliverOrigin, answered.OriginAnswered(Reply));

        var silent = new SilentOriginRace<string>();
        silent.OriginSilent();
        silent.ReplicaDecided(answered: false, tookOver: false);
        Assert.Equal(SilentOriginStep.EndRequest, silent.RequestEnding());
        Assert.Equal(SilentOriginStep.DropOrigin, silent.OriginAnswered(Reply));
    }

    [Fact]
    public void The_requests_end_while_the_keeper_decides_must_wait_for_its_word()
    {
        var taken = new SilentOriginRace<string>();
        taken.OriginSilent();
        Assert.Equal(SilentOriginStep.Wait, taken.RequestEnding());
        Assert.True(taken.EndDeferred);
        Assert.Equal(SilentOriginStep.ReplicaAnswered, taken.ReplicaDecided(answered: true, tookOver: true));

        var refused = new SilentOriginRace<string>();
        refused.OriginSilent();
        refused.RequestEnding();
        Assert.Equal(SilentOriginStep.EndRequest, refused.ReplicaDecided(answered: false, tookOver: false));
        Assert.True(refused.IsEnded);

        // The origin's answer held meanwhile still beats the end: it came before the deadline.
        var late = new SilentOriginRace<string>();
        late.OriginSilent();
        late.OriginAnswered(Reply);
        late.RequestEnding();
        Assert.Equal(SilentOriginStep.DeliverOrigin, late.ReplicaDecided(answered: false, tookOver: false));
    }

    [Fact]
    public void A_replica_that_refused_the_special_syn_must_leave_the_origin_unfenced()
    {
        var race = new SilentOriginRace<string>();
        race.OriginSilent();
        race.OriginAnswered(Reply);

        Assert.Equal(SilentOriginStep.ReplicaAnswered, race.ReplicaDecided(answered: true, tookOver: false));
        Assert.Null(race.OriginAnswer);
        Assert.False(race.IsTakenOver);
        Assert.Equal(SilentOriginStep.DropOrigin, race.OriginAnswered(Reply));
    }

    [Fact]
    public void A_request_that_ended_before_its_silence_was_noticed_must_ask_nothing()
    {
        var race = new SilentOriginRace<string>();

        Assert.Equal(SilentOriginStep.EndRequest, race.RequestEnding());
        Assert.Equal(SilentOriginStep.Wait, race.OriginSilent());
        Assert.Equal(SilentOriginStep.DropOrigin, race.OriginAnswered(Reply));
        Assert.Equal(SilentOriginStep.EndRequest, race.RequestEnding());
    }
}

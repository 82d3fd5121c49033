using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

[Trait("Category", "Policy")]
public sealed class DestinationSelectorTests
{
    [Fact]
    public void Round_robin_must_cycle_through_every_server_but_the_current_one()
    {
        var selector = new DestinationSelector(DestinationChoice.RoundRobin);
        selector.SetServers(S1, [S2, S3]);
        var visited = new List<Mtcp.Wire.ServerEndpoint>();
        for (var i = 0; i < 6; i++)
        {
            var next = selector.Choose()!.Value;
            Assert.NotEqual(selector.Current, next);
            selector.Picked(next);
            selector.MovedTo(next);
            visited.Add(next);
        }

        Assert.Equal([S2, S3, S1, S2, S3, S1], visited);
    }

    [Fact]
    public void A_choice_that_was_not_sent_must_not_advance_round_robin()
    {
        var selector = new DestinationSelector(DestinationChoice.RoundRobin);
        selector.SetServers(S1, [S2, S3]);

        Assert.Equal(S2, selector.Choose());
        Assert.Equal(S2, selector.Choose());
    }

    [Fact]
    public void Client_must_be_able_to_return_to_a_server_absent_from_the_alternates()
    {
        // S1's TCP_MIGRATE names only S2; after moving there, S1 is still a candidate (thesis fig. 5.4 arcs).
        var selector = new DestinationSelector(DestinationChoice.RoundRobin);
        selector.SetServers(S1, [S2]);
        selector.Picked(S2);
        selector.MovedTo(S2);

        Assert.Equal(S1, selector.Choose());
    }

    [Fact]
    public void Without_alternates_there_must_be_no_destination()
    {
        var selector = new DestinationSelector(DestinationChoice.BestKnown);
        selector.SetServers(S1, []);

        Assert.Null(selector.Choose());
    }

    [Fact]
    public void Best_known_must_try_unvisited_servers_first_then_the_best_remembered()
    {
        var selector = new DestinationSelector(DestinationChoice.BestKnown);
        selector.SetServers(S1, [S2, S3]);

        Assert.Equal(S2, selector.Choose());
        selector.RecordThroughput(S1, 500_000);
        selector.MovedTo(S2);
        Assert.Equal(S3, selector.Choose());
        selector.RecordThroughput(S2, 2_000_000);
        selector.MovedTo(S3);

        Assert.Equal(S2, selector.Choose());
        selector.RecordThroughput(S2, 100_000);
        Assert.Equal(S1, selector.Choose());
    }

    [Fact]
    public void Best_known_must_rank_a_failed_destination_last()
    {
        var selector = new DestinationSelector(DestinationChoice.BestKnown);
        selector.SetServers(S1, [S2, S3]);
        selector.RecordFailure(S2);
        selector.RecordThroughput(S3, 10);

        Assert.Equal(S3, selector.Choose());
    }
}

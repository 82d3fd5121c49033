using Mtcp.Stack.Migration;
using Mtcp.Stack.Tests.Authentication;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The buddy's takeover MIGRATE_TRIGGER goes again every interval, a bounded number of times, until the client's special
/// SYN reaches the replica or the connection is gone (<see cref="TakeoverTriggerResends"/>).
/// </summary>
[Trait("Category", "Stack")]
public sealed class TakeoverTriggerResendsTests
{
    private static readonly ConnectionId Cid = AuthenticationFixture.Cid;
    private static readonly ConnectionId Other = Cid with { ClientPort = (ushort)(Cid.ClientPort + 1) };
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    [Fact]
    public void A_trigger_must_go_again_every_interval_at_most_the_configured_number_of_times()
    {
        var resends = new TakeoverTriggerResends(Interval, maxResends: 3);
        var sent = Instant.FromMilliseconds(1_000);
        resends.Sent(Cid, sent);
        Assert.Equal(sent + Interval, resends.NextDue);

        Assert.Empty(resends.Due(sent + Interval - TimeSpan.FromMilliseconds(1)));
        var times = new List<Instant>();
        for (var now = sent; now <= sent + TimeSpan.FromSeconds(10); now += TimeSpan.FromMilliseconds(100))
        {
            if (resends.Due(now).Contains(Cid))
            {
                times.Add(now);
            }
        }

        Assert.Equal([sent + Interval, sent + (2 * Interval), sent + (3 * Interval)], times);
        Assert.Equal(0, resends.Count);
        Assert.Null(resends.NextDue);
    }

    [Fact]
    public void The_clients_special_syn_or_the_connections_end_must_stop_its_trigger_only()
    {
        var resends = new TakeoverTriggerResends(Interval, maxResends: 5);
        var now = Instant.FromMilliseconds(0);
        resends.Sent(Cid, now);
        resends.Sent(Other, now);

        resends.Answered(Cid);
        Assert.Equal([Other], resends.Due(now + Interval));
        resends.Forget(Other);
        Assert.Empty(resends.Due(now + (10 * Interval)));
        Assert.Equal(0, resends.Count);
    }

    [Fact]
    public void With_no_resends_a_trigger_must_go_once()
    {
        var resends = new TakeoverTriggerResends(Interval, maxResends: 0);
        resends.Sent(Cid, Instant.Zero);

        Assert.Empty(resends.Due(Instant.Zero + TimeSpan.FromSeconds(60)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TakeoverTriggerResends(TimeSpan.Zero, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TakeoverTriggerResends(Interval, -1));
    }
}

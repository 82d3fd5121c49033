using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

[Trait("Category", "Policy")]
public sealed class MigrationGuardTests
{
    private static MigrationGuard Guard(TimeSpan holdDown, double perSecond = 100, int burst = 100, double pingPongSeconds = 0) =>
        new(new GuardSettings(holdDown, perSecond, burst, TimeSpan.FromSeconds(pingPongSeconds)), Ms(0));

    [Fact]
    public void Hold_down_must_refuse_a_second_decision_until_it_has_passed()
    {
        var guard = Guard(TimeSpan.FromSeconds(1));
        var connection = Connection(1);

        Assert.Equal(GuardVerdict.Allowed, guard.TryAdmit(connection, S1, S2, Ms(0)));
        Assert.Equal(GuardVerdict.HoldDown, guard.TryAdmit(connection, S1, S3, Ms(999.999)));
        Assert.Equal(GuardVerdict.Allowed, guard.TryAdmit(connection, S1, S3, Ms(1000)));
    }

    [Fact]
    public void Hold_down_must_restart_at_a_completed_or_failed_migration()
    {
        var guard = Guard(TimeSpan.FromSeconds(1));
        var moved = Connection(1);
        var failed = Connection(2);
        guard.NoteMigrated(moved, S1, S2, Ms(5000));
        guard.NoteFailed(failed, Ms(5000));

        Assert.Equal(GuardVerdict.HoldDown, guard.Check(moved, S3, Ms(5500)));
        Assert.Equal(GuardVerdict.HoldDown, guard.Check(failed, S3, Ms(5500)));
        Assert.Equal(GuardVerdict.Allowed, guard.Check(moved, S3, Ms(6000)));
        Assert.Equal(GuardVerdict.Allowed, guard.Check(failed, S3, Ms(6000)));
    }

    [Fact]
    public void Rate_limit_must_admit_a_burst_then_the_refill_rate()
    {
        var guard = Guard(TimeSpan.Zero, perSecond: 2, burst: 3);
        var admitted = 0;
        for (var i = 0; i < 10; i++)
        {
            if (guard.TryAdmit(Connection(i), S1, S2, Ms(0)) == GuardVerdict.Allowed)
            {
                admitted++;
            }
        }

        Assert.Equal(3, admitted);
        Assert.Equal(GuardVerdict.RateLimited, guard.TryAdmit(Connection(20), S1, S2, Ms(499)));
        Assert.Equal(GuardVerdict.Allowed, guard.TryAdmit(Connection(20), S1, S2, Ms(500)));
        Assert.Equal(GuardVerdict.RateLimited, guard.TryAdmit(Connection(21), S1, S2, Ms(500)));
    }

    [Fact]
    public void A_refused_decision_must_not_consume_a_token()
    {
        var guard = Guard(TimeSpan.FromSeconds(10), perSecond: 1, burst: 1);
        guard.NoteMigrated(Connection(1), S2, S1, Ms(0));

        Assert.Equal(GuardVerdict.HoldDown, guard.TryAdmit(Connection(1), S1, S3, Ms(0)));
        Assert.Equal(GuardVerdict.Allowed, guard.TryAdmit(Connection(2), S1, S3, Ms(0)));
    }

    [Fact]
    public void Ping_pong_must_refuse_a_move_straight_back_inside_the_window()
    {
        var guard = Guard(TimeSpan.FromSeconds(1), pingPongSeconds: 30);
        var connection = Connection(1);
        guard.NoteMigrated(connection, S1, S2, Ms(0));

        Assert.Equal(GuardVerdict.PingPong, guard.TryAdmit(connection, S2, S1, Ms(2000)));
        Assert.Equal(GuardVerdict.Allowed, guard.Check(connection, S3, Ms(2000)));
        Assert.Equal(GuardVerdict.Allowed, guard.TryAdmit(connection, S2, S1, Ms(30_000)));
    }

    [Fact]
    public void Token_bucket_must_not_exceed_its_burst_after_a_long_idle_time()
    {
        var bucket = new TokenBucket(10, 5, Ms(0));

        Assert.Equal(5, bucket.Available(Ms(3_600_000)));
        Assert.Equal(5, bucket.Available(Ms(0)));
    }
}

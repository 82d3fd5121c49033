using Akka.Actor;
using Mtcp.Actors.Replication;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// What an attacker can do with takeover from a silent origin, through the runtime that ships (two nodes, buddy
/// replication, the in-memory fabric; the client a <see cref="SansIoClientDriver"/> so that the test can alter its
/// special SYNs): a special SYN whose MIGRATED_CONN authenticator was altered cannot make the buddy take a live origin's
/// connection over, even while the origin is silent (the replica checks it as the origin would, and the special SYN is
/// refused); a flood of them cannot make the buddy fence a healthy origin that answers each in time.
/// </summary>
[Trait("Category", "Security")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class SilentOriginTakeoverAttackTests(ITestOutputHelper output)
{
    private const TestTransport Transport = SilentOriginSession.Transport;
    private const int FloodRounds = 3;

    /// <summary>One fewer than the attempt window (<see cref="MigrationAuthenticatorOptions.DefaultAttemptWindow"/>).</summary>
    private const int ForgeriesPerRound = MigrationAuthenticatorOptions.DefaultAttemptWindow - 1;
    private static readonly TimeSpan Patience = SilentOriginSession.Patience;

    [Fact]
    public async Task A_forged_special_SYN_must_not_take_a_silent_origins_connection_over_and_the_genuine_one_then_must()
    {
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions { ServerCount = 2, Transports = [Transport], Replication = true, GateStateRequests = true, ServerExtra = "mtcp.control.silent-origin-takeover = 500ms" });
        var (driver, origin, buddy) = await SilentOriginSession.StartAsync(cluster, 42000);
        cluster.Servers[0].StateRequestGate.Tell(new SwallowStateRequests(true));

        driver.Tamper = SansIoClientDriver.FlipMigratedConnectionAuthenticator;
        driver.Client.BeginMigration(driver.Now, buddy, new SeqNumber(0x1000), localPort: 42001);
        var refused = driver.RunUntilMigrationEnds(Patience);
        output.WriteLine($"forged special SYN while the origin is silent: {refused.Kind} {refused.Detail}");
        Assert.Equal(MigrationEventKind.Failed, refused.Kind);
        Assert.Equal(origin, driver.Client.CurrentServer);
        Assert.Equal(0, (await SilentOriginSession.StatisticsAsync(cluster)).TakenOverFromSilentOrigins);
        Assert.Equal(0, cluster.Servers[1].MigratedIn);

        driver.Tamper = null;
        driver.Client.BeginMigration(driver.Now, buddy, new SeqNumber(0x2000), localPort: 42002);
        Assert.Equal(MigrationEventKind.Completed, driver.RunUntilMigrationEnds(Patience).Kind);
        Assert.Equal(buddy, driver.Client.CurrentServer);
        await SilentOriginSession.AwaitTakenOverFromSilentOriginsAsync(cluster, 1);

        // The origin answers at last: its reply is acknowledged, and it drops the connection.
        cluster.Servers[0].StateRequestGate.Tell(new SwallowStateRequests(false));
        Assert.True(await cluster.Servers[0].StateRequestGate.Ask<int>(new ReleaseHeldStateRequests(), Patience) >= 2);
        driver.RunUntil(() => cluster.Servers[0].MigratedAway == 1, Patience, "the fenced origin to drop the connection");
    }

    [Fact]
    public async Task A_flood_of_forged_special_SYNs_must_not_make_the_buddy_fence_a_healthy_origin()
    {
        // The origin must answer within the takeover time even on a loaded machine: what is tested is that a forgery,
        // however many, does not shorten it.
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 2,
            Transports = [Transport],
            Replication = true,
            ServerExtra = "mtcp.control.silent-origin-takeover = 1500ms",
        });
        var (driver, origin, buddy) = await SilentOriginSession.StartAsync(cluster, 43000);
        var localPort = (ushort)43001;
        for (var round = 0; round < FloodRounds; round++)
        {
            // The forgeries come from the client's own driver, so each advances its attempt counter: a round stays
            // within the attempt window, or its genuine special SYN would be outside it.
            driver.Tamper = SansIoClientDriver.FlipMigratedConnectionAuthenticator;
            for (var i = 0; i < ForgeriesPerRound; i++)
            {
                driver.Client.BeginMigration(driver.Now, buddy, new SeqNumber((uint)Random.Shared.Next()), localPort++);
                Assert.Equal(MigrationEventKind.Failed, driver.RunUntilMigrationEnds(Patience).Kind);
            }

            Assert.Equal(origin, driver.Client.CurrentServer);
            Assert.Equal(0, (await SilentOriginSession.StatisticsAsync(cluster)).TakenOverFromSilentOrigins);

            // The connection is still the origin's to hand over: a genuine special SYN is answered by the origin itself.
            driver.Tamper = null;
            driver.Client.BeginMigration(driver.Now, buddy, new SeqNumber((uint)Random.Shared.Next()), localPort++);
            Assert.Equal(MigrationEventKind.Completed, driver.RunUntilMigrationEnds(Patience).Kind);
            (origin, buddy) = (buddy, origin);
        }

        Assert.Equal(0, (await SilentOriginSession.StatisticsAsync(cluster)).TakenOverFromSilentOrigins);
        Assert.Equal(0, (await SilentOriginSession.StatisticsAsync(cluster, 0)).TakenOverFromSilentOrigins);
        driver.RunUntil(() => cluster.Servers.Sum(server => server.MigratedIn) == FloodRounds, Patience, "the applications to resume each genuine migration");
        output.WriteLine($"{FloodRounds * ForgeriesPerRound} forged special SYNs refused by a healthy origin; none taken over from a replica; {FloodRounds} genuine migrations answered by their origin");
    }
}

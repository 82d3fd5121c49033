using Akka.Actor;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Fencing after a takeover from a silent origin, through the runtime that ships (two nodes, buddy replication, the
/// in-memory fabric; the client a <see cref="SansIoClientDriver"/> so that it comes back to the origin on the very
/// 4-tuple it left, as a client reusing its port does): the origin falls silent on the buddy's state request, the buddy
/// answers the special SYN from its replica, and then the connection migrates back to the origin. The origin must have
/// dropped the connection it left, whether or not its late answer came, and serve the returning one on a fresh
/// endpoint; the buddy must replicate that one again. Every answer is SHA-256 of the chain of requests, so a request lost
/// or applied twice shows.
/// </summary>
[Trait("Category", "Failover")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class SilentOriginFencingTests(ITestOutputHelper output)
{
    private const int Requests = 3;
    private static readonly TimeSpan Patience = SilentOriginSession.Patience;

    [Fact]
    public async Task An_origin_whose_late_answer_never_comes_must_drop_the_connection_and_serve_it_afresh_when_it_comes_back()
    {
        await using var cluster = await StartClusterAsync();
        var (driver, origin, buddy) = await SilentOriginSession.StartAsync(cluster, 44000, Requests);
        var digests = Digests(driver);
        await TakeOverFromSilentOriginAsync(cluster, driver, buddy, 44001);

        // Its answer never comes: the requests it held are dropped, as its control connection drops an answer later
        // than its own state-request-timeout. The client comes back at once: its special SYN reaches the origin's old
        // endpoint on the same 4-tuple, which must have been told to drop the connection, or learn it soon.
        cluster.Servers[0].StateRequestGate.Tell(new SwallowStateRequests(false));
        Assert.True(await cluster.Servers[0].StateRequestGate.Ask<int>(new DropHeldStateRequests(), Patience) >= 1);

        await ComeBackAsync(cluster, driver, origin, 44000, digests);
        Assert.Equal(1, cluster.Servers[0].MigratedAway);
        output.WriteLine("origin fenced without its late answer; the connection came back to it on the same 4-tuple and went on there");
    }

    [Fact]
    public async Task An_origin_whose_late_answer_comes_must_serve_the_connection_afresh_when_it_comes_back_and_its_buddy_replicate_it()
    {
        await using var cluster = await StartClusterAsync();
        var (driver, origin, buddy) = await SilentOriginSession.StartAsync(cluster, 45000, Requests);
        var digests = Digests(driver);
        await TakeOverFromSilentOriginAsync(cluster, driver, buddy, 45001);

        // Slow but alive: its late answers come, and are not used.
        cluster.Servers[0].StateRequestGate.Tell(new SwallowStateRequests(false));
        Assert.True(await cluster.Servers[0].StateRequestGate.Ask<int>(new ReleaseHeldStateRequests(), Patience) >= 1);
        driver.RunUntil(() => cluster.Servers[0].MigratedAway == 1, Patience, "the origin to drop the connection taken over");

        await ComeBackAsync(cluster, driver, origin, 45000, digests);
        output.WriteLine("origin fenced, its late answer acknowledged; the connection came back to it on the same 4-tuple and its buddy replicates it again");
    }

    private static Task<MigrationCluster> StartClusterAsync() => MigrationCluster.StartAsync(new MigrationClusterOptions
    {
        ServerCount = 2,
        Transports = [SilentOriginSession.Transport],
        Replication = true,
        GateStateRequests = true,
        ServerExtra = "mtcp.control.silent-origin-takeover = 500ms",
    });

    /// <summary>Every answer the client reads from now on (the first one is read already).</summary>
    private static List<byte[]> Digests(SansIoClientDriver driver)
    {
        var answers = new List<byte[]>();
        var buffered = new List<byte>();
        driver.OnRead = (_, bytes) =>
        {
            buffered.AddRange(bytes.ToArray());
            while (buffered.Count >= ReferenceApps.DigestLength)
            {
                answers.Add([.. buffered.Take(ReferenceApps.DigestLength)]);
                buffered.RemoveRange(0, ReferenceApps.DigestLength);
            }
        };
        return answers;
    }

    /// <summary>The origin falls silent on state requests; the client migrates to the buddy, which takes the connection over from its replica.</summary>
    private static async Task TakeOverFromSilentOriginAsync(MigrationCluster cluster, SansIoClientDriver driver, ServerEndpoint buddy, ushort localPort)
    {
        cluster.Servers[0].StateRequestGate.Tell(new SwallowStateRequests(true));
        driver.Client.BeginMigration(driver.Now, buddy, new SeqNumber(0x1000), localPort);
        Assert.Equal(MigrationEventKind.Completed, driver.RunUntilMigrationEnds(Patience).Kind);
        Assert.Equal(buddy, driver.Client.CurrentServer);
        await SilentOriginSession.AwaitTakenOverFromSilentOriginsAsync(cluster, 1);

        SilentOriginSession.SendRequest(driver, 1);
        driver.RunUntil(() => driver.BytesRead == 2 * ReferenceApps.DigestLength, Patience, "the second answer, from the buddy");
    }

    /// <summary>
    /// The client migrates back to the origin from the 4-tuple it first had there (<paramref name="firstLocalPort"/>): a fresh endpoint must take it, the
    /// buddy must hold the origin's replica of it again, and the last request must be answered once, in the chain.
    /// </summary>
    private static async Task ComeBackAsync(MigrationCluster cluster, SansIoClientDriver driver, ServerEndpoint origin, ushort firstLocalPort, List<byte[]> digests)
    {
        driver.Client.BeginMigration(driver.Now, origin, new SeqNumber(0x2000), firstLocalPort);
        var back = driver.RunUntilMigrationEnds(Patience);
        Assert.True(back.Kind == MigrationEventKind.Completed, $"the migration back to the origin: {back.Kind} {back.Detail}");
        Assert.Equal(origin, driver.Client.CurrentServer);
        driver.RunUntil(() => cluster.Servers[0].MigratedIn == 1, Patience, "the origin's application to resume the connection");

        SilentOriginSession.SendRequest(driver, 2);
        driver.RunUntil(() => driver.BytesRead == Requests * ReferenceApps.DigestLength, Patience, "the last answer, from the origin");
        var expected = new byte[ReferenceApps.DigestLength];
        for (var i = 0; i < Requests; i++)
        {
            var request = new byte[ReferenceApps.RequestLength];
            StreamPattern.Fill(ReferenceApps.UploadKey, i * ReferenceApps.RequestLength, request);
            expected = ReferenceApps.NextDigest(expected, request);
            if (i > 0)
            {
                Assert.True(expected.AsSpan().SequenceEqual(digests[i - 1]), $"answer {i} is not SHA-256 of the chain: a request was lost or applied twice");
            }
        }

        // The buddy replicates the returning connection again: none of its updates is refused as the fenced one's were.
        await SilentOriginSession.AwaitHeldFromOriginAsync(cluster);
    }
}

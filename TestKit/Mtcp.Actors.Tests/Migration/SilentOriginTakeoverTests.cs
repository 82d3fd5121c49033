using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Akka.Actor;
using Akka.Cluster;
using Mtcp.Actors.Api;
using Mtcp.Actors.Replication;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Takeover from a silent origin through the runtime that ships (two nodes in one Akka.Cluster on the in-memory
/// fabric, buddy replication): the node serving a request session stops answering, its client and its peers alike, but
/// stays a reachable member (its packets are dropped and its control connections hold the peers' state requests
/// unanswered, as an overloaded node's would be). The client's failover sends the special SYN to the buddy; the
/// buddy's state request gets no answer within <c>mtcp.control.silent-origin-takeover</c>, so the buddy answers from
/// its replica and fences the origin, which drops the connection; the held requests then reach the origin late and
/// their answers are not used. Every answer is SHA-256 of the chain of requests: a request lost or applied twice by
/// either server application shows.
/// </summary>
[Trait("Category", "Failover")]
[Collection(MultiNodeCollection.Name)]
public sealed class SilentOriginTakeoverTests(ITestOutputHelper output)
{
    private const long UploadBytes = 8L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);

    /// <summary>The reference special-syn-timeout (1 s), which a silent-origin-takeover of 500 ms must beat.</summary>
    private static readonly ClientFailover Failover = new()
    {
        ProbeInterval = TimeSpan.FromMilliseconds(500),
        SilentAfter = 2,
        SpecialSynTimeout = TimeSpan.FromSeconds(1),
        GiveUpAfter = TimeSpan.FromSeconds(15),
    };

    private readonly ConcurrentDictionary<IpAddress, LossyPacketTransport> _links = new();

    [Fact]
    public async Task A_request_session_whose_live_origin_falls_silent_must_go_on_exactly_once_on_its_buddy_and_the_origin_must_drop_it()
    {
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 2,
            Transports = [TestTransport.Memory],
            Replication = true,
            ClientFailover = Failover,
            GateStateRequests = true,
            ServerExtra = "mtcp.control.silent-origin-takeover = 500ms",
            WrapMemoryTransport = inner => _links[inner.LocalAddress] = new LossyPacketTransport(inner, new LinkConditions { Latency = TimeSpan.Zero }, seed: 1),
        });
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
        var reports = new ConcurrentQueue<MigrationReport>();
        client.MigrationEnded += (_, report) => reports.Enqueue(report);
        var origin = cluster.Servers[0];
        var buddy = cluster.Servers[1];
        var originLink = _links[IpAddress.Parse(MigrationCluster.Address(TestTransport.Memory, 2))];
        var service = MigrationCluster.Service(TestTransport.Memory, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(service.Address.ToIPAddress(), service.Port), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Upload, UploadBytes), timeout.Token);

        var requests = UploadBytes / ReferenceApps.RequestLength;
        var request = new byte[ReferenceApps.RequestLength];
        var answer = new byte[ReferenceApps.DigestLength];
        var expected = new byte[ReferenceApps.DigestLength];
        long silencedAt = 0;
        TimeSpan? resumed = null;
        var released = -1;
        for (long i = 0; i < requests; i++)
        {
            if (i == requests / 4)
            {
                // Alive, a member, and silent: nothing it sends arrives, and its peers' state requests go unanswered.
                origin.StateRequestGate.Tell(new SwallowStateRequests(true));
                originLink.SetConditions(new LinkConditions { Latency = TimeSpan.Zero, LossRate = 1.0 }, seed: 1);
                silencedAt = Stopwatch.GetTimestamp();
            }

            StreamPattern.Fill(ReferenceApps.UploadKey, i * ReferenceApps.RequestLength, request);
            await stream.WriteAsync(request, timeout.Token);
            await stream.ReadExactlyAsync(answer, timeout.Token);
            expected = ReferenceApps.NextDigest(expected, request);
            Assert.True(expected.AsSpan().SequenceEqual(answer), $"answer {i} is not SHA-256 of the chain: a request was lost or applied twice");

            if (silencedAt != 0 && resumed is null && buddy.MigratedIn > 0)
            {
                resumed = Stopwatch.GetElapsedTime(silencedAt);

                // The origin is heard again, and answers the state requests it held: too late to be used.
                originLink.SetConditions(new LinkConditions { Latency = TimeSpan.Zero }, seed: 1);
                origin.StateRequestGate.Tell(new SwallowStateRequests(false));
                released = await origin.StateRequestGate.Ask<int>(new ReleaseHeldStateRequests(), timeout.Token);
            }
        }

        Assert.Equal(0, await stream.ReadAsync(answer, timeout.Token));
        Assert.NotNull(resumed);
        Assert.True(released >= 1, $"the buddy sent the silent origin {released} state requests");
        Assert.Equal(1, buddy.MigratedIn);
        Assert.Contains(reports, report => report.Outcome == MigrationOutcome.Completed && report.To == MigrationCluster.Service(TestTransport.Memory, 1));

        // Fenced: the origin's application saw its connection migrate away (it was told, not left to time out).
        await AwaitAsync(() => origin.MigratedAway == 1, timeout.Token);
        Assert.Empty(origin.ApplicationFailures);
        Assert.Empty(buddy.ApplicationFailures);

        var statistics = await buddy.Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, timeout.Token);
        Assert.Equal(1, statistics.TakenOverFromSilentOrigins);
        Assert.Empty(statistics.TakenOver);

        // The origin never left: no failure detector was involved.
        var view = Akka.Cluster.Cluster.Get(buddy.System).State;
        Assert.Empty(view.Unreachable);
        Assert.Equal(2, view.Members.Count(member => member.Status == MemberStatus.Up));
        output.WriteLine($"{requests} requests answered once each; origin silent after request {requests / 4}, the session went on on its buddy {resumed?.TotalMilliseconds:F0} ms later; {released} held state requests answered late");
    }

    private static async Task AwaitAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
        {
            await Task.Delay(50, cancellationToken);
        }
    }
}

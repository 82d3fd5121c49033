using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Replication;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// A node serving a download dies (its packets stop, then its ActorSystem is terminated without leaving the cluster):
/// its buddy, holding the connection's replica, sends the client a MIGRATE_TRIGGER naming itself once the failure
/// detector marks the node unreachable, answers the special SYN from the replica, and the download completes
/// byte-exact, with no reset. Three nodes, so that the survivors keep the majority.
/// </summary>
[Trait("Category", "Failover")]
[Collection(MultiNodeCollection.Name)]
public sealed class TakeoverAcrossNodesTests(ITestOutputHelper output)
{
    private const long DownloadBytes = 8L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    /// <summary>More than the client's receive buffer and the bytes in flight at the kill.</summary>
    private const long ResumedAfter = 1L << 20;

    [Fact]
    public async Task Download_from_a_node_that_dies_must_complete_byte_exact_on_its_buddy()
    {
        var transports = new ConcurrentDictionary<IpAddress, LossyPacketTransport>();
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 3,
            Transports = [TestTransport.Memory],
            Replication = true,
            WrapMemoryTransport = inner => transports[inner.LocalAddress] = new LossyPacketTransport(inner, new LinkConditions { Latency = TimeSpan.Zero }, seed: 1),
        });
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
        var origin = MigrationCluster.Service(TestTransport.Memory, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(origin.Address.ToIPAddress(), origin.Port), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), timeout.Token);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long received = 0;
        var originAddress = Akka.Cluster.Cluster.Get(cluster.Servers[0].System).SelfAddress;
        int? buddy = null;
        long killedAt = 0;
        long receivedAtKill = 0;
        TimeSpan? resumed = null;
        while (true)
        {
            if (buddy is null && received >= DownloadBytes / 4)
            {
                buddy = await BuddyOfAsync(cluster, originAddress, timeout.Token);

                // The crash: nothing leaves the node any more (not even the RSTs of its stopping endpoints), then it stops.
                transports[origin.Address].SetConditions(new LinkConditions { Latency = TimeSpan.Zero, LossRate = 1.0 }, seed: 1);
                killedAt = Stopwatch.GetTimestamp();
                receivedAtKill = received;
                await cluster.Servers[0].StopAsync();
            }

            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            // Past what the client's buffers can have held at the kill, the bytes come from the buddy.
            if (killedAt != 0 && resumed is null && received >= receivedAtKill + ResumedAfter)
            {
                resumed = Stopwatch.GetElapsedTime(killedAt);
            }

            Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read)) < 0, $"the download differs after byte {received}");
            hash.AppendData(buffer, 0, read);
            received += read;
        }

        Assert.Equal(DownloadBytes, received);
        Assert.Equal(MigrationAcrossNodesTests.ExpectedSha256(ReferenceApps.DownloadKey, DownloadBytes), Convert.ToHexString(hash.GetHashAndReset()));
        Assert.NotNull(buddy);
        var statistics = await cluster.Servers[buddy.Value].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, timeout.Token);
        Assert.True(statistics.TakenOver.TryGetValue(originAddress, out var takenOver) && takenOver == 1, $"node {buddy} took over {takenOver} connections of the dead node");
        Assert.Equal(1, cluster.Servers[buddy.Value].MigratedIn);
        output.WriteLine($"{DownloadBytes} bytes; node 0 killed at {DownloadBytes / 4}; node {buddy} took over; the client had {ResumedAfter >> 20} MiB more {resumed?.TotalMilliseconds:F0} ms after the kill");
    }

    /// <summary>The node holding <paramref name="origin"/>'s replica.</summary>
    private static async Task<int> BuddyOfAsync(MigrationCluster cluster, Address origin, CancellationToken cancellationToken)
    {
        for (var i = 1; i < cluster.Servers.Count; i++)
        {
            var statistics = await cluster.Servers[i].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, cancellationToken);
            if (statistics.HeldByOrigin.TryGetValue(origin, out var held) && held > 0)
            {
                return i;
            }
        }

        throw new InvalidOperationException($"no node holds a replica of {origin}'s connection");
    }
}

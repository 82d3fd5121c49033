using System.Collections.Concurrent;
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
/// A node dies at a chosen moment of a connection's life under buddy replication, through the runtime that ships (three
/// nodes in one Akka.Cluster on the in-memory fabric): the origin of a planned migration once its state reply is out,
/// the destination while the state is in flight, the buddy (a new one must be chosen and brought up to date). A crash
/// is what <see cref="ServerNode.StopAsync"/> does after the node's packets stop: no leaving the cluster. Every download
/// is checked byte for byte and must complete without a reset.
/// </summary>
[Trait("Category", "Failover")]
[Collection(MultiNodeCollection.Name)]
public sealed class CrashDuringMigrationTests(ITestOutputHelper output)
{
    private const long DownloadBytes = 8L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan MomentTimeout = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<IpAddress, SynWatchTransport> _watches = new();
    private readonly ConcurrentDictionary<IpAddress, LossyPacketTransport> _links = new();

    [Fact]
    public async Task Origin_killed_once_its_state_reply_is_out_must_leave_the_download_byte_exact_on_the_destination()
    {
        await using var cluster = await StartClusterAsync();
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
        Task<MigrationReport>? migration = null;
        await DownloadAsync(cluster, client, origin: 0, async () =>
        {
            // The destination answers the client with its SYN+ACK only once the state reply arrived and was
            // reinstated: the origin has sent it, and the destination's state ack is on its way to the origin.
            var replied = Signal(out var synAckSent);
            _watches[Address(2)].SynAckSent = synAckSent;
            migration = client.MigrateAsync(MigrationCluster.Service(TestTransport.Memory, 2), timeout.Token);
            await replied.WaitAsync(MomentTimeout, timeout.Token);
            _watches[Address(2)].SynAckSent = null;
            await CrashAsync(cluster, 0);
        }, timeout.Token);

        var report = await migration!;
        Assert.Equal(MigrationOutcome.Completed, report.Outcome);
        Assert.Equal(1, cluster.Servers[2].MigratedIn);
        output.WriteLine($"migration to node 2 {report.Outcome} in {report.Duration.TotalMilliseconds:F1} ms; origin killed at the destination's SYN+ACK; download byte-exact");
    }

    [Fact]
    public async Task Destination_killed_while_the_state_is_in_flight_must_fail_the_migration_and_leave_the_download_byte_exact_on_the_origin()
    {
        await using var cluster = await StartClusterAsync(clientExtra: "mtcp.tcp.connect-timeout = 2s");
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
        MigrationReport? report = null;
        await DownloadAsync(cluster, client, origin: 0, async () =>
        {
            // The special SYN's arrival makes the destination ask the origin for the state: the request or its reply
            // is in flight when the destination dies.
            var arrived = Signal(out var synReceived);
            _watches[Address(2)].SynReceived = synReceived;
            var migration = client.MigrateAsync(MigrationCluster.Service(TestTransport.Memory, 2), timeout.Token);
            await arrived.WaitAsync(MomentTimeout, timeout.Token);
            await CrashAsync(cluster, 2);
            report = await migration;
        }, timeout.Token);

        Assert.Equal(MigrationOutcome.Failed, report!.Outcome);
        Assert.Equal(0, cluster.Servers[0].MigratedAway);
        output.WriteLine($"migration to node 2 failed after {report.Duration.TotalMilliseconds:F0} ms ({report.FailureReason}); download byte-exact on the origin");
    }

    [Fact]
    public async Task Buddy_killed_must_be_replaced_by_a_new_buddy_brought_up_to_date_that_takes_the_connection_over_when_the_origin_dies()
    {
        await using var cluster = await StartClusterAsync();
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
        var originAddress = Akka.Cluster.Cluster.Get(cluster.Servers[0].System).SelfAddress;
        int? newBuddy = null;
        await DownloadAsync(cluster, client, origin: 0, async () =>
        {
            var buddy = await HolderOfAsync(cluster, originAddress, excluding: -1, timeout.Token);
            await CrashAsync(cluster, buddy);
            newBuddy = await HolderOfAsync(cluster, originAddress, excluding: buddy, timeout.Token);
            output.WriteLine($"buddy node {buddy} killed; node {newBuddy} holds the replica now");
            await CrashAsync(cluster, 0);
        }, timeout.Token);

        var statistics = await cluster.Servers[newBuddy!.Value].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, timeout.Token);
        Assert.True(statistics.TakenOver.TryGetValue(originAddress, out var takenOver) && takenOver == 1, $"node {newBuddy} took over {takenOver} connections of the dead origin");
    }

    private async Task<MigrationCluster> StartClusterAsync(string clientExtra = "") =>
        await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 3,
            Transports = [TestTransport.Memory],
            Replication = true,
            ClientExtra = clientExtra,
            WrapMemoryTransport = inner =>
            {
                var watch = _watches[inner.LocalAddress] = new SynWatchTransport(inner);
                return _links[inner.LocalAddress] = new LossyPacketTransport(watch, new LinkConditions { Latency = TimeSpan.Zero }, seed: 1);
            },
        });

    /// <summary>
    /// Downloads <see cref="DownloadBytes"/> of the reference pattern from node <paramref name="origin"/>, checking every
    /// byte; once a quarter has arrived, runs <paramref name="atQuarter"/> (the crash) without reading meanwhile.
    /// </summary>
    private static async Task DownloadAsync(MigrationCluster cluster, MtcpClient client, int origin, Func<Task> atQuarter, CancellationToken cancellationToken)
    {
        var stream = await client.ConnectAsync(EndPoint(origin), cancellationToken);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), cancellationToken);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long received = 0;
        var crashed = false;
        while (true)
        {
            if (!crashed && received >= DownloadBytes / 4)
            {
                crashed = true;
                await atQuarter();
            }

            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                break;
            }

            Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read)) < 0, $"the download differs after byte {received}");
            hash.AppendData(buffer, 0, read);
            received += read;
        }

        Assert.True(crashed, "the download ended before the crash");
        Assert.Equal(DownloadBytes, received);
        Assert.Equal(MigrationAcrossNodesTests.ExpectedSha256(ReferenceApps.DownloadKey, DownloadBytes), Convert.ToHexString(hash.GetHashAndReset()));
        Assert.All(cluster.Servers.Where(s => !s.Stopped), server => Assert.Empty(server.ApplicationFailures));
    }

    /// <summary>The crash: nothing leaves the node any more (not even the RSTs of its stopping endpoints), then it stops.</summary>
    private async Task CrashAsync(MigrationCluster cluster, int node)
    {
        _links[Address(node)].SetConditions(new LinkConditions { Latency = TimeSpan.Zero, LossRate = 1.0 }, seed: 1);
        await cluster.Servers[node].StopAsync();
    }

    /// <summary>The live node other than <paramref name="excluding"/> that holds a replica of <paramref name="origin"/>'s connection; waits for one.</summary>
    private static async Task<int> HolderOfAsync(MigrationCluster cluster, Address origin, int excluding, CancellationToken cancellationToken)
    {
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        waiting.CancelAfter(MomentTimeout);
        while (true)
        {
            for (var i = 1; i < cluster.Servers.Count; i++)
            {
                if (i == excluding || cluster.Servers[i].Stopped)
                {
                    continue;
                }

                var statistics = await cluster.Servers[i].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, waiting.Token);
                if (statistics.HeldByOrigin.TryGetValue(origin, out var held) && held > 0)
                {
                    return i;
                }
            }

            await Task.Delay(50, waiting.Token);
        }
    }

    private static Task Signal(out Action set)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        set = () => signal.TrySetResult();
        return signal.Task;
    }

    private static IpAddress Address(int node) => MigrationCluster.Service(TestTransport.Memory, node).Address;

    private static IPEndPoint EndPoint(int node)
    {
        var service = MigrationCluster.Service(TestTransport.Memory, node);
        return new IPEndPoint(service.Address.ToIPAddress(), service.Port);
    }
}

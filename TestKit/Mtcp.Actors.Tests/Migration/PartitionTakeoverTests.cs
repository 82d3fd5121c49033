using System.Net;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Cluster;
using Mtcp.Actors.Api;
using Mtcp.Actors.Replication;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// A partition of the control network between live nodes while the client reaches all of them (the throttler adapter
/// drops Akka.Remote traffic; the packet fabric still carries the client's segments), under buddy replication, through
/// the runtime that ships. A buddy takes a peer's connections over only on the side the split-brain resolver keeps
/// (keep-majority, <see cref="Mtcp.Actors.Cluster.KeptSide"/>), so no connection is called to both sides; the node cut
/// off takes nothing over and drops what was taken from it once it hears of it; every byte and every request arrives
/// exactly once.
/// </summary>
[Trait("Category", "Failover")]
[Collection(MultiNodeCollection.Name)]
public sealed class PartitionTakeoverTests(ITestOutputHelper output)
{
    private const long DownloadBytes = 8L << 20;
    private const long UploadBytes = 4L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan MomentTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_pair_that_marks_each_other_unreachable_must_take_over_on_the_kept_side_only()
    {
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 2,
            Transports = [TestTransport.Memory],
            Replication = true,
            ServerExtra = MigrationCluster.ThrottledControlNetwork,
        });
        using var timeout = new CancellationTokenSource(TestTimeout);
        var addresses = cluster.Servers.Select(server => Akka.Cluster.Cluster.Get(server.System).SelfAddress).ToArray();
        using var first = await Download.StartAsync(cluster, 0, timeout.Token);
        using var second = await Download.StartAsync(cluster, 1, timeout.Token);
        Download[] downloads = [first, second];
        foreach (var download in downloads)
        {
            await download.ReadUpToAsync(DownloadBytes / 4, timeout.Token);
        }

        await AwaitHeldAsync(cluster, holder: 1, addresses[0], timeout.Token);
        await AwaitHeldAsync(cluster, holder: 0, addresses[1], timeout.Token);

        // An even split: the resolver keeps the lowest address.
        var kept = Member.AddressOrdering.Compare(addresses[0], addresses[1]) < 0 ? 0 : 1;
        var downed = 1 - kept;
        await cluster.SetControlLinkAsync(0, 1, cut: true);

        var takenOver = await AwaitTakenOverAsync(cluster, kept, addresses[downed], timeout.Token);

        // The other side marked its peer unreachable too, and its resolver downed it: it took nothing over meanwhile.
        await AwaitAsync(() => Akka.Cluster.Cluster.Get(cluster.Servers[downed].System).SelfMember.Status == MemberStatus.Down, $"node {downed} downed by its resolver", timeout.Token);
        await Task.Delay(TimeSpan.FromSeconds(1), timeout.Token);
        var other = await StatisticsAsync(cluster, downed, timeout.Token);
        Assert.Empty(other.TakenOver);

        foreach (var download in downloads)
        {
            await download.FinishAsync(timeout.Token);
        }

        Assert.Equal(1, cluster.Servers[kept].MigratedIn);
        Assert.Equal(0, cluster.Servers[downed].MigratedIn);
        Assert.Empty((await StatisticsAsync(cluster, downed, timeout.Token)).TakenOver);
        Assert.All(cluster.Servers, server => Assert.Empty(server.ApplicationFailures));
        output.WriteLine($"node {kept} (lowest address) took node {downed}'s connection over {takenOver.TotalMilliseconds:F0} ms after the cut; node {downed} took nothing over and was downed; both downloads byte-exact");
    }

    [Fact]
    public async Task A_node_cut_off_from_the_two_others_must_take_nothing_over_be_downed_and_leave_every_request_answered_once()
    {
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 3,
            Transports = [TestTransport.Memory],
            Replication = true,
            ServerExtra = MigrationCluster.ThrottledControlNetwork,
        });
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
        var addresses = cluster.Servers.Select(server => Akka.Cluster.Cluster.Get(server.System).SelfAddress).ToArray();
        const int CutOff = 0;

        // Node 0 is one of the other nodes' buddy: a download on each of them puts one replica on it.
        using var first = await Download.StartAsync(cluster, 1, timeout.Token);
        using var second = await Download.StartAsync(cluster, 2, timeout.Token);
        Download[] downloads = [first, second];
        foreach (var download in downloads)
        {
            await download.ReadUpToAsync(DownloadBytes / 4, timeout.Token);
        }

        // A request session on node 0: each 64 KB request is answered with SHA-256 of the previous answer and itself.
        var session = await client.ConnectAsync(EndPoint(CutOff), timeout.Token);
        await session.WriteAsync(ReferenceApps.Command(ReferenceApps.Upload, UploadBytes), timeout.Token);
        var requests = UploadBytes / ReferenceApps.RequestLength;
        var request = new byte[ReferenceApps.RequestLength];
        var answer = new byte[ReferenceApps.DigestLength];
        var expected = new byte[ReferenceApps.DigestLength];
        int? buddy = null;
        var heldOnCutOff = 0;
        for (long i = 0; i < requests; i++)
        {
            if (i == requests / 2)
            {
                buddy = await HolderOfAsync(cluster, addresses[CutOff], timeout.Token);
                heldOnCutOff = (await StatisticsAsync(cluster, CutOff, timeout.Token)).HeldByOrigin.Values.Sum();
                await cluster.SetControlLinkAsync(CutOff, 1, cut: true);
                await cluster.SetControlLinkAsync(CutOff, 2, cut: true);
                output.WriteLine($"node {CutOff} cut off after request {i}; its buddy is node {buddy}; it holds {heldOnCutOff} replica(s) of the others' connections");
            }

            StreamPattern.Fill(ReferenceApps.UploadKey, i * ReferenceApps.RequestLength, request);
            await session.WriteAsync(request, timeout.Token);
            await session.ReadExactlyAsync(answer, timeout.Token);
            expected = ReferenceApps.NextDigest(expected, request);
            Assert.True(expected.AsSpan().SequenceEqual(answer), $"answer {i} is not SHA-256 of the chain: a request was lost or served twice");
        }

        Assert.Equal(0, await session.ReadAsync(answer, timeout.Token));
        Assert.True(heldOnCutOff > 0, $"node {CutOff} held no replica of the others' connections: nothing to refuse taking over");

        // The majority's buddy took the session over; the node cut off saw the others go unreachable one at a time, is
        // on the side the resolver downs, and took nothing over. Its resolver downs it (a shipped node then shuts down).
        Assert.NotNull(buddy);
        await AwaitTakenOverAsync(cluster, buddy.Value, addresses[CutOff], timeout.Token);
        await AwaitAsync(() => Akka.Cluster.Cluster.Get(cluster.Servers[CutOff].System).SelfMember.Status == MemberStatus.Down, $"node {CutOff} downed by its resolver", timeout.Token);
        await Task.Delay(TimeSpan.FromSeconds(1), timeout.Token);
        Assert.Empty((await StatisticsAsync(cluster, CutOff, timeout.Token)).TakenOver);
        Assert.Equal(0, cluster.Servers[CutOff].MigratedIn);

        foreach (var download in downloads)
        {
            await download.FinishAsync(timeout.Token);
        }

        Assert.Empty((await StatisticsAsync(cluster, CutOff, timeout.Token)).TakenOver);
        Assert.All(cluster.Servers, server => Assert.Empty(server.ApplicationFailures));
        output.WriteLine($"{requests} requests answered once each across the takeover by node {buddy}; node {CutOff} took nothing over and was downed; both downloads byte-exact");
    }

    private static async Task<ReplicaStatistics> StatisticsAsync(MigrationCluster cluster, int node, CancellationToken cancellationToken) =>
        await cluster.Servers[node].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, cancellationToken);

    private static async Task AwaitHeldAsync(MigrationCluster cluster, int holder, Address origin, CancellationToken cancellationToken)
    {
        await AwaitAsync(
            async () => (await StatisticsAsync(cluster, holder, cancellationToken)).HeldByOrigin.GetValueOrDefault(origin) > 0,
            $"node {holder} holds a replica of {origin}'s connection",
            cancellationToken);
    }

    /// <summary>Waits until <paramref name="holder"/> took a connection of <paramref name="origin"/> over; how long it took.</summary>
    private static async Task<TimeSpan> AwaitTakenOverAsync(MigrationCluster cluster, int holder, Address origin, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        await AwaitAsync(
            async () => (await StatisticsAsync(cluster, holder, cancellationToken)).TakenOver.GetValueOrDefault(origin) == 1,
            $"node {holder} took {origin}'s connection over",
            cancellationToken);
        return DateTime.UtcNow - started;
    }

    /// <summary>The live node other than the origin that holds a replica of <paramref name="origin"/>'s connection.</summary>
    private static async Task<int> HolderOfAsync(MigrationCluster cluster, Address origin, CancellationToken cancellationToken)
    {
        int? holder = null;
        await AwaitAsync(
            async () =>
            {
                for (var i = 0; i < cluster.Servers.Count; i++)
                {
                    if (!Akka.Cluster.Cluster.Get(cluster.Servers[i].System).SelfAddress.Equals(origin)
                        && (await StatisticsAsync(cluster, i, cancellationToken)).HeldByOrigin.GetValueOrDefault(origin) > 0)
                    {
                        holder = i;
                        return true;
                    }
                }

                return false;
            },
            $"a node holds a replica of {origin}'s connection",
            cancellationToken);
        return holder!.Value;
    }

    private static Task AwaitAsync(Func<bool> condition, string what, CancellationToken cancellationToken) =>
        AwaitAsync(() => Task.FromResult(condition()), what, cancellationToken);

    private static async Task AwaitAsync(Func<Task<bool>> condition, string what, CancellationToken cancellationToken)
    {
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        waiting.CancelAfter(MomentTimeout);
        while (!await condition())
        {
            try
            {
                await Task.Delay(50, waiting.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"waited {MomentTimeout.TotalSeconds:F0} s for this in vain: {what}");
            }
        }
    }

    private static IPEndPoint EndPoint(int node)
    {
        var service = MigrationCluster.Service(TestTransport.Memory, node);
        return new IPEndPoint(service.Address.ToIPAddress(), service.Port);
    }

    /// <summary>A download of the reference pattern on a client of its own, read in steps and checked byte for byte.</summary>
    private sealed class Download : IDisposable
    {
        private readonly MtcpClient _client;
        private readonly Stream _stream;
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly byte[] _buffer = new byte[64 * 1024];
        private long _received;

        private Download(MtcpClient client, Stream stream)
        {
            _client = client;
            _stream = stream;
        }

        public static async Task<Download> StartAsync(MigrationCluster cluster, int node, CancellationToken cancellationToken)
        {
            var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
            try
            {
                var stream = await client.ConnectAsync(EndPoint(node), cancellationToken);
                await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), cancellationToken);
                return new Download(client, stream);
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }

        /// <summary>Reads until at least <paramref name="bytes"/> arrived, then stops reading (the server is then flow-controlled).</summary>
        public async Task ReadUpToAsync(long bytes, CancellationToken cancellationToken)
        {
            while (_received < bytes)
            {
                Assert.True(await ReadAsync(cancellationToken), $"the download ended at byte {_received}");
            }
        }

        public async Task FinishAsync(CancellationToken cancellationToken)
        {
            while (await ReadAsync(cancellationToken))
            {
            }

            Assert.Equal(DownloadBytes, _received);
            Assert.Equal(MigrationAcrossNodesTests.ExpectedSha256(ReferenceApps.DownloadKey, DownloadBytes), Convert.ToHexString(_hash.GetHashAndReset()));
        }

        public void Dispose()
        {
            _hash.Dispose();
            _client.Dispose();
        }

        private async Task<bool> ReadAsync(CancellationToken cancellationToken)
        {
            var read = await _stream.ReadAsync(_buffer, cancellationToken);
            if (read == 0)
            {
                return false;
            }

            Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, _received, _buffer.AsSpan(0, read)) < 0, $"the download differs after byte {_received}");
            _hash.AppendData(_buffer, 0, read);
            _received += read;
            return true;
        }
    }
}

using System.Diagnostics;
using System.Net;
using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Replication;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>Two server nodes on the in-memory fabric that keep each connection's state on the other (buddy replication).</summary>
public sealed class ReplicatedClusterFixture : IAsyncLifetime
{
    public MigrationCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
    {
        ServerCount = 2,
        Transports = [TestTransport.Memory],
        Replication = true,
    });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>
/// Buddy replication through the runtime that ships: the node serving a connection keeps the other node up to date
/// over the control connection, the client's bytes are acknowledged once the buddy holds them, and the streams stay
/// byte-exact, across a planned migration too.
/// </summary>
[Trait("Category", "Failover")]
[Collection(MultiNodeCollection.Name)]
public sealed class ReplicationAcrossNodesTests(ReplicatedClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ReplicatedClusterFixture>
{
    private const long UploadBytes = 4L << 20;
    private const long DownloadBytes = 8L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    private MigrationCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Upload_must_be_replicated_on_the_buddy_answered_exactly_once_and_keep_replicating_after_a_migration()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(Cluster.ClientRuntimes[TestTransport.Memory]);
        var started = Stopwatch.GetTimestamp();
        var stream = await client.ConnectAsync(EndPoint(0), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Upload, UploadBytes), timeout.Token);

        var requests = UploadBytes / ReferenceApps.RequestLength;
        var request = new byte[ReferenceApps.RequestLength];
        var answer = new byte[ReferenceApps.DigestLength];
        var expected = new byte[ReferenceApps.DigestLength];
        var heldOnBuddy = new List<int>();
        for (long i = 0; i < requests; i++)
        {
            if (i == requests / 4)
            {
                heldOnBuddy.Add(await HeldAsync(buddy: 1, origin: 0, timeout.Token));
            }

            if (i == requests / 2)
            {
                var report = await client.MigrateAsync(MigrationCluster.Service(TestTransport.Memory, 1), timeout.Token);
                Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration failed: {report.FailureReason}");
            }

            if (i == 3 * requests / 4)
            {
                heldOnBuddy.Add(await HeldAsync(buddy: 0, origin: 1, timeout.Token));
            }

            StreamPattern.Fill(ReferenceApps.UploadKey, i * ReferenceApps.RequestLength, request);
            await stream.WriteAsync(request, timeout.Token);
            await stream.ReadExactlyAsync(answer, timeout.Token);
            expected = ReferenceApps.NextDigest(expected, request);
            Assert.True(expected.AsSpan().SequenceEqual(answer), $"answer {i} is not SHA-256 of the chain: a request was lost or served twice");
        }

        Assert.Equal(0, await stream.ReadAsync(answer, timeout.Token));
        output.WriteLine($"{UploadBytes} bytes up in {requests} requests with replication and one migration in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");

        // Node 1's buddy (node 0) held the connection while node 0 served it, and node 0 held it once it had moved.
        Assert.Equal([1, 1], heldOnBuddy);

        // Closed both ways: the replica is released (a half-closed connection keeps it; its server may still crash).
        await stream.DisposeAsync();
        await AwaitHeldAsync(buddy: 0, origin: 1, expected: 0, timeout.Token);
    }

    [Fact]
    public async Task Upload_must_measure_the_replication_round_trip_and_the_pipeline_wait()
    {
        using var roundTrips = new MigrationMeasurements("mtcp.replication.round_trip.duration");
        using var pipelineWaits = new MigrationMeasurements("mtcp.replication.pipeline_wait.duration");
        using var ackDelays = new MigrationMeasurements("mtcp.replication.ack.delay");
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(Cluster.ClientRuntimes[TestTransport.Memory]);
        var started = Stopwatch.GetTimestamp();
        var stream = await client.ConnectAsync(EndPoint(0), timeout.Token);
        const long Bytes = 1L << 20;
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Upload, Bytes), timeout.Token);
        var request = new byte[ReferenceApps.RequestLength];
        var answer = new byte[ReferenceApps.DigestLength];
        for (long i = 0; i < Bytes / ReferenceApps.RequestLength; i++)
        {
            StreamPattern.Fill(ReferenceApps.UploadKey, i * ReferenceApps.RequestLength, request);
            await stream.WriteAsync(request, timeout.Token);
            await stream.ReadExactlyAsync(answer, timeout.Token);
        }

        await stream.DisposeAsync();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        output.WriteLine($"round trips {roundTrips.Seconds.Length}, mean {Mean(roundTrips.Seconds) * 1e6:F0} us; pipeline waits {pipelineWaits.Seconds.Length}, mean {Mean(pipelineWaits.Seconds) * 1e6:F0} us; ack delays {ackDelays.Seconds.Length}, mean {Mean(ackDelays.Seconds) * 1e6:F0} us");

        // Every read log measures its first byte's wait; every ack naming an update the control connection sent measures
        // its round trip, a part of that update's ack delay (so none longer than the longest ack delay), within the upload.
        Assert.NotEmpty(pipelineWaits.Seconds);
        Assert.All(pipelineWaits.Seconds, wait => Assert.InRange(wait, 0, elapsed));
        Assert.NotEmpty(roundTrips.Seconds);
        Assert.All(roundTrips.Seconds, roundTrip => Assert.InRange(roundTrip, double.Epsilon, ackDelays.Seconds.Max()));
    }

    private static double Mean(double[] values) => values.Length == 0 ? 0 : values.Average();

    [Fact]
    public async Task Download_must_be_byte_exact_with_replication_on()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(Cluster.ClientRuntimes[TestTransport.Memory]);
        var started = Stopwatch.GetTimestamp();
        var stream = await client.ConnectAsync(EndPoint(1), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), timeout.Token);
        var buffer = new byte[64 * 1024];
        long received = 0;
        var held = -1;
        while (true)
        {
            if (held < 0 && received >= DownloadBytes / 2)
            {
                held = await HeldAsync(buddy: 0, origin: 1, timeout.Token);
            }

            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read)) < 0, $"the download differs after byte {received}");
            received += read;
        }

        output.WriteLine($"{DownloadBytes} bytes down with replication in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
        Assert.Equal(DownloadBytes, received);
        Assert.Equal(1, held);
    }

    private async Task<int> HeldAsync(int buddy, int origin, CancellationToken cancellationToken)
    {
        var statistics = await Cluster.Servers[buddy].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, cancellationToken);
        return statistics.HeldByOrigin.TryGetValue(Akka.Cluster.Cluster.Get(Cluster.Servers[origin].System).SelfAddress, out var held) ? held : 0;
    }

    private async Task AwaitHeldAsync(int buddy, int origin, int expected, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (await HeldAsync(buddy, origin, cancellationToken) == expected)
            {
                return;
            }

            await Task.Delay(50, cancellationToken);
        }

        Assert.Fail($"node {buddy} still holds {await HeldAsync(buddy, origin, cancellationToken)} replicas from node {origin}, expected {expected}");
    }

    private static IPEndPoint EndPoint(int server)
    {
        var service = MigrationCluster.Service(TestTransport.Memory, server);
        return new IPEndPoint(service.Address.ToIPAddress(), service.Port);
    }
}

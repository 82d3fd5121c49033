using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Mtcp.Actors.Api;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Client-stored state (<c>mtcp.migration.replication = client</c>) through the runtime that ships, two nodes in one
/// Akka.Cluster on the in-memory fabric: the node serving a download seals its state for the client at every change;
/// it crashes (its packets stop, then it stops without leaving the cluster); the client's failover presents the state
/// it holds on its special SYN to the other node, which resumes from it once the cluster has marked the origin
/// unreachable. No node held a replica. The download is checked byte for byte and must complete without a reset.
/// </summary>
[Trait("Category", "Failover")]
[Collection(MultiNodeCollection.Name)]
public sealed class ClientStoredStateAcrossNodesTests(ITestOutputHelper output)
{
    private const long DownloadBytes = 8L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);

    private static readonly ClientFailover Failover = new()
    {
        ProbeInterval = TimeSpan.FromMilliseconds(500),
        SilentAfter = 2,
        SpecialSynTimeout = TimeSpan.FromMilliseconds(500),
        GiveUpAfter = TimeSpan.FromSeconds(15),
    };

    private readonly ConcurrentDictionary<IpAddress, LossyPacketTransport> _links = new();

    [Fact]
    public async Task A_download_whose_node_crashed_must_resume_byte_exact_on_the_other_node_from_the_state_the_client_holds()
    {
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 2,
            Transports = [TestTransport.Memory],
            ClientStoredState = true,
            ClientFailover = Failover,
            WrapMemoryTransport = inner => _links[inner.LocalAddress] = new LossyPacketTransport(inner, new LinkConditions { Latency = TimeSpan.Zero }, seed: 1),
        });
        using var timeout = new CancellationTokenSource(TestTimeout);
        var runtime = cluster.ClientRuntimes[TestTransport.Memory];
        using var client = new MtcpClient(runtime);
        var reports = new ConcurrentQueue<MigrationReport>();
        client.MigrationEnded += (_, report) => reports.Enqueue(report);
        var service = MigrationCluster.Service(TestTransport.Memory, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(service.Address.ToIPAddress(), service.Port), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), timeout.Token);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long received = 0;
        long? crashedAt = null;
        TimeSpan? stalled = null;
        var killed = 0L;
        while (true)
        {
            if (crashedAt is null && received >= DownloadBytes / 4)
            {
                crashedAt = received;
                _links[IpAddress.Parse(MigrationCluster.Address(TestTransport.Memory, 2))].SetConditions(new LinkConditions { Latency = TimeSpan.Zero, LossRate = 1.0 }, seed: 1);
                await cluster.Servers[0].StopAsync();
                killed = Stopwatch.GetTimestamp();
            }

            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read)) < 0, $"the download differs after byte {received}");
            hash.AppendData(buffer, 0, read);
            received += read;
            if (killed != 0 && stalled is null && cluster.Servers[1].MigratedIn > 0)
            {
                stalled = Stopwatch.GetElapsedTime(killed);
            }
        }

        Assert.NotNull(crashedAt);
        Assert.Equal(DownloadBytes, received);
        Assert.Equal(MigrationAcrossNodesTests.ExpectedSha256(ReferenceApps.DownloadKey, DownloadBytes), Convert.ToHexString(hash.GetHashAndReset()));
        Assert.Equal(1, cluster.Servers[1].MigratedIn);
        Assert.Empty(cluster.Servers[1].ApplicationFailures);
        Assert.Contains(reports, report => report.Outcome == MigrationOutcome.Completed && report.To == MigrationCluster.Service(TestTransport.Memory, 1));
        output.WriteLine($"node 0 killed after {crashedAt} bytes; node 1 resumed from the client's state, first new byte {stalled?.TotalMilliseconds:F0} ms after the kill; {DownloadBytes} bytes byte-exact");
    }
}

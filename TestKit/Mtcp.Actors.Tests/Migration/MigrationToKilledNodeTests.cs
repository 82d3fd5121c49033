using System.Net;
using System.Security.Cryptography;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>A cluster whose client gives up a migration after 2 s without the destination's SYN+ACK.</summary>
public sealed class KilledNodeClusterFixture : IAsyncLifetime
{
    public MigrationCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await MigrationCluster.StartAsync(clientExtra: "mtcp.tcp.connect-timeout = 2s");

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>
/// A server node crashes (its ActorSystem and transports gone, without leaving the cluster) in the middle of a
/// download; a migration to it then fails cleanly and the download completes on the server it started on.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class MigrationToKilledNodeTests(KilledNodeClusterFixture fixture, ITestOutputHelper output) : IClassFixture<KilledNodeClusterFixture>
{
    private const long DownloadBytes = 16L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(TestTransport.Memory)]
    [InlineData(TestTransport.Udp)]
    [InlineData(TestTransport.Raw)]
    public async Task Migration_to_a_node_killed_mid_transfer_must_fail_and_the_download_complete_on_the_origin(TestTransport transport)
    {
        var cluster = fixture.Cluster;
        if (transport == TestTransport.Raw && cluster.RawUnavailable is { } why)
        {
            Assert.Fail($"this test needs raw sockets (root or CAP_NET_RAW): {why}");
        }

        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(cluster.ClientRuntimes[transport]);
        var origin = MigrationCluster.Service(transport, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(origin.Address.ToIPAddress(), origin.Port), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), timeout.Token);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long received = 0;
        MigrationReport? report = null;
        while (true)
        {
            if (report is null && received >= DownloadBytes / 4)
            {
                var victim = cluster.Servers[2];
                await victim.StopAsync();
                report = await client.MigrateAsync(MigrationCluster.Service(transport, 2), timeout.Token);
            }

            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read)) < 0, $"the download differs after byte {received}");
            hash.AppendData(buffer, 0, read);
            received += read;
        }

        Assert.NotNull(report);
        Assert.Equal(MigrationOutcome.Failed, report.Outcome);
        Assert.Equal(origin, report.From);
        Assert.Equal(DownloadBytes, received);
        Assert.Equal(MigrationAcrossNodesTests.ExpectedSha256(ReferenceApps.DownloadKey, DownloadBytes), Convert.ToHexString(hash.GetHashAndReset()));
        output.WriteLine($"{transport}: migration to the killed node failed after {report.Duration.TotalMilliseconds:F0} ms ({report.FailureReason}); {received} bytes completed on {origin}");
    }
}

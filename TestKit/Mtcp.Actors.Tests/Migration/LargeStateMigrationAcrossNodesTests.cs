using System.Net;
using System.Security.Cryptography;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// A live connection whose server application exports 1 MB of state, migrated between ActorSystems over
/// Akka.Remote on loopback. The state reply is larger than Akka.Remote's frame limit (a larger message is dropped
/// with only a log line), so it can only arrive as the control connection's chunks: the destination must import
/// exactly the bytes the origin exported, and the stream continue verified.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class LargeStateMigrationAcrossNodesTests(MigrationClusterFixture fixture, ITestOutputHelper output) : IClassFixture<MigrationClusterFixture>
{
    private const long DownloadBytes = 8L << 20;
    private const int AkkaRemoteDefaultFrameLimit = 128_000;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);

    private MigrationCluster Cluster => fixture.Cluster;

    [Theory]
    [InlineData(TestTransport.Memory)]
    [InlineData(TestTransport.Udp)]
    public async Task Connection_with_1_MB_of_application_state_must_migrate_with_the_state_imported_byte_exact(TestTransport transport)
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var stateBytes = new MigrationMeasurements("mtcp.migration.state.size");
        var importsBefore = Cluster.Servers.Select(s => s.LargeStateImports.Count).ToArray();
        using var client = new MtcpClient(Cluster.ClientRuntimes[transport]);
        var service = MigrationCluster.Service(transport, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(service.Address.ToIPAddress(), service.Port), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.LargeStateDownload, DownloadBytes), timeout.Token);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long received = 0;
        var destinations = new[] { 1, 2 };
        var migrations = 0;
        while (true)
        {
            if (migrations < destinations.Length && received >= (migrations + 1) * (DownloadBytes / (destinations.Length + 1)))
            {
                var report = await client.MigrateAsync(MigrationCluster.Service(transport, destinations[migrations]), timeout.Token);
                Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration to {report.To} failed: {report.FailureReason}");
                migrations++;
            }

            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            var mismatch = StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read));
            Assert.True(mismatch < 0, $"byte {mismatch} of the download differs (after {migrations} migrations)");
            hash.AppendData(buffer, 0, read);
            received += read;
        }

        Assert.Equal(DownloadBytes, received);
        Assert.Equal(MigrationAcrossNodesTests.ExpectedSha256(ReferenceApps.DownloadKey, DownloadBytes), Convert.ToHexString(hash.GetHashAndReset()));
        Assert.Equal(destinations.Length, migrations);

        foreach (var destination in destinations)
        {
            var imports = Cluster.Servers[destination].LargeStateImports.Skip(importsBefore[destination]).ToArray();
            var (offset, sha256) = Assert.Single(imports);
            Assert.InRange(offset, 0, DownloadBytes);
            var exported = ReferenceApps.LargeState(DownloadBytes, offset);
            Assert.Equal(ReferenceApps.LargeStateLength, exported.Length);
            Assert.True(
                Convert.ToHexString(SHA256.HashData(exported)) == sha256,
                $"server {destination} imported other bytes than the 1 MB state exported at offset {offset}");
            output.WriteLine($"{transport}: server {destination} imported 1 MB of state at download offset {offset}, SHA-256 {sha256[..16]}...");
        }

        // Each reply is larger than the frame limit: it crossed Akka.Remote in chunks, or not at all.
        var replies = stateBytes.Values;
        Assert.True(replies.Count(b => b > ReferenceApps.LargeStateLength) >= destinations.Length, $"state replies received: {string.Join(", ", replies)} bytes");
        Assert.All(replies.Where(b => b > ReferenceApps.LargeStateLength), b => Assert.True(b > AkkaRemoteDefaultFrameLimit));
        output.WriteLine($"{transport}: state replies of {string.Join(", ", replies.Where(b => b > ReferenceApps.LargeStateLength))} bytes");
    }
}

using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>One cluster of three server nodes and a client node for all the tests of a class.</summary>
public sealed class MigrationClusterFixture : IAsyncLifetime
{
    public MigrationCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await MigrationCluster.StartAsync();

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>
/// Migration between real ActorSystems: three server nodes in an Akka.Cluster, each with MTCP runtimes over the
/// in-memory fabric, UDP and raw IP protocol 253, and a client node. A 64 MB download with 24 migrations and a
/// 16 MB request/response upload with 11 migrations, round-robin among the servers, each verified by SHA-256; and a
/// download whose client stopped reading across two migrations.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class MigrationAcrossNodesTests(MigrationClusterFixture fixture, ITestOutputHelper output) : IClassFixture<MigrationClusterFixture>
{
    private const long DownloadBytes = 64L << 20;
    private const int DownloadMigrations = 24;
    private const long UploadBytes = 16L << 20;
    private const int UploadMigrations = 11;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);

    private MigrationCluster Cluster => fixture.Cluster;

    [Theory]
    [InlineData(TestTransport.Memory)]
    [InlineData(TestTransport.Udp)]
    [InlineData(TestTransport.Raw)]
    public async Task Download_of_64_MB_must_arrive_intact_across_24_migrations_among_three_servers(TestTransport transport)
    {
        RequireTransport(transport);
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(Cluster.ClientRuntimes[transport]);
        var migratedInBefore = Cluster.Servers.Sum(s => s.MigratedIn);
        using var completedMetric = new MigrationMeasurements("mtcp.migration.completed");
        var reports = new List<MigrationReport>();
        client.MigrationEnded += (_, report) => { lock (reports) { reports.Add(report); } };
        var started = Stopwatch.GetTimestamp();
        var stream = await client.ConnectAsync(EndPoint(transport, 0), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), timeout.Token);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long received = 0;
        var migrations = 0;
        var server = 0;
        var previousLocalPort = stream.LocalEndPoint.Port;
        while (true)
        {
            if (migrations < DownloadMigrations && received >= (migrations + 1) * (DownloadBytes / (DownloadMigrations + 1)))
            {
                server = (server + 1) % MigrationCluster.ServerCount;
                var report = await client.MigrateAsync(MigrationCluster.Service(transport, server), timeout.Token);
                Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration {migrations + 1} to {report.To} failed: {report.FailureReason}");

                // The stream names the connection's new 4-tuple: the new server, from the same local port, whose
                // 4-tuple towards that server is free (or left by this very connection and taken back).
                Assert.Equal(new IPEndPoint(report.To.Address.ToIPAddress(), report.To.Port), stream.RemoteEndPoint);
                Assert.Equal(previousLocalPort, stream.LocalEndPoint.Port);
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

        var elapsed = Stopwatch.GetElapsedTime(started);
        Assert.Equal(DownloadBytes, received);
        Assert.Equal(ExpectedSha256(ReferenceApps.DownloadKey, DownloadBytes), Convert.ToHexString(hash.GetHashAndReset()));
        Assert.Equal(DownloadMigrations, migrations);

        // Other tests may migrate at the same time; this one's migrations are all counted.
        Assert.True(completedMetric.Sum >= DownloadMigrations, $"mtcp.migration.completed counted {completedMetric.Sum} of {DownloadMigrations}");

        // Every hop resumed the server application from an imported state.
        Assert.Equal(DownloadMigrations, Cluster.Servers.Sum(s => s.MigratedIn) - migratedInBefore);
        lock (reports)
        {
            Assert.Equal(DownloadMigrations, reports.Count(r => r.Outcome == MigrationOutcome.Completed));
            output.WriteLine($"{transport}: {received} bytes, {migrations} migrations in {elapsed.TotalMilliseconds:F0} ms; client wait per migration median {Median(reports):F3} ms");
        }
    }

    [Fact]
    public async Task Download_must_arrive_intact_when_a_client_that_stopped_reading_migrates_twice_before_reading_again()
    {
        // A reader slower than the network: the client's receive window is closed at each hop, so each server left
        // still holds unread bytes when the next migration starts; all of them come before the next server's.
        const long DownloadLength = 8L << 20;
        var transport = TestTransport.Memory;
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(Cluster.ClientRuntimes[transport]);
        var stream = await client.ConnectAsync(EndPoint(transport, 0), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadLength), timeout.Token);
        var buffer = new byte[16 * 1024];
        long received = 0;
        while (received < 64 * 1024)
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            Assert.True(read > 0 && StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read)) < 0, "the download before the migrations");
            received += read;
        }

        foreach (var server in new[] { 1, 2 })
        {
            // Long enough for the in-memory fabric to fill the client's receive buffer.
            await Task.Delay(TimeSpan.FromMilliseconds(300), timeout.Token);
            var report = await client.MigrateAsync(MigrationCluster.Service(transport, server), timeout.Token);
            Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration to {report.To} failed: {report.FailureReason}");
        }

        while (true)
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            var mismatch = StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read));
            Assert.True(mismatch < 0, $"byte {mismatch} of the download differs after the migrations");
            received += read;
        }

        Assert.Equal(DownloadLength, received);
    }

    [Fact]
    public async Task Download_must_arrive_intact_across_migrations_after_the_client_shut_down_writing()
    {
        // nc -N against a migrating service: the request, then the client's FIN. Each server holds the FIN (CLOSE-WAIT)
        // when the connection leaves it; the next one replays it from the state reply's transition log, and the last
        // one's close ends the client's reads.
        const long DownloadLength = 8L << 20;
        var transport = TestTransport.Memory;
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(Cluster.ClientRuntimes[transport]);
        var stream = await client.ConnectAsync(EndPoint(transport, 0), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadLength), timeout.Token);
        stream.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var buffer = new byte[64 * 1024];
        long received = 0;
        var migrations = 0;
        while (true)
        {
            if (migrations < 3 && received >= (migrations + 1) * (DownloadLength / 4))
            {
                migrations++;
                var report = await client.MigrateAsync(MigrationCluster.Service(transport, migrations % MigrationCluster.ServerCount), timeout.Token);
                Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration {migrations} to {report.To} failed: {report.FailureReason}");
            }

            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            var mismatch = StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read));
            Assert.True(mismatch < 0, $"byte {mismatch} of the download differs (after {migrations} migrations)");
            received += read;
        }

        Assert.Equal(DownloadLength, received);
        Assert.Equal(3, migrations);
    }

    [Theory]
    [InlineData(TestTransport.Memory)]
    [InlineData(TestTransport.Udp)]
    [InlineData(TestTransport.Raw)]
    public async Task Upload_of_16_MB_through_request_response_must_be_answered_exactly_once_across_11_migrations(TestTransport transport)
    {
        RequireTransport(transport);
        using var timeout = new CancellationTokenSource(TestTimeout);
        using var client = new MtcpClient(Cluster.ClientRuntimes[transport]);
        var migratedInBefore = Cluster.Servers.Sum(s => s.MigratedIn);
        var started = Stopwatch.GetTimestamp();
        var stream = await client.ConnectAsync(EndPoint(transport, 1), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Upload, UploadBytes), timeout.Token);

        var requests = UploadBytes / ReferenceApps.RequestLength;
        var request = new byte[ReferenceApps.RequestLength];
        var answer = new byte[ReferenceApps.DigestLength];
        var expected = new byte[ReferenceApps.DigestLength];
        var migrations = 0;
        var server = 1;
        for (long i = 0; i < requests; i++)
        {
            if (migrations < UploadMigrations && i >= (migrations + 1) * (requests / (UploadMigrations + 1)))
            {
                server = (server + 1) % MigrationCluster.ServerCount;
                var report = await client.MigrateAsync(MigrationCluster.Service(transport, server), timeout.Token);
                Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration {migrations + 1} to {report.To} failed: {report.FailureReason}");
                migrations++;
            }

            StreamPattern.Fill(ReferenceApps.UploadKey, i * ReferenceApps.RequestLength, request);
            await stream.WriteAsync(request, timeout.Token);
            await stream.ReadExactlyAsync(answer, timeout.Token);
            expected = ReferenceApps.NextDigest(expected, request);
            Assert.True(expected.AsSpan().SequenceEqual(answer), $"answer {i} is not SHA-256 of the chain (after {migrations} migrations): a request was lost or served twice");
        }

        Assert.Equal(0, await stream.ReadAsync(answer, timeout.Token));
        output.WriteLine($"{transport}: {UploadBytes} bytes up in {requests} requests, {migrations} migrations in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms; final answer {Convert.ToHexString(expected)}");
        Assert.Equal(UploadMigrations, migrations);
        Assert.Equal(UploadMigrations, Cluster.Servers.Sum(s => s.MigratedIn) - migratedInBefore);
    }

    private void RequireTransport(TestTransport transport)
    {
        if (transport == TestTransport.Raw && Cluster.RawUnavailable is { } why)
        {
            Assert.Fail($"this test needs raw sockets (root or CAP_NET_RAW): {why}");
        }
    }

    private static IPEndPoint EndPoint(TestTransport transport, int server)
    {
        var service = MigrationCluster.Service(transport, server);
        return new IPEndPoint(service.Address.ToIPAddress(), service.Port);
    }

    internal static string ExpectedSha256(ulong key, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        for (long offset = 0; offset < length; offset += buffer.Length)
        {
            var count = (int)Math.Min(buffer.Length, length - offset);
            StreamPattern.Fill(key, offset, buffer.AsSpan(0, count));
            hash.AppendData(buffer, 0, count);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    private static double Median(List<MigrationReport> reports)
    {
        var waits = reports.Where(r => r.Outcome == MigrationOutcome.Completed).Select(r => r.Duration.TotalMilliseconds).Order().ToArray();
        return waits.Length == 0 ? double.NaN : waits[waits.Length / 2];
    }
}

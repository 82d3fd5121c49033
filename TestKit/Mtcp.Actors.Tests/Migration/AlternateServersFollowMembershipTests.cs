using System.Net;
using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// The alternate-server list a client learns from TCP_MIGRATE (thesis 4.2.3) follows the cluster's membership with no
/// list written by hand: a client connecting after a server left is not offered it, and after a server joined is.
/// Checked at the client, on what its connection learned from the wire, not on the directory's view.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class AlternateServersFollowMembershipTests(ITestOutputHelper output)
{
    private const TestTransport Transport = TestTransport.Memory;
    private const long DownloadBytes = 256 * 1024;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Client_must_learn_alternates_without_a_server_that_left_and_with_one_that_joined()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var cluster = await MigrationCluster.StartAsync(transports: [Transport]);
        var s1 = MigrationCluster.Service(Transport, 1);
        var s2 = MigrationCluster.Service(Transport, 2);

        Assert.Equal([s1, s2], await AlternatesLearnedAsync(cluster, timeout.Token));

        await cluster.LeaveServerAsync(2);
        await AwaitDirectoryAsync(cluster.Servers[0], [s1], timeout.Token);
        Assert.Equal([s1], await AlternatesLearnedAsync(cluster, timeout.Token));

        await cluster.JoinServerAsync(2);
        await AwaitDirectoryAsync(cluster.Servers[0], [s1, s2], timeout.Token);
        Assert.Equal([s1, s2], await AlternatesLearnedAsync(cluster, timeout.Token));
    }

    /// <summary>A fresh connection to server 0 downloads a little and reports the alternates it learned, sorted.</summary>
    private async Task<ServerEndpoint[]> AlternatesLearnedAsync(MigrationCluster cluster, CancellationToken cancellationToken)
    {
        using var client = new MtcpClient(cluster.ClientRuntimes[Transport]);
        var service = MigrationCluster.Service(Transport, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(service.Address.ToIPAddress(), service.Port), cancellationToken);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes), cancellationToken);
        var buffer = new byte[64 * 1024];
        long received = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, received, buffer.AsSpan(0, read)) < 0, "the download differs");
            received += read;
        }

        Assert.Equal(DownloadBytes, received);
        var learned = (await client.GetAlternateServersAsync(cancellationToken)).OrderBy(s => s.ToString(), StringComparer.Ordinal).ToArray();
        output.WriteLine($"learned from {service}: [{string.Join(", ", learned)}]");
        return learned;
    }

    /// <summary>Waits for <paramref name="server"/>'s directory to offer exactly <paramref name="expected"/> as alternates.</summary>
    private static async Task AwaitDirectoryAsync(ServerNode server, ServerEndpoint[] expected, CancellationToken cancellationToken)
    {
        while (true)
        {
            var view = await server.Directory.Ask<AlternateServersChanged>(GetAlternateServers.Instance, cancellationToken);
            if (view.Alternates.Servers.OrderBy(s => s.ToString(), StringComparer.Ordinal).SequenceEqual(expected))
            {
                return;
            }

            await Task.Delay(100, cancellationToken);
        }
    }
}

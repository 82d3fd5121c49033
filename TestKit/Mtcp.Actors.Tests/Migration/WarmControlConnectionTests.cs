using System.Net;
using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Warm control connections: a node reaches each member of its service as it joins (its control connection resolves
/// the peer's manager over the Akka.Remote association), so the first migration to a newly joined node waits for no
/// association handshake. Checked on the control connections' state before any migration, then with one.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class WarmControlConnectionTests(ITestOutputHelper output)
{
    private const TestTransport Transport = TestTransport.Memory;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_joining_node_must_have_reached_every_member_and_be_reached_by_them_before_its_first_migration()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var cluster = await MigrationCluster.StartAsync(transports: [Transport]);
        await cluster.LeaveServerAsync(2);
        await cluster.JoinServerAsync(2);
        var joined = cluster.Servers[2];
        await joined.AwaitMappingsAsync(MigrationCluster.ServerCount, TestTimeout);
        var addresses = cluster.Servers.Select(server => Akka.Cluster.Cluster.Get(server.System).SelfAddress).ToArray();

        // Every ordered pair of nodes: the control connection exists and reached its peer, with no state transferred yet.
        for (var from = 0; from < addresses.Length; from++)
        {
            for (var to = 0; to < addresses.Length; to++)
            {
                if (from != to)
                {
                    await AwaitReachedAsync(cluster.Servers[from], addresses[to], timeout.Token);
                }
            }
        }

        // And the first migration to the joined node goes through.
        using var client = new MtcpClient(cluster.ClientRuntimes[Transport]);
        var origin = MigrationCluster.Service(Transport, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(origin.Address.ToIPAddress(), origin.Port), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Download, 64 * 1024), timeout.Token);
        await stream.ReadExactlyAsync(new byte[1024], timeout.Token);
        var report = await client.MigrateAsync(MigrationCluster.Service(Transport, 2), timeout.Token);
        Assert.True(report.Outcome == MigrationOutcome.Completed, report.FailureReason);
        output.WriteLine($"first migration to the joined node: {report.Duration.TotalMilliseconds:F1} ms");
        stream.Abort();
    }

    private async Task AwaitReachedAsync(ServerNode node, Address peer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var connections = await node.Control.Ask<ControlConnections>(GetControlConnections.Instance, cancellationToken);
            if (connections.ByPeer.TryGetValue(peer, out var connection)
                && (await connection.Ask<ControlConnectionState>(GetControlConnectionState.Instance, cancellationToken)).PeerReached)
            {
                output.WriteLine($"node {node.Index} reached {peer}");
                return;
            }

            await Task.Delay(50, cancellationToken);
        }
    }
}

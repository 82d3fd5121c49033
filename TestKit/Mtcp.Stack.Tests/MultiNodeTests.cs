using Mtcp.Stack;
using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>The simulator hosting more than two endpoints: one client talking to three servers at once.</summary>
[Trait("Category", "Stack")]
public sealed class MultiNodeTests
{
    [Fact]
    public void One_client_must_transfer_with_three_servers_concurrently_over_a_lossy_network()
    {
        const int Seed = 11;
        const long Bytes = 300_000;
        var network = new SimNetwork(Seed, LossyNetworkPropertyTests.ConditionsFor(Seed, 0.05));
        var config = LossyNetworkPropertyTests.LossTolerantConfig;
        var random = network.Random;
        SeqNumber Iss() => new((uint)random.NextInt64(0, 1L << 32));
        var client = network.Add(new TcpNode(IpAddress.Parse("10.0.0.1"), config, Iss));
        var servers = Enumerable.Range(2, 3).Select(i => network.Add(new TcpNode(IpAddress.Parse($"10.0.0.{i}"), config, Iss))).ToArray();

        var apps = new Dictionary<TcpConnection, BulkTransferApplication>();
        client.Application = (now, c) => apps[c].Pump(now, c);
        for (var i = 0; i < servers.Length; i++)
        {
            var serverIndex = (ulong)i;
            servers[i].Listen(80);
            servers[i].Accepted = c => apps[c] = new BulkTransferApplication(Bytes, sendKey: 100 + serverIndex, receiveKey: 200 + serverIndex);
            servers[i].Application = (now, c) => apps[c].Pump(now, c);
            var connection = client.Connect(network.Now, servers[i].Address, 80);
            apps[connection] = new BulkTransferApplication(Bytes, sendKey: 200 + serverIndex, receiveKey: 100 + serverIndex);
        }

        var all = new List<TcpNode>(servers) { client };
        Assert.True(network.Drive(() => all.All(n => n.Connections.Count > 0 && n.Connections.All(c => c.State == TcpState.Closed)), TimeSpan.FromHours(1)), $"seed {Seed}");

        Assert.Equal(6, apps.Count);
        Assert.All(apps.Values, app =>
        {
            Assert.Equal(Bytes, app.BytesRead);
            Assert.Equal(-1, app.FirstMismatch);
        });
    }

    [Fact]
    public void Partitioned_link_must_stall_the_transfer_until_healed()
    {
        var pair = new TcpPair(3, LinkConditions.Perfect, LossyNetworkPropertyTests.LossTolerantConfig, 2_000_000, 0);
        Assert.True(pair.Network.Drive(() => pair.ServerApp.BytesRead > 100_000, TimeSpan.FromMinutes(1)));
        var cut = new LinkConditions { LossRate = 1 };
        pair.Network.SetLinkConditions(pair.Client.Address, pair.Server.Address, cut);
        var readAtCut = pair.ServerApp.BytesRead;
        pair.Network.Drive(() => false, TimeSpan.FromSeconds(5));
        var stalled = pair.ServerApp.BytesRead - readAtCut;
        Assert.True(stalled < 300_000, $"{stalled} bytes crossed a cut link"); // only what was already in flight
        Assert.True(pair.ClientConnection.Stats.RetransmissionTimeouts > 0);

        pair.Network.SetLinkConditions(pair.Client.Address, pair.Server.Address, null);
        Assert.True(pair.DriveToClose(TimeSpan.FromMinutes(10)), pair.Describe());
        Assert.Equal(2_000_000, pair.ServerApp.BytesRead);
    }
}

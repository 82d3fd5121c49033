using System.Net;
using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Replication;
using Mtcp.TestKit;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Two server nodes on the in-memory fabric with buddy replication, whose endpoints reach their control connection
/// manager through a <see cref="ReadLogDropper"/> that loses two read logs in a row: the two a connection may have in
/// flight (mtcp.migration.buddy-read-logs-in-flight), so that nothing reaches the buddy to make it ask for the whole
/// state. No snapshot is due within the test's upload (min-progress 4 MiB), so only the ack timeout can bring the
/// replica back.
/// </summary>
public sealed class LossyReplicationClusterFixture : IAsyncLifetime
{
    /// <summary>The read logs forwarded before the two that are lost.</summary>
    public const int ForwardedBeforeLoss = 2;

    public MigrationCluster Cluster { get; private set; } = null!;

    public List<IActorRef> Droppers { get; } = [];

    public async Task InitializeAsync() => Cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
    {
        ServerCount = 2,
        Transports = [TestTransport.Memory],
        Replication = true,
        ServerExtra = """
            mtcp.migration.buddy-read-logs-in-flight = 2
            mtcp.migration.buddy-ack-timeout = 500ms
            mtcp.migration.buddy-state { min-progress = 4MiB, max-progress = 4MiB }
            """,
        WrapControlManager = (system, manager) =>
        {
            var dropper = system.ActorOf(Props.Create(() => new ReadLogDropper(manager, ForwardedBeforeLoss, 2)), "read-log-dropper");
            lock (Droppers)
            {
                Droppers.Add(dropper);
            }

            return dropper;
        },
    });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>
/// Replica updates lost on their way (docs/failover.md, "Updates never silently lost"): a connection whose updates in
/// flight are lost, with no ack and no refusal to tell it, sends its buddy the whole state once the oldest has waited
/// <c>mtcp.migration.buddy-ack-timeout</c>; the client's bytes are then acknowledged and the upload goes on, byte-exact.
/// Before, the upload stalled for good once the client's send buffer was full of bytes never acknowledged.
/// </summary>
[Trait("Category", "Failover")]
[Collection(MultiNodeCollection.Name)]
public sealed class ReplicationAckTimeoutTests(LossyReplicationClusterFixture fixture, ITestOutputHelper output) : IClassFixture<LossyReplicationClusterFixture>
{
    /// <summary>Sixteen requests of 64 KiB: four times the client's send buffer (256 KiB), so a stalled upload cannot finish.</summary>
    private const long UploadBytes = 1L << 20;

    /// <summary>Generous for a loaded machine; without the ack timeout the upload never finishes.</summary>
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Read_logs_lost_on_their_way_must_be_replaced_by_the_whole_state_after_the_ack_timeout_and_the_upload_must_go_on()
    {
        using var timeouts = new MigrationMeasurements("mtcp.replication.ack_timeouts");
        using var updates = new MigrationMeasurements("mtcp.replication.updates", "kind");
        using var timeout = new CancellationTokenSource(TestTimeout);
        var cluster = fixture.Cluster;
        using var client = new MtcpClient(cluster.ClientRuntimes[TestTransport.Memory]);
        var service = MigrationCluster.Service(TestTransport.Memory, 0);
        var stream = await client.ConnectAsync(new IPEndPoint(service.Address.ToIPAddress(), service.Port), timeout.Token);
        await stream.WriteAsync(ReferenceApps.Command(ReferenceApps.Upload, UploadBytes), timeout.Token);

        var request = new byte[ReferenceApps.RequestLength];
        var answer = new byte[ReferenceApps.DigestLength];
        var expected = new byte[ReferenceApps.DigestLength];
        for (long i = 0; i < UploadBytes / ReferenceApps.RequestLength; i++)
        {
            StreamPattern.Fill(ReferenceApps.UploadKey, i * ReferenceApps.RequestLength, request);
            await stream.WriteAsync(request, timeout.Token);
            await stream.ReadExactlyAsync(answer, timeout.Token);
            expected = ReferenceApps.NextDigest(expected, request);
            Assert.True(expected.AsSpan().SequenceEqual(answer), $"answer {i} is not SHA-256 of the chain: a request was lost or served twice");
        }

        // The serving node's buddy holds the connection again, and every byte of it was acknowledged (the client's send
        // buffer, a quarter of the upload, would otherwise have stalled it).
        var statistics = await cluster.Servers[1].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, timeout.Token);
        var serving = Akka.Cluster.Cluster.Get(cluster.Servers[0].System).SelfAddress;
        Assert.Equal(1, statistics.HeldByOrigin.GetValueOrDefault(serving));

        var dropped = 0;
        foreach (var dropper in fixture.Droppers)
        {
            dropped += await dropper.Ask<int>(ReadLogDropper.CountDropped.Instance, timeout.Token);
        }

        output.WriteLine($"read logs dropped {dropped}; ack timeouts {timeouts.Values.Sum()}; whole states {updates.Tags.Count(tag => tag == "state")}");
        Assert.Equal(2, dropped);
        Assert.True(timeouts.Values.Sum() >= 1, "no connection timed its buddy's ack out");
        await stream.DisposeAsync();
    }
}

/// <summary>
/// Between a node's endpoints and its control connection manager: forwards every message with its sender (the manager
/// remembers the endpoint that replicates a connection by it), except <paramref name="lose"/> replica read logs in a row
/// after <paramref name="forwardFirst"/>, which are lost as on a channel broken mid-write or to a peer the manager marks
/// lost. Answers <see cref="CountDropped"/> with the read logs lost so far.
/// </summary>
internal sealed class ReadLogDropper : ReceiveActor
{
    private int _readLogs;
    private int _dropped;

    public ReadLogDropper(IActorRef manager, int forwardFirst, int lose)
    {
        Receive<CountDropped>(_ => Sender.Tell(_dropped));
        ReceiveAny(message =>
        {
            if (message is ReplicateTo { Update: ReplicaReadLog } && _readLogs++ >= forwardFirst && _dropped < lose)
            {
                _dropped++;
                return;
            }

            manager.Forward(message);
        });
    }

    public sealed record CountDropped
    {
        public static CountDropped Instance { get; } = new();
    }
}

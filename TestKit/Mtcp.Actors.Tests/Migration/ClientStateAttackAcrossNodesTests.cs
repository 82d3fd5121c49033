using System.Collections.Concurrent;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// The client as attacker of client-stored state (<c>mtcp.migration.replication = client</c>), through the runtime
/// that ships: a client holding a genuine connection and its sealed state alters the state its failover presents on
/// the special SYN after the serving node crashed. Each altered state is refused by the surviving node (counted by
/// reason, answered with a RST), nothing of it reaches an application, and the genuine state presented afterwards
/// still resumes the download byte-exact. The client is a <see cref="SansIoClientDriver"/> so that the test can alter
/// the bytes it sends.
/// </summary>
[Trait("Category", "Failover")]
[Trait("Category", "Security")]
[Collection(MultiNodeCollection.Name)]
public sealed class ClientStateAttackAcrossNodesTests(ITestOutputHelper output)
{
    private const long DownloadBytes = 4L << 20;
    private static readonly IpAddress ClientAddress = IpAddress.Parse("10.0.0.19");
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static readonly ClientFailover Failover = new()
    {
        ProbeInterval = TimeSpan.FromMilliseconds(500),
        SilentAfter = 2,
        SpecialSynTimeout = TimeSpan.FromMilliseconds(500),
        GiveUpAfter = TimeSpan.FromSeconds(60),
    };

    private readonly ConcurrentDictionary<IpAddress, LossyPacketTransport> _links = new();

    [Fact]
    public async Task Altered_client_states_after_a_crash_must_be_refused_and_the_genuine_one_then_resume_the_download_byte_exact()
    {
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            ServerCount = 2,
            Transports = [TestTransport.Memory],
            ClientStoredState = true,
            WrapMemoryTransport = inner => _links[inner.LocalAddress] = new LossyPacketTransport(inner, new LinkConditions { Latency = TimeSpan.Zero }, seed: 1),
        });
        using var refused = new MigrationMeasurements("mtcp.replication.client_states.refused", tagKey: "reason");
        using var transport = cluster.Fabric.Attach(ClientAddress);
        var driver = new SansIoClientDriver(transport, ClientAddress)
        {
            OnRead = (offset, bytes) => Assert.True(StreamPattern.FirstMismatch(ReferenceApps.DownloadKey, offset, bytes) < 0, $"the download differs after byte {offset}"),
        };
        var origin = MigrationCluster.Service(TestTransport.Memory, 0);
        var survivor = MigrationCluster.Service(TestTransport.Memory, 1);
        driver.Open(origin, localPort: 42000, Failover);
        driver.RunUntil(() => driver.Client.State == TcpState.Established && driver.Client.CanMigrate, Patience, "the handshake with the origin");
        driver.Write(ReferenceApps.Command(ReferenceApps.Download, DownloadBytes));
        driver.RunUntil(() => driver.BytesRead >= DownloadBytes / 4 && driver.Client.HeldClientState is not null, Patience, "a quarter of the download and a sealed state");

        // The origin crashes: its packets stop, then it stops without leaving the cluster.
        _links[IpAddress.Parse(MigrationCluster.Address(TestTransport.Memory, 2))].SetConditions(new LinkConditions { Latency = TimeSpan.Zero, LossRate = 1.0 }, seed: 1);
        await cluster.Servers[0].StopAsync();

        // Two alterations, one after the other: a bit of the authentication tag (the last byte), then of the header.
        foreach (var (what, index) in new (string, Func<int, int>)[] { ("tag", length => length - 1), ("header", _ => 0) })
        {
            var refusalsBefore = refused.Tags.Length;
            driver.Tamper = (header, payload) =>
            {
                if (header.Options.ClientState && !payload.IsEmpty)
                {
                    payload[index(payload.Length)] ^= 0x10;
                }

                return header;
            };
            driver.RunUntil(() => refused.Tags.Length > refusalsBefore, Patience, $"the surviving node to refuse a state with an altered {what}", () => Describe(driver));
            output.WriteLine($"altered {what}: refused ({refused.Tags[^1]})");
            Assert.Equal(origin, driver.Client.CurrentServer);
            Assert.Equal(0, cluster.Servers[1].MigratedIn);
        }

        Assert.Contains(nameof(ClientStateRefusal.BadTag), refused.Tags);

        driver.Tamper = null;
        driver.RunUntil(() => driver.Events.Any(e => e.Kind == MigrationEventKind.Completed), Patience, "the genuine state to resume the connection on the surviving node", () => Describe(driver));
        Assert.Equal(survivor, driver.Client.CurrentServer);
        driver.RunUntil(() => driver.BytesRead == DownloadBytes, Patience, "the rest of the download");
        Assert.Equal(1, cluster.Servers[1].MigratedIn);
        Assert.Empty(cluster.Servers[1].ApplicationFailures);
        output.WriteLine($"{DownloadBytes} bytes byte-exact; the client's migration events: {string.Join(", ", driver.Events.Select(e => e.Kind))}");
    }

    private static string Describe(SansIoClientDriver driver) =>
        $"migration events [{string.Join("; ", driver.Events.Select(e => $"{e.Kind} {e.Destination} {e.Detail}"))}], client {driver.Client.State}, "
        + $"failing over {driver.Client.IsFailingOver}, read {driver.BytesRead}";
}

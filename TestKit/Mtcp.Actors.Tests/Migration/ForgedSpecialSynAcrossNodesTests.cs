using System.Diagnostics;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// A special SYN whose MIGRATED_CONN authenticator was altered, sent to a cooperating server of a live connection,
/// across real ActorSystems: the new server asks the origin over the sealed control connection, the origin finds the
/// authenticator does not verify under the connection's secret (AUTH_FAILED), and the special SYN is refused with a
/// RST; the client's next, genuine special SYN migrates the connection. The client is a
/// <see cref="SansIoClientDriver"/>, so that the test can alter what it sends.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class ForgedSpecialSynAcrossNodesTests(ITestOutputHelper output)
{
    private const TestTransport Transport = TestTransport.Memory;
    private static readonly IpAddress ClientAddress = IpAddress.Parse("10.0.0.9");
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Altered_special_SYN_must_be_refused_by_the_origin_and_a_genuine_one_then_migrate()
    {
        await using var cluster = await MigrationCluster.StartAsync(transports: [Transport]);
        using var authFailures = new MigrationMeasurements("mtcp.migration.auth_failed", tagKey: "check");
        using var transport = cluster.Fabric.Attach(ClientAddress);
        var driver = new SansIoClientDriver(transport, ClientAddress);
        var origin = MigrationCluster.Service(Transport, 0);
        var destination = MigrationCluster.Service(Transport, 1);
        var migratedInBefore = cluster.Servers[1].MigratedIn;

        driver.Open(origin, localPort: 41000);
        driver.RunUntil(() => driver.Client.State == TcpState.Established && driver.Client.CanMigrate, Patience, "the handshake with the origin");

        // A bit of the MIGRATED_CONN authenticator flipped on every special SYN.
        driver.Tamper = SansIoClientDriver.FlipMigratedConnectionAuthenticator;
        driver.Client.BeginMigration(driver.Now, destination, new SeqNumber(0x1000), localPort: 41001);
        var refused = driver.RunUntilMigrationEnds(Patience);
        output.WriteLine($"altered special SYN: {refused.Kind} {refused.Detail}");
        Assert.Equal(MigrationEventKind.Failed, refused.Kind);
        Assert.Equal(origin, driver.Client.CurrentServer);

        // Tests of other classes may refuse forged requests at the same time: this one's refusal is among them.
        Assert.Contains("Forged", authFailures.Tags);

        driver.Tamper = null;
        driver.Client.BeginMigration(driver.Now, destination, new SeqNumber(0x2000), localPort: 41002);
        var migrated = driver.RunUntilMigrationEnds(Patience);
        Assert.Equal(MigrationEventKind.Completed, migrated.Kind);
        Assert.Equal(destination, driver.Client.CurrentServer);
        driver.RunUntil(() => cluster.Servers[1].MigratedIn > migratedInBefore, Patience, "the destination's application to resume the connection");
    }
}

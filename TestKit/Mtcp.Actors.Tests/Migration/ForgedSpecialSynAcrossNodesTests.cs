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
/// RST; the client's next, genuine special SYN migrates the connection. The client is the sans-IO
/// <see cref="MtcpClientConnection"/> driven over the in-memory fabric, so that the test can alter what it sends.
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
        var driver = new ClientDriver(transport);
        var origin = MigrationCluster.Service(Transport, 0);
        var destination = MigrationCluster.Service(Transport, 1);
        var migratedInBefore = cluster.Servers[1].MigratedIn;

        driver.Open(origin, localPort: 41000);
        driver.RunUntil(() => driver.Client.State == TcpState.Established && driver.Client.CanMigrate, Patience, "the handshake with the origin");

        driver.AlterMigratedConnection = true;
        driver.Client.BeginMigration(driver.Now, destination, new SeqNumber(0x1000), localPort: 41001);
        var refused = driver.RunUntilMigrationEnds(Patience);
        output.WriteLine($"altered special SYN: {refused.Kind} {refused.Detail}");
        Assert.Equal(MigrationEventKind.Failed, refused.Kind);
        Assert.Equal(origin, driver.Client.CurrentServer);

        // Tests of other classes may refuse forged requests at the same time: this one's refusal is among them.
        Assert.Contains("Forged", authFailures.Tags);

        driver.AlterMigratedConnection = false;
        driver.Client.BeginMigration(driver.Now, destination, new SeqNumber(0x2000), localPort: 41002);
        var migrated = driver.RunUntilMigrationEnds(Patience);
        Assert.Equal(MigrationEventKind.Completed, migrated.Kind);
        Assert.Equal(destination, driver.Client.CurrentServer);
        driver.RunUntil(() => cluster.Servers[1].MigratedIn > migratedInBefore, Patience, "the destination's application to resume the connection");
    }

    /// <summary>Drives a sans-IO client over one fabric endpoint in real time, optionally altering its special SYNs.</summary>
    private sealed class ClientDriver(InMemoryPacketTransport transport)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly byte[] _payload = new byte[InMemoryPacketFabric.MaxSegmentLength];
        private readonly byte[] _segment = new byte[InMemoryPacketFabric.MaxSegmentLength];
        private readonly byte[] _received = new byte[InMemoryPacketFabric.MaxSegmentLength];

        public MtcpClientConnection Client { get; private set; } = null!;

        /// <summary>Flip a bit of the MIGRATED_CONN authenticator of every special SYN sent.</summary>
        public bool AlterMigratedConnection { get; set; }

        public Instant Now => new(_clock.Elapsed.Ticks / TimeSpan.TicksPerMicrosecond);

        public void Open(ServerEndpoint server, ushort localPort)
        {
            Client = MtcpClientConnection.Connect(TcpConfig.Default, ClientAddress, localPort, server, new SeqNumber(0xFFFF_F000), Now);
            Flush();
        }

        public void RunUntil(Func<bool> done, TimeSpan within, string what)
        {
            var deadline = _clock.Elapsed + within;
            while (!done())
            {
                Assert.True(_clock.Elapsed < deadline, $"timed out waiting for {what}");
                Step();
            }
        }

        public MigrationEvent RunUntilMigrationEnds(TimeSpan within)
        {
            MigrationEvent ended = default;
            RunUntil(() => Client.PollMigrationEvent(out ended) && ended.Kind != MigrationEventKind.TriggerAccepted, within, "the migration to end");
            return ended;
        }

        private void Step()
        {
            if (transport.Receive(_received, TimeSpan.FromMilliseconds(10), out var received) == ReceiveOutcome.Received
                && TcpSegmentRepr.TryParse(received.SliceOf(_received), received.Source, received.Destination, ChecksumPolicy.Verify, out var header, out var payloadOffset, out _))
            {
                var segment = received.SliceOf(_received);
                Client.HandleSegment(Now, new ServerEndpoint(received.Source, header.SourcePort), header, segment[payloadOffset..]);
            }

            if (Client.PollTimeout() is { } due && due <= Now)
            {
                Client.HandleTimeout(Now);
            }

            while (Client.Read(_payload) > 0)
            {
            }

            Flush();
        }

        private void Flush()
        {
            while (Client.PollTransmit(Now, _payload, out var destination, out var header, out var payloadLength))
            {
                if (AlterMigratedConnection && header.Options.MigratedConnection is { } migrated)
                {
                    header = header with { Options = header.Options with { MigratedConnection = migrated with { Authenticator = migrated.Authenticator ^ 1 } } };
                }

                Assert.True(header.TryEmit(_segment, _payload.AsSpan(0, payloadLength), ClientAddress, destination.Address, out var written, out var error), error.ToString());
                transport.Send(destination.Address, _segment.AsSpan(0, written));
            }
        }
    }
}

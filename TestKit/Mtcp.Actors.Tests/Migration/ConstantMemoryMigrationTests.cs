using System.Diagnostics;
using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// One connection migrated back and forth between two servers many times with the shipped MSL (30 s, so nothing
/// expires during the test): what each migration leaves behind must not add up. The origin keeps a silenced 4-tuple,
/// the client a BLACKHOLE entry, and the client takes its own 4-tuples back, so memory and the 4-tuples held stay
/// flat. Two server runtimes and a client runtime in one ActorSystem on the in-memory fabric, the control connections
/// replaced by <see cref="InProcessControl"/>.
/// </summary>
[Trait("Category", "Actors")]
[Collection(HeapMeasurementCollection.Name)]
public sealed class ConstantMemoryMigrationTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7000;
    private const int Migrations = 20_000;
    private const int Warmup = 2_000;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly IpAddress ClientAddress = IpAddress.Parse("10.4.0.9");

    private readonly ITestOutputHelper _output;
    private readonly InMemoryPacketFabric _fabric = new();
    private readonly MigrationAuthenticator _authenticator = MigrationAuthenticator.FromKey("constant memory test cluster key"u8);

    public ConstantMemoryMigrationTests(ITestOutputHelper output)
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING")))
    {
        _output = output;
    }

    [Fact]
    public async Task Twenty_thousand_migrations_of_one_connection_must_leave_memory_and_port_use_flat()
    {
        using var stopping = new CancellationTokenSource();
        var (servers, services, runtimes) = await StartServersAsync("", stopping.Token);
        var clientRuntime = MtcpRuntime.Start(Sys, _fabric, NodeConfig(ClientAddress.ToString()), "client");
        await clientRuntime.EnableMigrationAsync(new MigrationSupport(_authenticator));
        using var client = new MtcpClient(clientRuntime);
        var stream = await client.ConnectAsync(new IPEndPoint(servers[0].ToIPAddress(), ServicePort));
        await EchoRoundTripAsync(stream, 0);

        long warmHeap = 0;
        var started = Stopwatch.GetTimestamp();
        for (var migration = 1; migration <= Migrations; migration++)
        {
            var report = await client.MigrateAsync(services[migration % 2]).WaitAsync(Patience);
            Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration {migration} failed: {report.FailureReason}");
            // The stream works across every hop: an echo through the current server, whose application exports its
            // state after the write, as the issue's measurement harness does.
            await EchoRoundTripAsync(stream, migration);

            if (migration == Warmup)
            {
                warmHeap = SettledHeap();
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        var endHeap = SettledHeap();
        var clientStatistics = await clientRuntime.GetStatisticsAsync();
        var serverStatistics = await Task.WhenAll(runtimes.Select(runtime => runtime.GetStatisticsAsync()));
        _output.WriteLine($"{Migrations} migrations in {elapsed.TotalSeconds:0.0} s; managed heap after {Warmup}: {warmHeap / 1024} KiB, after {Migrations}: {endHeap / 1024} KiB");
        _output.WriteLine($"client 4-tuples: {clientStatistics.Endpoints}; servers: endpoints {string.Join(", ", serverStatistics.Select(s => s.Endpoints))}, silenced 4-tuples {string.Join(", ", serverStatistics.Select(s => s.SilencedTuples))}");

        // The client holds its current 4-tuple and the one it left on the other server; each server at most one
        // connection and one silenced 4-tuple, however many migrations went by within 2 MSL.
        Assert.InRange(clientStatistics.Endpoints, 1, 2);
        Assert.All(serverStatistics, s => Assert.InRange(s.Endpoints, 0, 1));
        Assert.All(serverStatistics, s => Assert.InRange(s.SilencedTuples, 0, 1));
        // Flat: within 5 % (the issue's goal) or 2 MiB, about 110 bytes a migration; keeping what a migration left for
        // 2 MSL cost tens of KiB each.
        var allowed = Math.Max(2 * 1024 * 1024, warmHeap / 20);
        Assert.True(endHeap - warmHeap < allowed, $"the managed heap grew by {(endHeap - warmHeap) / 1024} KiB over {Migrations - Warmup} migrations");

        await stopping.CancelAsync();
        stream.Abort();
    }

    /// <summary>
    /// The 4-tuple a migration left stays routed to the client for 2 MSL (BLACKHOLE, thesis 4.2.3 step 4) and is then
    /// freed by the connection's one engine timer, which arms for it with no timer of its own: on an idle connection
    /// too, where the engine has nothing else due. A migration back within 2 MSL takes it back.
    /// </summary>
    [Fact]
    public async Task Left_tuple_must_stay_held_for_2_MSL_then_be_freed_on_an_idle_connection_and_taken_back_within_it()
    {
        var msl = TimeSpan.FromMilliseconds(300);
        var mslConfig = $"mtcp.tcp.maximum-segment-lifetime = {msl.TotalMilliseconds}ms";
        using var stopping = new CancellationTokenSource();
        var (servers, services, _) = await StartServersAsync(mslConfig, stopping.Token);
        var clientRuntime = MtcpRuntime.Start(Sys, _fabric, NodeConfig(ClientAddress.ToString(), extra: mslConfig), "client");
        await clientRuntime.EnableMigrationAsync(new MigrationSupport(_authenticator));
        using var client = new MtcpClient(clientRuntime);
        var stream = await client.ConnectAsync(new IPEndPoint(servers[0].ToIPAddress(), ServicePort));
        await EchoRoundTripAsync(stream, 0);
        Assert.Equal(1, (await clientRuntime.GetStatisticsAsync()).Endpoints);

        // Back and forth: the second migration takes back the 4-tuple the first left (if 2 MSL have not gone by).
        await MigrateAsync(client, services[1]);
        Assert.Equal(2, (await clientRuntime.GetStatisticsAsync()).Endpoints);
        await MigrateAsync(client, services[0]);
        await EchoRoundTripAsync(stream, 1);
        Assert.Equal(2, (await clientRuntime.GetStatisticsAsync()).Endpoints);

        // Then idle: the left 4-tuple is freed 2 MSL after the migration completed, not before, and only it.
        var migrating = Stopwatch.GetTimestamp();
        await MigrateAsync(client, services[1]);
        while ((await clientRuntime.GetStatisticsAsync()).Endpoints != 1)
        {
            Assert.True(Stopwatch.GetElapsedTime(migrating) < 2 * msl + Patience, $"the left 4-tuple was still held {(2 * msl + Patience).TotalSeconds:F1} s after the migration");
            await Task.Delay(20);
        }

        var freedAfter = Stopwatch.GetElapsedTime(migrating);
        Assert.True(freedAfter >= 2 * msl, $"the left 4-tuple was freed {freedAfter.TotalMilliseconds:F0} ms after the migration began, within 2 MSL ({(2 * msl).TotalMilliseconds:F0} ms)");
        await EchoRoundTripAsync(stream, 2);

        // A migration back opens the freed 4-tuple anew and holds the one it left.
        await MigrateAsync(client, services[0]);
        await EchoRoundTripAsync(stream, 3);
        Assert.Equal(2, (await clientRuntime.GetStatisticsAsync()).Endpoints);

        await stopping.CancelAsync();
        stream.Abort();
    }

    /// <summary>Two server runtimes, each the other's alternate, serving <see cref="EchoAsync"/> on <see cref="ServicePort"/>.</summary>
    private async Task<(IpAddress[] Servers, ServerEndpoint[] Services, MtcpRuntime[] Runtimes)> StartServersAsync(string extra, CancellationToken stopping)
    {
        var servers = new[] { IpAddress.Parse("10.4.0.1"), IpAddress.Parse("10.4.0.2") };
        var nodes = servers.Select((_, i) => new Address("akka.tcp", "mtcp", "127.0.0.1", 2600 + i)).ToArray();
        var services = servers.Select(address => new ServerEndpoint(address, ServicePort)).ToArray();
        var runtimes = servers.Select((address, i) => MtcpRuntime.Start(Sys, _fabric, NodeConfig(address.ToString(), extra: extra), $"server-{i}")).ToArray();
        var registries = new Dictionary<Address, IActorRef> { [nodes[0]] = runtimes[0].ConnectionRegistry, [nodes[1]] = runtimes[1].ConnectionRegistry };
        for (var i = 0; i < runtimes.Length; i++)
        {
            var control = Sys.ActorOf(InProcessControl.Props(nodes[i], registries), $"control-{i}");
            await runtimes[i].EnableMigrationAsync(new MigrationSupport(_authenticator, control));
            var other = 1 - i;
            runtimes[i].PacketActor.Tell(new AlternateServersChanged(
                new AlternateServerList([services[other]]),
                new ControlMappings([new KeyValuePair<ServerEndpoint, Address>(services[other], nodes[other])])));
            var listener = new MtcpListener(runtimes[i], ServicePort);
            await listener.StartAsync();
            _ = EchoAsync(listener, stopping);
        }

        return (servers, services, runtimes);
    }

    private static async Task MigrateAsync(MtcpClient client, ServerEndpoint destination)
    {
        var report = await client.MigrateAsync(destination).WaitAsync(Patience);
        Assert.True(report.Outcome == MigrationOutcome.Completed, $"migration to {destination} failed: {report.FailureReason}");
    }

    private static async Task EchoRoundTripAsync(MtcpStream stream, int round)
    {
        var sent = BitConverter.GetBytes(round);
        await stream.WriteAsync(sent);
        var echoed = new byte[sent.Length];
        try
        {
            await stream.ReadExactlyAsync(echoed).AsTask().WaitAsync(Patience);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no echo after migration {round}");
        }

        Assert.Equal(sent, echoed);
    }

    private static long SettledHeap()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    /// <summary>
    /// The servers' application: echoes every byte and exports its state after each write (thesis 3.3.2), so any
    /// connection, fresh or migrated in, can move on; a connection that migrated away ends its loop with EMIGRATED.
    /// </summary>
    private static async Task EchoAsync(MtcpListener listener, CancellationToken cancellation)
    {
        while (!cancellation.IsCancellationRequested)
        {
            MtcpConnection connection;
            try
            {
                connection = await listener.AcceptAsync(cancellation);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (connection.ImportState().Origin == ConnectionOrigin.New)
            {
                connection.ExportState([]);
            }

            _ = Task.Run(
                async () =>
                {
                    var buffer = new byte[256];
                    try
                    {
                        int read;
                        while ((read = await connection.Stream.ReadAsync(buffer, cancellation)) > 0)
                        {
                            await connection.Stream.WriteAsync(buffer.AsMemory(0, read), cancellation);
                            connection.ExportState([]);
                        }
                    }
                    catch (Exception e) when (e is ConnectionMigratedException or IOException or OperationCanceledException)
                    {
                        // Migrated away or closed: this server's part is over.
                    }
                },
                cancellation);
        }
    }
}

/// <summary>
/// Tests that measure the process's managed heap run alone, after the parallel ones: another test's allocations would
/// show in their figures.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HeapMeasurementCollection
{
    public const string Name = "HeapMeasurement";
}

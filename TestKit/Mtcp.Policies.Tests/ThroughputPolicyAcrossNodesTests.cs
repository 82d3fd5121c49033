using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using AppImportedState = Mtcp.Apps.ImportedState;

namespace Mtcp.Policies.Tests;

/// <summary>
/// The throughput policy over live connections (thesis 5.3.2): two server nodes, each its own ActorSystem in one
/// Akka.Cluster with an MTCP runtime on the in-memory fabric, serve the stream server, which slows down after a number
/// of chunks in each visit (<see cref="PacedStream"/>). A client whose connection is under <see cref="ClientPolicyDriver"/> must leave the
/// degrading server, on the policy's own decision, and receive the whole stream intact.
/// </summary>
[Trait("Category", "Policy")]
public sealed class ThroughputPolicyAcrossNodesTests(ITestOutputHelper output)
{
    private const long StreamLength = 2 << 20;
    private const int ChunkSize = 1024;
    private const int DegradeAfterChunks = 512;

    // 4 MB/s undegraded (a steady rate, so that only degradation moves the smoothed throughput), then 2% slower per
    // chunk, down to an eighth of the best rate.
    private static readonly DegradationCurve Curve = new(ChunkSize, 4 << 20, DegradeAfterChunks, 0.02, 8);
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Throughput_policy_must_leave_a_degrading_server_and_the_stream_must_arrive_intact()
    {
        await using var cluster = await TwoServerCluster.StartAsync();
        using var timeout = new CancellationTokenSource(TestTimeout);
        var settings = ClientPolicySettings.Create(MtcpConfig.WithFallback(ConfigurationFactory.ParseString("""
            mtcp.policies.client.throughput.sample-interval = 10ms
            mtcp.policies.client.throughput.min-observation-window = 50ms
            mtcp.policies.client.guard.hold-down = 50ms
            """)));

        using var client = new MtcpClient(cluster.ClientRuntime);
        var completed = new List<MigrationReport>();
        client.MigrationEnded += (_, report) => { lock (completed) { completed.Add(report); } };
        var started = Stopwatch.GetTimestamp();
        await client.ConnectAsync(new IPEndPoint(cluster.Services[0].Address.ToIPAddress(), cluster.Services[0].Port), timeout.Token);
        await using var driver = ClientPolicyDriver.Start(cluster.ClientSystem, client, settings, cluster.Services);
        var decisions = new List<MigrateConnection>();
        long received = 0;
        long receivedAtFirstDecision = -1;
        driver.Decided += (_, decision) =>
        {
            lock (decisions)
            {
                decisions.Add(decision);
                if (decisions.Count == 1)
                {
                    receivedAtFirstDecision = Interlocked.Read(ref received);
                }
            }
        };
        await driver.Stream.WriteAsync("GET /stream\r\n"u8.ToArray(), timeout.Token);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await driver.Stream.ReadAsync(buffer, timeout.Token)) > 0)
        {
            for (var i = 0; i < read; i++)
            {
                Assert.True(buffer[i] == StreamServer.ByteAt(received + i), $"byte {received + i} of the stream differs");
            }

            hash.AppendData(buffer, 0, read);
            Interlocked.Add(ref received, read);
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        Assert.Equal(StreamLength, received);
        Assert.Equal(ExpectedSha256(), Convert.ToHexString(hash.GetHashAndReset()));

        MigrateConnection[] decided;
        long firstDecisionAt;
        lock (decisions)
        {
            decided = [.. decisions];
            firstDecisionAt = receivedAtFirstDecision;
        }

        MigrationReport[] reports;
        lock (completed)
        {
            reports = [.. completed];
        }

        output.WriteLine($"{received} bytes in {elapsed.TotalMilliseconds:F0} ms, {reports.Length} migrations, the first decided at byte {firstDecisionAt}; decisions: {string.Join("; ", decided.Select(d => $"{d.Destination} ({d.Detail})"))}");
        Assert.NotEmpty(decided);

        // When the first decision comes is not asserted here: on a loaded host a scheduling stall is one low sample,
        // and one sample below 0.25 x max fires the 5.3.2 trigger (alpha 0.4, ratio 0.7) as degradation would.
        // "Never before the observation window or within the hold-down" is proven on scripted timings in
        // ThroughputTriggerTests and ClientMigrationPolicyTests.
        Assert.All(decided, d => Assert.Equal(MigrationReason.ThroughputDrop, d.Reason));
        Assert.Contains(reports, r => r.Outcome == MigrationOutcome.Completed && r.From == cluster.Services[0]);

        Assert.True(cluster.MigratedIn > 0, "no server resumed the stream from an imported state");

        // Whether leaving beats staying is a speed claim: the stream benchmark measures it (fig. 5.4), side by side with
        // a connection that stays; a wall-clock bound here failed on a loaded host.
    }

    private static string ExpectedSha256()
    {
        var stream = new byte[StreamLength];
        for (var i = 0; i < stream.Length; i++)
        {
            stream[i] = StreamServer.ByteAt(i);
        }

        return Convert.ToHexString(SHA256.HashData(stream));
    }

    /// <summary>Two cluster members on loopback serving <see cref="StreamServer"/> over the in-memory fabric, and a client.</summary>
    private sealed class TwoServerCluster : IAsyncDisposable
    {
        private const ushort ServicePort = 7200;
        private static readonly string ClusterKey = MigrationKey.Generate();

        private readonly InMemoryPacketFabric _fabric = new();
        private readonly CancellationTokenSource _stopping = new();
        private readonly List<ActorSystem> _servers = [];
        private readonly List<MtcpRuntime> _runtimes = [];
        private readonly List<MtcpServerNode> _nodes = [];
        private readonly StreamServer _server = new(new StreamServerOptions(StreamLength, ChunkSize, int.MaxValue, TimeSpan.Zero, TimeSpan.Zero), TimeProvider.System);
        private int _migratedIn;

        public List<ServerEndpoint> Services { get; } = [new(IpAddress.Parse("10.0.0.2"), ServicePort), new(IpAddress.Parse("10.0.0.3"), ServicePort)];

        public ActorSystem ClientSystem { get; private set; } = null!;

        public MtcpRuntime ClientRuntime { get; private set; } = null!;

        public int MigratedIn => Volatile.Read(ref _migratedIn);

        public static async Task<TwoServerCluster> StartAsync()
        {
            var cluster = new TwoServerCluster();
            try
            {
                foreach (var service in cluster.Services)
                {
                    await cluster.StartServerAsync(service);
                }

                var seed = Akka.Cluster.Cluster.Get(cluster._servers[0]).SelfAddress;
                foreach (var server in cluster._servers)
                {
                    Akka.Cluster.Cluster.Get(server).JoinSeedNodes([seed]);
                }

                using var convergence = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                foreach (var node in cluster._nodes)
                {
                    while (node.View.ServiceEndpoints < cluster.Services.Count)
                    {
                        await Task.Delay(100, convergence.Token);
                    }
                }

                cluster.ClientSystem = ActorSystem.Create("client", MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING")));
                cluster.ClientRuntime = MtcpRuntime.Start(cluster.ClientSystem, cluster._fabric, RuntimeConfig("10.0.0.5"), "mtcp");
                await cluster.ClientRuntime.EnableClientMigrationAsync();
                return cluster;
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
        }

        private static Config RuntimeConfig(string address) => ConfigurationFactory.ParseString($"""
            mtcp.runtime.transport = memory
            mtcp.runtime.local-address = "{address}"
            mtcp.tcp.maximum-segment-lifetime = 200ms
            """);

        private async Task StartServerAsync(ServerEndpoint service)
        {
            var system = ActorSystem.Create("mtcp", MtcpConfig.WithFallback(ConfigurationFactory.ParseString($"""
                akka.loglevel = WARNING
                akka.actor.provider = cluster
                akka.remote.dot-netty.tcp.hostname = 127.0.0.1
                akka.remote.dot-netty.tcp.port = 0
                akka.coordinated-shutdown.run-by-actor-system-terminate = off
                akka.cluster.run-coordinated-shutdown-when-down = off
                akka.cluster.seed-node-timeout = 500ms
                akka.cluster.retry-unsuccessful-join-after = 500ms
                akka.cluster.gossip-interval = 250ms
                akka.cluster.leader-actions-interval = 250ms
                mtcp.cluster.service-endpoints = ["{service}"]
                mtcp.migration.cluster-key = "{ClusterKey}"
                """)));
            _servers.Add(system);
            var runtime = MtcpRuntime.Start(system, _fabric, RuntimeConfig(service.Address.ToString()));
            _runtimes.Add(runtime);
            _nodes.Add(await MtcpServerNode.StartAsync(runtime));
            var listener = new MtcpListener(runtime, ServicePort);
            await listener.StartAsync();
            _ = AcceptLoopAsync(listener);
        }

        private async Task AcceptLoopAsync(MtcpListener listener)
        {
            while (!_stopping.IsCancellationRequested)
            {
                MtcpConnection connection;
                try
                {
                    connection = await listener.AcceptAsync(_stopping.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
                {
                    return;
                }

                _ = Task.Run(() => ServeAsync(connection), CancellationToken.None);
            }
        }

        private async Task ServeAsync(MtcpConnection connection)
        {
            var state = new ConnectionState(connection);
            if (state.Import().Kind == ConnectionKind.Migrated)
            {
                Interlocked.Increment(ref _migratedIn);
            }

            try
            {
                // A new pacer per visit: a server the connection comes back to starts undegraded (thesis 5.3.2).
                await using var paced = new PacedStream(connection.Stream, Curve, TimeProvider.System);
                await _server.ServeAsync(paced, state, _stopping.Token);
                await connection.DisposeAsync();
            }
            catch (ConnectionMigratedException)
            {
                // EMIGRATED: the visit is over; the connection lives on at the other server.
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // The test ended (or failed) while this server was still writing.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync();
            if (ClientRuntime is not null)
            {
                await ClientRuntime.DisposeAsync();
            }

            if (ClientSystem is not null)
            {
                await ClientSystem.Terminate();
            }

            foreach (var runtime in _runtimes)
            {
                await runtime.DisposeAsync();
            }

            foreach (var server in _servers)
            {
                await server.Terminate();
            }

            _stopping.Dispose();
        }
    }

    /// <summary>The stream server's state (the next chunk number) through the connection's ExportState/ImportState.</summary>
    private sealed class ConnectionState(MtcpConnection connection) : IConnectionState
    {
        private AppImportedState? _imported;

        public bool CanMigrate => true;

        public int LastSnapshotBytes { get; private set; }

        public AppImportedState Import()
        {
            if (_imported is null)
            {
                var imported = connection.ImportState();

                // Migrated before the first export: the read log replays the request, as for a new connection.
                _imported = imported.Origin == ConnectionOrigin.Migrated && imported.AppState.Length == StreamServer.SnapshotLength
                    ? new AppImportedState(ConnectionKind.Migrated, imported.AppState)
                    : AppImportedState.New;
            }

            return _imported.Value;
        }

        public void Export(ReadOnlySpan<byte> snapshot)
        {
            connection.ExportState(snapshot);
            LastSnapshotBytes = snapshot.Length;
        }
    }
}

using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.Hosting;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Transports;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Bench;

internal sealed record MigrationOptions(int Migrations, int[] StateSizes, string Transport, TimeSpan WarmUp);

/// <summary>
/// The first state size with mutual TLS on Akka.Remote (docs/threat-model.md) against without, on two pairs of nodes
/// that run side by side and are measured in alternating rounds, so that drift in the machine's load biases neither:
/// the medians over the rounds of each round's p50, in microseconds, and TLS over plain.
/// </summary>
internal sealed record TlsComparison(int StateBytes, int Rounds, double ClientWaitP50Us, double TlsClientWaitP50Us, double ControlRttP50Us, double TlsControlRttP50Us)
{
    public double ClientWaitRatio => TlsClientWaitP50Us / ClientWaitP50Us;

    public double ControlRttRatio => TlsControlRttP50Us / ControlRttP50Us;
}

/// <summary>One state size's row: medians and 99th percentiles in microseconds, and the ratios of thesis fig. 5.2.</summary>
internal sealed record MigrationRow(
    int StateBytes,
    int Migrations,
    double ClientWaitP50Us,
    double ClientWaitP99Us,
    double StateWaitP50Us,
    double StateWaitP99Us,
    double PrepareP50Us,
    double PrepareP99Us,
    double ReinstateP50Us,
    double ReinstateP99Us,
    double HandshakeP50Us,
    double HandshakeP99Us,
    double ControlRttP50Us,
    double ControlRttP99Us,
    double ClientWaitOverHandshake,
    double ClientWaitOverHandshakePlusControlRtt,
    long StateReplyBytesP50)
{
    /// <summary>Encode+decode of this size's state reply with the control-message serializer (id 253), median.</summary>
    public double SerializerWireP50Us { get; init; } = double.NaN;

    /// <summary>The same with Hyperion, median.</summary>
    public double SerializerHyperionP50Us { get; init; } = double.NaN;

    public double SerializerHyperionOverWire { get; init; } = double.NaN;

    /// <summary>Garbage collections in this process (all three nodes) during the measured migrations: the usual cause of the p99.</summary>
    public int Gen0Collections { get; init; }

    public int Gen2Collections { get; init; }
}

/// <summary>
/// Thesis fig. 5.2 on the actor runtime: two server nodes (separate ActorSystems in one Akka.Cluster on loopback)
/// and a client node in this process. For each application state size, a connection migrates back and forth
/// between the servers; the client's wait (special SYN to SYN+ACK), the destination's wait for the state reply and
/// the time to prepare and reinstate are taken from the <c>Mtcp.Migration</c> meter. In the same run, per size: fresh
/// handshakes (SYN to SYN+ACK, measured the same way) and control-connection round trips (a state request for an
/// unknown connection, answered with a reject, between the two nodes). Before any of it, the whole workload runs
/// unmeasured for a while, so that the JIT has replaced the first-tier code of every path (tiered compilation promotes
/// a method only after 30 calls and a quiet spell, which a few hundred migrations do not give): on a loaded 2-core host
/// the client wait at 0 KB measured ~700 us after 3 s of warm-up and ~320 us after 10 s, the default. Last, the serializer
/// comparison: each state size's reply through the control-message serializer and through Hyperion.
/// </summary>
internal static class MigrationBenchmark
{
    private const ushort ServicePort = 9100;
    private const int WarmUp = 30;
    private const int TlsRounds = 5;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(MigrationOptions options, CancellationToken cancellationToken)
    {
        if (options.Migrations <= 0 || options.StateSizes.Length == 0 || options.StateSizes.Any(s => s < 0) || options.WarmUp < TimeSpan.Zero)
        {
            await Console.Error.WriteLineAsync("--migrations must be positive, --state-sizes and --warm-up non-negative");
            return 2;
        }

        Console.WriteLine($"migration: {options.Migrations} migrations per state size over {options.Transport}, sizes [{string.Join(", ", options.StateSizes)}] bytes");
        using var samples = new MeterSamples();
        var rows = new List<MigrationRow>();
        var serializers = new List<SerializerRow>();
        TlsComparison comparison;
        await using (var bench = await Testbed.StartAsync(options.Transport, tls: false, cancellationToken))
        {
            await WarmUpAsync(bench, samples, options.WarmUp, cancellationToken);
            foreach (var size in options.StateSizes)
            {
                rows.Add(await MeasureAsync(bench, samples, size, options.Migrations, cancellationToken));
                var row = rows[^1];
                Console.WriteLine(System.FormattableString.Invariant(
                    $"{size,6} B: client wait p50 {row.ClientWaitP50Us,8:F0} us p99 {row.ClientWaitP99Us,8:F0} us; state wait p50 {row.StateWaitP50Us,7:F0} us; prepare {row.PrepareP50Us,5:F0} us; reinstate {row.ReinstateP50Us,5:F0} us; handshake {row.HandshakeP50Us,6:F0} us; control RTT {row.ControlRttP50Us,6:F0} us; GCs gen0 {row.Gen0Collections} gen2 {row.Gen2Collections}"));
            }

            SerializerComparison.Measure(bench.ClientSystem, options.StateSizes[0]);
            foreach (var size in options.StateSizes.Append(SerializerComparison.ChunkedStateBytes).Distinct())
            {
                var row = SerializerComparison.Measure(bench.ClientSystem, size);
                serializers.Add(row);
                Console.WriteLine(System.FormattableString.Invariant(
                    $"{size,8} B state reply encode+decode: control serializer {row.ReplyWireP50Us,7:F1} us, Hyperion {row.ReplyHyperionP50Us,7:F1} us ({row.ReplyHyperionOverWire:F1}x); as transferred in {row.TransferMessages} message(s): {row.TransferWireP50Us,7:F1} us vs {row.TransferHyperionP50Us,7:F1} us ({row.TransferHyperionOverWire:F1}x)"));
            }

            rows = [.. rows.Select(r => serializers.Find(c => c.StateBytes == r.StateBytes) is { } c
                ? r with { SerializerWireP50Us = c.ReplyWireP50Us, SerializerHyperionP50Us = c.ReplyHyperionP50Us, SerializerHyperionOverWire = c.ReplyHyperionOverWire }
                : r)];

            // The first size again, alternating round by round between these nodes and a second pair whose control
            // plane runs mutual TLS (certificates of a CA made for this run): what TLS adds to the control RTT and to
            // the client's wait.
            var size0 = options.StateSizes[0];
            await using var tlsBench = await Testbed.StartAsync(options.Transport, tls: true, cancellationToken);
            await WarmUpAsync(tlsBench, samples, options.WarmUp, cancellationToken);
            var plainRounds = new List<MigrationRow>();
            var tlsRounds = new List<MigrationRow>();
            for (var round = 0; round < TlsRounds; round++)
            {
                plainRounds.Add(await MeasureAsync(bench, samples, size0, options.Migrations, cancellationToken));
                tlsRounds.Add(await MeasureAsync(tlsBench, samples, size0, options.Migrations, cancellationToken));
            }

            comparison = new TlsComparison(
                size0,
                TlsRounds,
                Statistics.Percentile(plainRounds.ConvertAll(r => r.ClientWaitP50Us), 0.5),
                Statistics.Percentile(tlsRounds.ConvertAll(r => r.ClientWaitP50Us), 0.5),
                Statistics.Percentile(plainRounds.ConvertAll(r => r.ControlRttP50Us), 0.5),
                Statistics.Percentile(tlsRounds.ConvertAll(r => r.ControlRttP50Us), 0.5));
        }

        Console.WriteLine(System.FormattableString.Invariant(
            $"{comparison.StateBytes,6} B with mutual TLS on the control plane, median of {comparison.Rounds} alternating rounds: client wait p50 {comparison.TlsClientWaitP50Us,8:F0} us against {comparison.ClientWaitP50Us:F0} us ({comparison.ClientWaitRatio:F2}x); control RTT p50 {comparison.TlsControlRttP50Us,6:F0} us against {comparison.ControlRttP50Us:F0} us ({comparison.ControlRttRatio:F2}x)"));
        await WriteArtifactsAsync(options, rows, serializers, comparison);
        return 0;
    }

    /// <summary>Runs the measured workload (migrations, fresh handshakes, control round trips) unmeasured for <paramref name="duration"/>.</summary>
    private static async Task WarmUpAsync(Testbed bench, MeterSamples samples, TimeSpan duration, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started) < duration)
        {
            await MeasureAsync(bench, samples, 0, WarmUp, cancellationToken);
        }

        samples.Clear();
    }

    private static async Task<MigrationRow> MeasureAsync(Testbed bench, MeterSamples samples, int stateBytes, int migrations, CancellationToken cancellationToken)
    {
        using var client = new MtcpClient(bench.ClientRuntime);
        var stream = await client.ConnectAsync(bench.EndPoint(0), cancellationToken);
        var header = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, stateBytes);
        await stream.WriteAsync(header, cancellationToken);
        var ready = new byte[1];
        await stream.ReadExactlyAsync(ready, cancellationToken);

        var clientWaits = new List<double>();
        var server = 0;
        var gen0 = 0;
        var gen2 = 0;
        for (var i = 0; i < WarmUp + migrations; i++)
        {
            if (i == WarmUp)
            {
                samples.Clear();
                gen0 = GC.CollectionCount(0);
                gen2 = GC.CollectionCount(2);
            }

            server = 1 - server;
            var report = await client.MigrateAsync(bench.Service(server), cancellationToken);
            if (report.Outcome != MigrationOutcome.Completed)
            {
                throw new InvalidOperationException($"migration {i} to {report.To} failed: {report.FailureReason}");
            }

            if (i >= WarmUp)
            {
                clientWaits.Add(report.Duration.TotalMicroseconds);
            }
        }

        gen0 = GC.CollectionCount(0) - gen0;
        gen2 = GC.CollectionCount(2) - gen2;
        var stateWaits = samples.Take("mtcp.migration.state_request.duration");
        var prepares = samples.Take("mtcp.migration.prepare.duration");
        var reinstates = samples.Take("mtcp.migration.reinstate.duration");
        var stateReplyBytes = samples.Take("mtcp.migration.state.size");
        await stream.DisposeAsync();

        // Fresh handshakes and control round trips, measured in the same run for the ratios.
        samples.Clear();
        for (var i = 0; i < migrations; i++)
        {
            using var fresh = new MtcpClient(bench.ClientRuntime);
            var freshStream = await fresh.ConnectAsync(bench.EndPoint(0), cancellationToken);
            freshStream.Abort();
        }

        var handshakes = samples.Take("mtcp.connection.handshake.duration");
        var controlRtts = await bench.ControlRoundTripsAsync(migrations, cancellationToken);
        var clientWaitP50 = Statistics.Percentile(clientWaits, 0.5);
        var handshakeP50 = Statistics.Percentile(handshakes, 0.5) * 1e6;
        var controlRttP50 = Statistics.Percentile(controlRtts, 0.5);
        return new MigrationRow(
            stateBytes,
            clientWaits.Count,
            clientWaitP50,
            Statistics.Percentile(clientWaits, 0.99),
            Statistics.Percentile(stateWaits, 0.5) * 1e6,
            Statistics.Percentile(stateWaits, 0.99) * 1e6,
            Statistics.Percentile(prepares, 0.5) * 1e6,
            Statistics.Percentile(prepares, 0.99) * 1e6,
            Statistics.Percentile(reinstates, 0.5) * 1e6,
            Statistics.Percentile(reinstates, 0.99) * 1e6,
            handshakeP50,
            Statistics.Percentile(handshakes, 0.99) * 1e6,
            controlRttP50,
            Statistics.Percentile(controlRtts, 0.99),
            clientWaitP50 / handshakeP50,
            clientWaitP50 / (handshakeP50 + controlRttP50),
            (long)Statistics.Percentile(stateReplyBytes, 0.5))
        {
            Gen0Collections = gen0,
            Gen2Collections = gen2,
        };
    }

    private static async Task WriteArtifactsAsync(MigrationOptions options, List<MigrationRow> rows, List<SerializerRow> serializers, TlsComparison tls)
    {
        var directory = Path.Combine(BenchPaths.RepositoryRoot(), "artifacts", "bench");
        Directory.CreateDirectory(directory);
        var json = JsonSerializer.Serialize(
            new { transport = options.Transport, migrationsPerSize = options.Migrations, warmUpMigrations = WarmUp, warmUpSeconds = options.WarmUp.TotalSeconds, rows, serializerComparison = serializers, controlPlaneTls = tls },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        await File.WriteAllTextAsync(Path.Combine(directory, "migration.json"), json);

        var table = new System.Text.StringBuilder();
        table.AppendLine("# Migration latency (thesis fig. 5.2) on the actor runtime");
        table.AppendLine();
        table.AppendLine($"Transport {options.Transport}; two server nodes (ActorSystems in one Akka.Cluster over Akka.Remote on loopback) and a client node in one process;");
        table.AppendLine($"{options.Migrations} migrations per state size after {options.WarmUp.TotalSeconds:F0} s of the whole workload and {WarmUp} migrations unmeasured, back and forth between the servers. Times in microseconds.");
        table.AppendLine("Client wait: special SYN to the new server's SYN+ACK (the switch). State wait: destination's request to reply. Handshake: a fresh");
        table.AppendLine("connection's SYN to SYN+ACK, same client. Control RTT: a state request answered by a reject between the two nodes.");
        table.AppendLine();
        table.AppendLine(System.FormattableString.Invariant(
            $"With mutual TLS on the control plane (a second pair of nodes beside these, measured in {tls.Rounds} rounds alternating with them; state {tls.StateBytes} B; medians of the rounds' p50s): client wait p50 {tls.TlsClientWaitP50Us:F0} us against {tls.ClientWaitP50Us:F0} us without ({tls.ClientWaitRatio:F2}x), control RTT p50 {tls.TlsControlRttP50Us:F0} us against {tls.ControlRttP50Us:F0} us ({tls.ControlRttRatio:F2}x)."));
        table.AppendLine();
        table.AppendLine("| state | reply bytes | client wait p50 | p99 | state wait p50 | p99 | prepare p50 | reinstate p50 | handshake p50 | control RTT p50 | wait / handshake | wait / (handshake + RTT) |");
        table.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            table.AppendLine(System.FormattableString.Invariant(
                $"| {r.StateBytes} | {r.StateReplyBytesP50} | {r.ClientWaitP50Us:F0} | {r.ClientWaitP99Us:F0} | {r.StateWaitP50Us:F0} | {r.StateWaitP99Us:F0} | {r.PrepareP50Us:F1} | {r.ReinstateP50Us:F1} | {r.HandshakeP50Us:F0} | {r.ControlRttP50Us:F0} | {r.ClientWaitOverHandshake:F2} | {r.ClientWaitOverHandshakePlusControlRtt:F2} |"));
        }

        table.AppendLine();
        table.AppendLine("## State reply serializers");
        table.AppendLine();
        table.AppendLine("Encode+decode of one state reply (an established connection's, with the application state given), median in microseconds, with the");
        table.AppendLine("control-message serializer (SerializerWithStringManifest writing the Mtcp.Wire.Control encoding, id 253) and with Hyperion, sample by");
        table.AppendLine("sample alternately in this process. \"As transferred\": the message(s) the origin sends, chunked above mtcp.control.reply-chunk-size.");
        table.AppendLine();
        table.AppendLine("| state | reply bytes | control serializer | Hyperion | Hyperion / control | messages | as transferred: control | Hyperion | Hyperion / control |");
        table.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var c in serializers)
        {
            table.AppendLine(System.FormattableString.Invariant(
                $"| {c.StateBytes} | {c.ReplyBytes} | {c.ReplyWireP50Us:F1} | {c.ReplyHyperionP50Us:F1} | {c.ReplyHyperionOverWire:F1} | {c.TransferMessages} | {c.TransferWireP50Us:F1} | {c.TransferHyperionP50Us:F1} | {c.TransferHyperionOverWire:F1} |"));
        }

        await File.WriteAllTextAsync(Path.Combine(directory, "migration.md"), table.ToString());
        Console.WriteLine();
        Console.Write(table);
        Console.WriteLine($"written to {directory}");
    }

    /// <summary>Collects the <c>Mtcp.Migration</c> meter's histogram measurements by instrument name.</summary>
    private sealed class MeterSamples : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, List<double>> _values = [];

        public MeterSamples()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == MigrationMetrics.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => Add(instrument.Name, value));
            _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => Add(instrument.Name, value));
            _listener.Start();
        }

        public void Clear()
        {
            lock (_values)
            {
                _values.Clear();
            }
        }

        public List<double> Take(string name)
        {
            lock (_values)
            {
                return _values.Remove(name, out var values) ? values : [];
            }
        }

        public void Dispose() => _listener.Dispose();

        private void Add(string name, double value)
        {
            lock (_values)
            {
                if (!_values.TryGetValue(name, out var values))
                {
                    values = [];
                    _values[name] = values;
                }

                values.Add(value);
            }
        }
    }

    /// <summary>The two server nodes, their applications, and the client node.</summary>
    private sealed class Testbed : IAsyncDisposable
    {
        private static readonly byte[] ServiceKey = "mtcp migration benchmark service key"u8.ToArray();
        private readonly List<(ActorSystem System, MtcpRuntime Runtime, IActorRef Control, MtcpListener Listener, Task Accepting)> _servers = [];
        private readonly CancellationTokenSource _stopping = new();
        private readonly InMemoryPacketFabric? _fabric;
        private string? _certificates;
        private readonly string _transport;

        private readonly int _firstNode;

        private Testbed(string transport, int firstNode)
        {
            _transport = transport;
            _firstNode = firstNode;
            _fabric = transport == "memory" ? new InMemoryPacketFabric() : null;
        }

        public ActorSystem ClientSystem { get; private set; } = null!;

        public MtcpRuntime ClientRuntime { get; private set; } = null!;

        public ServerEndpoint Service(int server) => new(IpAddress.Parse($"127.0.0.{_firstNode + server}"), ServicePort);

        public IPEndPoint EndPoint(int server) => new(Service(server).Address.ToIPAddress(), ServicePort);

        /// <param name="tls">
        /// the servers' control plane runs mutual TLS with certificates of a CA made for this test-bed. Its nodes take
        /// other addresses than those of a test-bed without, so that the two can run side by side.
        /// </param>
        public static async Task<Testbed> StartAsync(string transport, bool tls, CancellationToken cancellationToken)
        {
            var bench = new Testbed(transport, firstNode: tls ? 12 : 2);
            var authenticator = MigrationAuthenticator.FromServiceKey(ServiceKey);
            var baseConfig = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "HOCON", "bench-migration.conf")));
            var certificates = tls ? Directory.CreateTempSubdirectory("mtcp-bench-certificates-").FullName : null;
            if (certificates is not null)
            {
                bench._certificates = certificates;
                ClusterCertificates.CreateAuthority(certificates, "mtcp-bench-ca", TimeSpan.FromDays(1));
            }

            for (var i = 0; i < 2; i++)
            {
                var security = certificates is null
                    ? "mtcp.security.insecure-control-plane = on"
                    : ClusterCertificates.SecurityConfig(certificates, ClusterCertificates.IssueNode(certificates, $"server{i + 1}", ["127.0.0.1"], certificates, TimeSpan.FromDays(1)));
                var config = MtcpConfig.WithFallback(ConfigurationFactory.ParseString($"mtcp.cluster.service-endpoints = [\"{bench.Service(i)}\"]\n{security}").WithFallback(baseConfig));
                var system = ActorSystem.Create("mtcp", ControlPlaneSecurity.Read(config).SystemSetup(config));
                var registry = system.ActorOf(ConnectionRegistry.Props(), "mtcp-registry");
                var runtime = MtcpRuntime.Start(system, bench._fabric, bench.NodeConfig(bench._firstNode + i), "mtcp", registry);
                var control = system.StartControlConnectionManager(registry);
                var directory = system.StartServiceDirectory();
                await runtime.EnableMigrationAsync(new MigrationSupport(authenticator, control, directory), cancellationToken);
                var listener = new MtcpListener(runtime, ServicePort);
                await listener.StartAsync(cancellationToken);
                bench._servers.Add((system, runtime, control, listener, AcceptLoopAsync(listener, bench._stopping.Token)));
            }

            var seed = Cluster.Get(bench._servers[0].System).SelfAddress;
            foreach (var server in bench._servers)
            {
                Cluster.Get(server.System).JoinSeedNodes([seed]);
            }

            foreach (var server in bench._servers)
            {
                await AwaitMappingsAsync(server.System, 2, cancellationToken);
            }

            bench.ClientSystem = ActorSystem.Create("client", MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(baseConfig)));
            bench.ClientRuntime = MtcpRuntime.Start(bench.ClientSystem, bench._fabric, bench.NodeConfig(bench._firstNode + 3), "mtcp");
            await bench.ClientRuntime.EnableMigrationAsync(new MigrationSupport(authenticator), cancellationToken);
            return bench;
        }

        /// <summary>Round trips from node 2's control connection manager to node 1's: a request for no connection, answered by a reject.</summary>
        public async Task<List<double>> ControlRoundTripsAsync(int count, CancellationToken cancellationToken)
        {
            var peer = Cluster.Get(_servers[0].System).SelfAddress;
            var control = _servers[1].Control;
            var unknown = new ConnectionId(IpAddress.Parse("127.0.0.9"), 1, Service(0).Address, ServicePort);
            var requester = new ConnectionId(IpAddress.Parse("127.0.0.9"), 1, Service(1).Address, ServicePort);
            var ids = new ControlRequestIds((ulong)Random.Shared.NextInt64());
            var rtts = new List<double>();
            for (var i = 0; i < WarmUp + count; i++)
            {
                var request = new StateRequest(ids.Next(), unknown, requester, new SeqNumber(0), new byte[8]);
                var started = Stopwatch.GetTimestamp();
                var answer = await control.Ask<object>(replyTo => new RequestState(peer, request, replyTo), Patience, cancellationToken);
                var elapsed = Stopwatch.GetElapsedTime(started);
                if (answer is not StateReject)
                {
                    throw new InvalidOperationException($"the control round trip got {answer}");
                }

                if (i >= WarmUp)
                {
                    rtts.Add(elapsed.TotalMicroseconds);
                }
            }

            return rtts;
        }

        private Config NodeConfig(int node) => ConfigurationFactory.ParseString($"mtcp.runtime.transport = {_transport}\nmtcp.runtime.local-address = \"127.0.0.{node}\"");

        private static async Task AwaitMappingsAsync(ActorSystem system, int endpoints, CancellationToken cancellationToken)
        {
            var directory = system.ActorSelection("/user/" + ServiceDirectory.ActorName);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Patience);
            while (true)
            {
                var view = await directory.Ask<AlternateServersChanged>(GetAlternateServers.Instance, Patience, timeout.Token);
                if (view.ControlMappings.Count == endpoints)
                {
                    return;
                }

                await Task.Delay(100, timeout.Token);
            }
        }

        /// <summary>
        /// The server application: a new connection reads the state size, exports a state of that many bytes and
        /// answers one byte; a migrated one resumes from the imported state (which stays the restart point). Each
        /// then holds the connection until it migrates away or closes.
        /// </summary>
        private static async Task AcceptLoopAsync(MtcpListener listener, CancellationToken stopping)
        {
            while (!stopping.IsCancellationRequested)
            {
                MtcpConnection connection;
                try
                {
                    connection = await listener.AcceptAsync(stopping);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
                {
                    return;
                }

                _ = Task.Run(() => ServeAsync(connection), CancellationToken.None);
            }
        }

        private static async Task ServeAsync(MtcpConnection connection)
        {
            try
            {
                if (connection.ImportState().Origin == ConnectionOrigin.New)
                {
                    var header = new byte[4];
                    await connection.Stream.ReadExactlyAsync(header);
                    connection.ExportState(new byte[System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header)]);
                    await connection.Stream.WriteAsync(new byte[] { 1 });
                }

                var buffer = new byte[16];
                while (await connection.Stream.ReadAsync(buffer) > 0)
                {
                }

                await connection.DisposeAsync();
            }
            catch (Exception e) when (e is ConnectionMigratedException or IOException)
            {
                // Migrated away, or the client aborted: nothing more to serve.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync();
            if (ClientRuntime is not null)
            {
                await ClientRuntime.DisposeAsync();
                await ClientSystem.Terminate();
            }

            foreach (var server in _servers)
            {
                await server.Listener.DisposeAsync();
                await server.Runtime.DisposeAsync();
                await server.System.Terminate();
            }

            _stopping.Dispose();
            if (_certificates is not null)
            {
                Directory.Delete(_certificates, recursive: true);
            }
        }
    }
}

/// <summary>Where the benchmarks write their artifacts.</summary>
internal static class BenchPaths
{
    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(Directory.GetCurrentDirectory()); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MtcpActors.sln")))
            {
                return directory.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }
}

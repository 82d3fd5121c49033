using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Actors.Tests.Migration;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Property;

/// <summary>
/// Exactly-once across random migration schedules, through the runtime that ships: three server nodes in one
/// Akka.Cluster and a client node, every one of them over a <see cref="LossyPacketTransport"/> on the in-memory
/// fabric, running the services, client readers and invariants of the sans-IO property test (stream, file and
/// request/response services exporting every k units; full-speed, slow and stalling readers; loss up to 20%,
/// duplication up to 5%, reordering up to 10%; up to 10 migrations per session). The cluster starts once; many
/// schedules run on it at a time, each on its own client runtime (its own address, so its own links and
/// conditions) with its own seed. At the end no endpoint, registry entry or dead letter to an endpoint is left.
/// </summary>
/// <remarks>
/// MTCP_RUNTIME_SEED=n runs schedule n alone (with MTCP_RUNTIME_SCHEDULES, that many from n);
/// MTCP_RUNTIME_SCHEDULES sets the count (default 300); MTCP_SOAK=1 runs 10,000; MTCP_RUNTIME_CONCURRENCY sets how
/// many run at a time (default 16). A seed replays a schedule's random choices (service, sizes, conditions, reader,
/// migration moments and targets, and each link's packet fates for the same packet sequence); real time decides
/// the rest.
/// </remarks>
[Trait("Category", "RuntimeProperty")]
[Collection(MultiNodeCollection.Name)]
public sealed class RuntimeMigrationPropertyTests(ITestOutputHelper output)
{
    private const int DefaultSchedules = 300;
    private const int SoakSchedules = 10_000;
    private const int DefaultConcurrency = 16;

    /// <summary>
    /// Timers of every test runtime, as short as loss and migration allow: a lost SYN costs 200 ms, not 1 s; 2 MSL is
    /// 400 ms, so that endpoints are gone soon after the end. SYNs retry 20 times (a migration or open on a 20% lossy
    /// path must not give up), and the windows are the sans-IO test's 64 KiB, so that slow readers close them.
    /// </summary>
    private const string TcpTimers = """
        mtcp.tcp.maximum-segment-lifetime = 200ms
        mtcp.tcp.initial-rto = 200ms
        mtcp.tcp.min-rto = 30ms
        mtcp.tcp.max-rto = 2s
        mtcp.tcp.connect-timeout = 30s
        mtcp.tcp.max-syn-retransmissions = 20
        mtcp.tcp.max-retransmissions = 40
        mtcp.tcp.send-buffer-size = 64KiB
        mtcp.tcp.receive-buffer-size = 64KiB
        """;

    /// <summary>
    /// Both cores are saturated for minutes: members must not take each other for dead (and be downed) because a
    /// heartbeat was late; this test is about migration, not failure detection. Logs go to the recorder only.
    /// </summary>
    private const string QuietBusyNodes = """
        akka.loglevel = WARNING
        akka.loggers = ["Mtcp.Actors.Tests.Property.SilentLogger, Mtcp.Actors.Tests"]
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 20s
        akka.cluster.split-brain-resolver.stable-after = 30s
        """;

    [Fact]
    public async Task Random_migration_schedules_through_the_runtime_must_deliver_exactly_the_reference_stream_and_leave_nothing_behind()
    {
        var (firstSeed, schedules) = ScheduleRange();
        var concurrency = Math.Min(schedules, EnvironmentInt("MTCP_RUNTIME_CONCURRENCY") ?? DefaultConcurrency);
        var stopwatch = Stopwatch.StartNew();
        var transports = new ConcurrentDictionary<IpAddress, LossyPacketTransport>();
        var deadLetters = new ConcurrentQueue<RecordedEvent>();
        var logs = new ConcurrentQueue<RecordedEvent>();
        await using var cluster = await MigrationCluster.StartAsync(new MigrationClusterOptions
        {
            Transports = [TestTransport.Memory],
            ServerExtra = TcpTimers + "\n" + QuietBusyNodes,
            ClientExtra = TcpTimers,
            ClientSystemExtra = QuietBusyNodes,
            WrapMemoryTransport = endpoint =>
            {
                var lossy = new LossyPacketTransport(endpoint, LinkConditions.Perfect with { Latency = TimeSpan.FromMilliseconds(1) }, seed: 0);
                transports[endpoint.LocalAddress] = lossy;
                return lossy;
            },
        });
        var started = stopwatch.Elapsed;
        foreach (var server in cluster.Servers)
        {
            RuntimeEvents.Record(server.System, $"S{server.Index + 1}", deadLetters, logs);
        }

        RuntimeEvents.Record(cluster.ClientSystem, "client", deadLetters, logs);
        var run = new PropertyRun(cluster, transports, logs);
        foreach (var server in cluster.Servers)
        {
            server.Accepted = (_, connection) => run.Accepted[connection.RemoteEndPoint] = true;
        }

        using var refused = new MigrationMeasurements("mtcp.migration.refused");
        var nextSeed = firstSeed - 1;
        var lastSeed = firstSeed + schedules - 1;
        var slots = Enumerable.Range(1, concurrency).Select(async slot =>
        {
            var lane = await run.StartLaneAsync(slot);
            int seed;
            while ((seed = Interlocked.Increment(ref nextSeed)) <= lastSeed)
            {
                lane = await run.RunAsync(seed, lane);
            }
        });
        await Task.WhenAll(slots);
        var ran = stopwatch.Elapsed - started;

        // Everything closed: every endpoint and registry entry must be gone within 2 MSL and a few retransmissions.
        var leftovers = await run.AwaitEverythingGoneAsync(ScheduleBounds.Drain);
        var totals = run.Totals;
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{schedules} schedules (seeds {firstSeed}-{lastSeed}, {concurrency} at a time) in {ran.TotalSeconds:F1} s after a cluster start of {started.TotalSeconds:F1} s: "
            + $"{totals.Bytes / 1024} KiB checked; {totals.MigrationsStarted} migrations started, {totals.MigrationsCompleted} completed, "
            + $"{totals.MigrationsFailed} failed and left the connection on its server"));
        output.WriteLine(totals.DescribeKinds());
        output.WriteLine("services: " + Describe(totals.Services) + "; readers: " + Describe(totals.Readers));
        output.WriteLine("client-side migration failures: " + Describe(totals.FailureReasons));
        output.WriteLine("failed / started migrations by the links' loss rate: " + totals.DescribeByLoss());
        output.WriteLine("migration requests the client refused: " + Describe(totals.ClientRefusals));
        foreach (var example in totals.FailedMigrationExamples)
        {
            output.WriteLine("a schedule with a failed migration: " + example);
        }

        output.WriteLine($"refusals at destinations ({refused.Sum}): " + Describe(run.RefusalReasons()));
        output.WriteLine("servers: " + string.Join("; ", cluster.Servers.Select(s => $"S{s.Index + 1} migrated in {s.MigratedIn}, away {s.MigratedAway}")));
        output.WriteLine("links: " + run.LinkTotals());
        output.WriteLine("packet actors: " + await run.PacketTotalsAsync());
        foreach (var failure in run.Failures.OrderBy(f => f.Seed))
        {
            output.WriteLine($"FAILED seed {failure.Seed} (replay with MTCP_RUNTIME_SEED={failure.Seed}): {failure.Description}");
        }

        var endpointDeadLetters = deadLetters.ToArray();
        output.WriteLine($"dead letters to endpoint actors: {endpointDeadLetters.Length} ("
            + Describe(endpointDeadLetters.CountBy(l => $"{(l.System == "client" ? "client" : "server")} {DeadLetterKind(l)}").ToDictionary()) + ")");
        foreach (var letter in endpointDeadLetters.Take(50))
        {
            output.WriteLine($"dead letter on {letter.System} to {letter.Recipient} ({run.SeedsOf(letter.Recipient, letter.Timestamp)}): {letter.Kind} {letter.Text}");
        }

        foreach (var leftover in leftovers)
        {
            output.WriteLine("left behind: " + leftover);
        }

        var applicationFailures = cluster.Servers.SelectMany(s => s.ApplicationFailures.Select(f => $"S{s.Index + 1}: {f}")).ToList();
        foreach (var failure in applicationFailures)
        {
            output.WriteLine("server application: " + failure);
        }

        Assert.True(run.Failures.IsEmpty, $"{run.Failures.Count} of {schedules} schedules failed, seeds {string.Join(", ", run.Failures.Select(f => f.Seed).Order())}: {run.Failures.MinBy(f => f.Seed)?.Description}");
        Assert.True(applicationFailures.Count == 0, $"server applications failed: {string.Join("; ", applicationFailures.Take(5))}");
        Assert.True(leftovers.Count == 0, $"left behind after every connection closed: {string.Join("; ", leftovers.Take(5))}");
        Assert.True(endpointDeadLetters.Length == 0, $"{endpointDeadLetters.Length} dead letters to endpoint actors, first: {endpointDeadLetters.FirstOrDefault()}");
        Assert.True(totals.MigrationsCompleted > 0, "the schedules must exercise migrations");
        if (schedules >= DefaultSchedules)
        {
            Assert.True(totals.DuringHandshake.Started > 0 && totals.DuringStateTransfer > 0 && totals.BackToAServerLeft.Started > 0, "every kind of moment must be hit: " + totals.DescribeKinds());
        }
    }

    private static (int First, int Count) ScheduleRange()
    {
        var count = Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? SoakSchedules : DefaultSchedules;
        if (EnvironmentInt("MTCP_RUNTIME_SEED") is { } seed)
        {
            return (seed, EnvironmentInt("MTCP_RUNTIME_SCHEDULES") ?? 1);
        }

        return (1, EnvironmentInt("MTCP_RUNTIME_SCHEDULES") ?? count);
    }

    /// <summary>The message type, and for a segment its flags: what the endpoint missed.</summary>
    private static string DeadLetterKind(RecordedEvent letter)
    {
        var flags = Regex.Match(letter.Text, @":\d+ ([A-Za-z, |]+?) seq");
        return flags.Success ? $"{letter.Kind} {flags.Groups[1].Value}" : letter.Kind;
    }

    private static int? EnvironmentInt(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static string Describe<TKey>(IReadOnlyDictionary<TKey, int> counts)
        where TKey : notnull =>
        counts.Count == 0 ? "none" : string.Join("; ", counts.OrderByDescending(p => p.Value).Select(p => $"{p.Key} x{p.Value}"));
}

/// <summary>How the client application reads (as in the sans-IO test): slow and stalling readers let the window close.</summary>
internal enum RuntimeClientReader
{
    FullSpeed,

    /// <summary>Reads for a few milliseconds, then pauses for tens: slower than the network on average.</summary>
    Slow,

    /// <summary>Reads for a while, then stops for hundreds of milliseconds: the window closes and stays closed.</summary>
    Stalling,
}

/// <summary>One schedule's random choices, all drawn from its seed in a fixed order.</summary>
internal sealed record ScheduleChoices(int Seed, ReferenceService Service, LinkConditions Conditions, int SessionBytes, int Unit, int SnapshotEvery, int Migrations, int Origin, RuntimeClientReader Reader)
{
    /// <summary>Stream and file chunks, as in the sans-IO test.</summary>
    public const int ChunkSize = 1024;

    /// <summary>Request/response messages, as in the sans-IO test.</summary>
    public const int MessageSize = 64;

    public static ScheduleChoices Draw(int seed, Random random, Random readerRandom)
    {
        var service = (ReferenceService)random.Next(3);
        var conditions = new LinkConditions
        {
            LossRate = random.Next(5) * 0.05,
            Latency = TimeSpan.FromMilliseconds(random.Next(1, 10)),
            Jitter = TimeSpan.FromMilliseconds(random.Next(0, 3)),
            DuplicateRate = random.NextDouble() * 0.05,
            ReorderRate = random.NextDouble() * 0.1,
            ReorderDelay = TimeSpan.FromMilliseconds(10),
        };

        // One schedule in eight also has blackhole periods of tens to hundreds of milliseconds.
        if (random.Next(8) == 0)
        {
            conditions = conditions with { BlackholeRate = 0.002, BlackholeDuration = TimeSpan.FromMilliseconds(random.Next(20, 301)) };
        }

        var sessionBytes = random.Next(4, 65) * 4096;
        var snapshotEvery = random.Next(1, 17);
        var migrations = random.Next(0, 11);
        var origin = random.Next(MigrationCluster.ServerCount);
        var reader = (RuntimeClientReader)readerRandom.Next(3);
        return new ScheduleChoices(seed, service, conditions, sessionBytes, service == ReferenceService.RequestResponse ? MessageSize : ChunkSize, snapshotEvery, migrations, origin, reader);
    }

    public override string ToString()
    {
        var blackholes = Conditions.BlackholeRate > 0 ? $", blackholes of {Conditions.BlackholeDuration.TotalMilliseconds:F0} ms" : string.Empty;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"{Service} {SessionBytes / 1024} KiB k={SnapshotEvery} reader={Reader} from S{Origin + 1}, {Migrations} migrations; loss {Conditions.LossRate:P0} "
            + $"dup {Conditions.DuplicateRate:P1} reorder {Conditions.ReorderRate:P1} latency {Conditions.Latency.TotalMilliseconds} ms jitter {Conditions.Jitter.TotalMilliseconds} ms{blackholes}");
    }
}

/// <summary>Counts over all schedules; schedules run at once, so every update takes the lock.</summary>
internal sealed class RuntimeScheduleTotals
{
    private readonly object _lock = new();
    private readonly SortedDictionary<int, (long Started, long Failed)> _byLoss = [];

    public long Bytes { get; private set; }

    public long MigrationsStarted { get; private set; }

    public long MigrationsCompleted { get; private set; }

    public long MigrationsFailed { get; private set; }

    /// <summary>Started before the server of the previous handshake (open or migration) had handed the connection to its application.</summary>
    public (long Started, long Completed) DuringHandshake { get; private set; }

    /// <summary>Requested while the connection's previous migration was in flight (special SYN sent, state transfer or SYN+ACK under way): refused by the runtime, the migration in flight going on undisturbed.</summary>
    public long DuringStateTransfer { get; private set; }

    /// <summary>Started towards a server the connection had already left.</summary>
    public (long Started, long Completed) BackToAServerLeft { get; private set; }

    /// <summary>Started while migrations of other connections were in flight on the same cluster (their state transfers share the control connections).</summary>
    public long BesideOtherMigrations { get; private set; }

    public Dictionary<string, int> FailureReasons { get; } = [];

    /// <summary>The traces of the first few sound schedules in which a migration failed, to show what made it fail.</summary>
    public List<string> FailedMigrationExamples { get; } = [];

    public Dictionary<string, int> ClientRefusals { get; } = [];

    public Dictionary<ReferenceService, int> Services { get; } = [];

    public Dictionary<RuntimeClientReader, int> Readers { get; } = [];

    public void Schedule(ScheduleChoices choices, long bytes)
    {
        lock (_lock)
        {
            Bytes += bytes;
            Services[choices.Service] = Services.GetValueOrDefault(choices.Service) + 1;
            Readers[choices.Reader] = Readers.GetValueOrDefault(choices.Reader) + 1;
        }
    }

    public void Migration(MigrationReport report, double lossRate, bool duringHandshake, bool backToAServerLeft, bool besideOthers)
    {
        var completed = report.Outcome == MigrationOutcome.Completed ? 1 : 0;
        lock (_lock)
        {
            var loss = (int)Math.Round(lossRate * 100);
            var (started, failed) = _byLoss.GetValueOrDefault(loss);
            _byLoss[loss] = (started + 1, failed + 1 - completed);
            MigrationsStarted++;
            MigrationsCompleted += completed;
            MigrationsFailed += 1 - completed;
            if (report.FailureReason is { } reason)
            {
                var key = Regex.Replace(reason, @"\d+", "#");
                FailureReasons[key] = FailureReasons.GetValueOrDefault(key) + 1;
            }

            if (duringHandshake)
            {
                DuringHandshake = (DuringHandshake.Started + 1, DuringHandshake.Completed + completed);
            }

            if (backToAServerLeft)
            {
                BackToAServerLeft = (BackToAServerLeft.Started + 1, BackToAServerLeft.Completed + completed);
            }

            BesideOtherMigrations += besideOthers ? 1 : 0;
        }
    }

    public void FailedMigrationExample(string example)
    {
        lock (_lock)
        {
            if (FailedMigrationExamples.Count < 5)
            {
                FailedMigrationExamples.Add(example);
            }
        }
    }

    public void RefusedByClient(string reason, bool duringStateTransfer)
    {
        lock (_lock)
        {
            ClientRefusals[reason] = ClientRefusals.GetValueOrDefault(reason) + 1;
            DuringStateTransfer += duringStateTransfer ? 1 : 0;
        }
    }

    public string DescribeByLoss()
    {
        lock (_lock)
        {
            return string.Join("; ", _byLoss.Select(p => $"{p.Key}% {p.Value.Failed}/{p.Value.Started}"));
        }
    }

    public string DescribeKinds()
    {
        lock (_lock)
        {
            return string.Create(
                CultureInfo.InvariantCulture,
                $"started during the previous handshake {DuringHandshake.Started} ({DuringHandshake.Completed} completed), requested during a state transfer {DuringStateTransfer}, "
                + $"back to a server already left {BackToAServerLeft.Started} ({BackToAServerLeft.Completed} completed), beside other connections' migrations {BesideOtherMigrations}");
        }
    }
}

/// <summary>A schedule that did not end as it must: reset, wrong bytes, a hang, or something left behind.</summary>
internal sealed record ScheduleFailure(int Seed, string Description);

/// <summary>One client runtime, used by one schedule at a time: its address makes its links, and so its conditions, its own.</summary>
internal sealed record Lane(int Slot, int Generation, IpAddress Address, MtcpRuntime Runtime, LossyPacketTransport Transport);

/// <summary>The cluster, the client lanes and what the schedules found.</summary>
internal sealed class PropertyRun(MigrationCluster cluster, ConcurrentDictionary<IpAddress, LossyPacketTransport> transports, ConcurrentQueue<RecordedEvent> logs)
{
    private static readonly Regex EndpointName = new(@"endpoint-(\d+)-(.+)-(\d+)-(\d+)$", RegexOptions.CultureInvariant);
    private readonly ConcurrentBag<Lane> _lanes = [];
    private readonly ConcurrentBag<(IpAddress Address, int Port, int Seed)> _ports = [];
    private readonly ConcurrentBag<(IpAddress Address, int Seed, long From, long To)> _runs = [];
    private long _migrationsInFlight;

    public RuntimeScheduleTotals Totals { get; } = new();

    public ConcurrentBag<ScheduleFailure> Failures { get; } = [];

    /// <summary>Client endpoints (address and port) the server applications have accepted.</summary>
    public ConcurrentDictionary<IPEndPoint, bool> Accepted { get; } = new();

    public IReadOnlyList<LossyPacketTransport> ServerTransports =>
        [.. Enumerable.Range(0, cluster.Servers.Count).Select(i => transports[IpAddress.Parse(MigrationCluster.Address(TestTransport.Memory, i + 2))])];

    public async Task<Lane> StartLaneAsync(int slot, int generation = 0)
    {
        var address = IpAddress.Parse($"10.0.{1 + generation}.{slot}");
        var runtime = await cluster.StartClientRuntimeAsync(address, $"lane-{slot}-{generation}");
        var lane = new Lane(slot, generation, address, runtime, transports[address]);
        _lanes.Add(lane);
        return lane;
    }

    /// <summary>Runs schedule <paramref name="seed"/> on <paramref name="lane"/>; after a failure the next schedules get a fresh lane, so that what the failure left behind does not fail them too.</summary>
    public async Task<Lane> RunAsync(int seed, Lane lane)
    {
        var from = Stopwatch.GetTimestamp();
        string? failure;
        try
        {
            failure = await new ScheduleRun(this, lane, seed).RunAsync();
        }
        catch (Exception e)
        {
            failure = $"the schedule threw {e}";
        }

        var to = Stopwatch.GetTimestamp();
        _runs.Add((lane.Address, seed, from, to));
        if (failure is null)
        {
            return lane;
        }

        Failures.Add(new ScheduleFailure(seed, $"{failure} [on {lane.Address}] log: {LogOf(lane.Address, from, to)}"));
        return await StartLaneAsync(lane.Slot, lane.Generation + 1);
    }

    public LinkConditions Prepare(Lane lane, ScheduleChoices choices)
    {
        lane.Transport.SetConditions(choices.Conditions, choices.Seed);
        var servers = ServerTransports;
        for (var i = 0; i < servers.Count; i++)
        {
            servers[i].SetLinkConditions(lane.Address, choices.Conditions, unchecked((choices.Seed * 7) + i + 1));
        }

        return choices.Conditions;
    }

    /// <summary>What this lane's links did in the schedule that just ran: the client's way out and the servers' ways back.</summary>
    public string DescribeLinks(Lane lane) =>
        $"client out [{lane.Transport.Stats}] servers back [{string.Join(" | ", ServerTransports.Select(t => t.LinkStats(lane.Address).ToString()))}]";

    public void RecordPort(IpAddress address, int port, int seed) => _ports.Add((address, port, seed));

    public long MigrationStarting() => Interlocked.Increment(ref _migrationsInFlight) - 1;

    public void MigrationEnded() => Interlocked.Decrement(ref _migrationsInFlight);

    /// <summary>The schedules an endpoint actor's name points at: by the client's port when known, else by its address and time.</summary>
    public string SeedsOf(string actorPath, long timestamp)
    {
        var match = EndpointName.Match(actorPath);
        if (!match.Success)
        {
            var lane = _lanes.FirstOrDefault(l => actorPath.Contains($"/lane-{l.Slot}-{l.Generation}/", StringComparison.Ordinal));
            return lane is null ? "no schedule known" : SeedsAt(lane.Address, timestamp);
        }

        var localPort = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        var remotePort = int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture);
        if (IPAddress.TryParse(match.Groups[2].Value.Replace('_', ':'), out var remote))
        {
            var address = IpAddress.FromIPAddress(remote);
            if (_lanes.Any(l => l.Address == address))
            {
                // A server endpoint: the remote end is a lane.
                var seeds = _ports.Where(p => p.Address == address && p.Port == remotePort).Select(p => p.Seed).Distinct().ToList();
                return (seeds.Count > 0 ? "by port " + Relative(seeds, timestamp) + "; " : string.Empty) + "on its lane then " + SeedsAt(address, timestamp);
            }

            var client = _lanes.FirstOrDefault(l => actorPath.Contains($"/lane-{l.Slot}-{l.Generation}/", StringComparison.Ordinal));
            if (client is not null)
            {
                var seeds = _ports.Where(p => p.Address == client.Address && p.Port == localPort).Select(p => p.Seed).Distinct().ToList();
                return (seeds.Count > 0 ? "by port " + Relative(seeds, timestamp) + "; " : string.Empty) + "on its lane then " + SeedsAt(client.Address, timestamp);
            }
        }

        return "no schedule known";
    }

    /// <summary>Waits until no runtime holds an endpoint and no registry an entry; returns what is still there at the deadline.</summary>
    public async Task<List<string>> AwaitEverythingGoneAsync(TimeSpan within)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
        List<string> left;
        do
        {
            left = [];
            foreach (var server in cluster.Servers)
            {
                var statistics = await server.Runtimes[TestTransport.Memory].GetStatisticsAsync();
                if (statistics.Endpoints > 0)
                {
                    left.Add($"S{server.Index + 1} holds {statistics.Endpoints} endpoints");
                }

                var registry = await server.Registry.Ask<ConnectionRegistryStatistics>(GetConnectionRegistryStatistics.Instance, TimeSpan.FromSeconds(10));
                if (registry.Connections > 0)
                {
                    left.Add($"S{server.Index + 1}'s registry holds {registry.Connections} connections");
                }
            }

            foreach (var lane in _lanes)
            {
                var statistics = await lane.Runtime.GetStatisticsAsync();
                if (statistics.Endpoints > 0)
                {
                    left.Add($"client {lane.Address} holds {statistics.Endpoints} endpoints");
                }
            }

            if (left.Count == 0)
            {
                return left;
            }

            await Task.Delay(100);
        }
        while (Stopwatch.GetTimestamp() < deadline);

        // Name the endpoint actors still alive, and the schedules they belong to.
        var systems = cluster.Servers.Select(s => s.System).Append(cluster.ClientSystem);
        foreach (var system in systems)
        {
            foreach (var pattern in new[] { "/user/*/endpoint-*", "/user/*/*/endpoint-*" })
            {
                foreach (var path in await IdentifyAllAsync(system, pattern))
                {
                    left.Add($"{system.Name} {path} ({SeedsOf(path, Stopwatch.GetTimestamp())})");
                }
            }
        }

        return left;
    }

    public Dictionary<string, int> RefusalReasons()
    {
        var reasons = new Dictionary<string, int>();
        foreach (var log in logs)
        {
            var at = log.Text.IndexOf("migrated connection refused: ", StringComparison.Ordinal);
            if (at >= 0)
            {
                var reason = Regex.Replace(log.Text[(at + "migrated connection refused: ".Length)..], @"\d+|\[[^\]]*\]", "#");
                reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
            }
        }

        return reasons;
    }

    public string LinkTotals()
    {
        var all = transports.Values.ToList();
        return string.Create(
            CultureInfo.InvariantCulture,
            $"sent {all.Sum(t => t.Stats.Sent)}, lost {all.Sum(t => t.Stats.Lost)}, duplicated {all.Sum(t => t.Stats.Duplicated)}, reordered {all.Sum(t => t.Stats.Reordered)}, "
            + $"blackholed {all.Sum(t => t.Stats.Blackholed)}, over MTU {all.Sum(t => t.Stats.OverMtu)}, dropped locally {all.Sum(t => t.Stats.DroppedLocally)}");
    }

    public async Task<string> PacketTotalsAsync()
    {
        var runtimes = cluster.Servers.Select(s => s.Runtimes[TestTransport.Memory]).Concat(_lanes.Select(l => l.Runtime));
        var statistics = await Task.WhenAll(runtimes.Select(r => r.GetStatisticsAsync()));
        return string.Create(
            CultureInfo.InvariantCulture,
            $"received {statistics.Sum(s => s.SegmentsReceived)}, malformed {statistics.Sum(s => s.MalformedSegments)}, stray {statistics.Sum(s => s.StraySegments)}, "
            + $"RSTs sent to strays {statistics.Sum(s => s.ResetsSent)}, SYNs dropped {statistics.Sum(s => s.SynsDropped)}, sends dropped {statistics.Sum(s => s.SendsDropped)}");
    }

    private static async Task<IReadOnlyList<string>> IdentifyAllAsync(ActorSystem system, string pattern)
    {
        var found = new ConcurrentBag<string>();
        var collector = system.ActorOf(Props.Create(() => new IdentityCollector(found)));
        system.ActorSelection(pattern).Tell(new Identify(pattern), collector);
        await Task.Delay(500);
        system.Stop(collector);
        return [.. found];
    }

    private string SeedsAt(IpAddress address, long timestamp)
    {
        var runs = _runs.Where(r => r.Address == address).OrderBy(r => r.From).ToList();
        var at = runs.FindLastIndex(r => r.From <= timestamp);
        return at < 0 ? "before any schedule" : Relative([runs[at].Seed], timestamp) + $", its schedule {at + 1} of {runs.Count}";
    }

    /// <summary>The seeds, and when the event happened relative to the first one's run.</summary>
    private string Relative(List<int> seeds, long timestamp)
    {
        var run = _runs.FirstOrDefault(r => r.Seed == seeds[0]);
        var when = run == default ? string.Empty
            : timestamp > run.To ? string.Create(CultureInfo.InvariantCulture, $", {(timestamp - run.To) * 1000 / Stopwatch.Frequency} ms after its end")
            : string.Create(CultureInfo.InvariantCulture, $", {(timestamp - run.From) * 1000 / Stopwatch.Frequency} ms into it");
        return "seed " + string.Join(",", seeds) + when;
    }

    /// <summary>The warnings and errors that name the lane's address while the schedule ran.</summary>
    private string LogOf(IpAddress address, long from, long to)
    {
        var text = address.ToString();
        var lines = logs.Where(l => l.Timestamp >= from && l.Timestamp <= to && (l.Text.Contains(text, StringComparison.Ordinal) || l.Recipient.Contains(text, StringComparison.Ordinal)))
            .Take(20)
            .Select(l => $"{(l.Timestamp - from) * 1000 / Stopwatch.Frequency} ms {l.System} {l.Kind}: {l.Text}");
        var joined = string.Join(" | ", lines);
        return joined.Length == 0 ? "(none)" : joined;
    }

    private sealed class IdentityCollector : ReceiveActor
    {
        public IdentityCollector(ConcurrentBag<string> found) =>
            Receive<ActorIdentity>(identity =>
            {
                if (identity.Subject is { } subject)
                {
                    found.Add(subject.Path.ToString());
                }
            });
    }
}

/// <summary>One schedule: a client connection on its lane, its reader, its migration driver, and the checks at its end.</summary>
internal sealed class ScheduleRun(PropertyRun run, Lane lane, int seed)
{
    private readonly Random _random = new(seed);
    private readonly Random _readerRandom = new(unchecked((seed * 31) + 7));
    private readonly StringBuilder _trace = new();
    private readonly long _started = Stopwatch.GetTimestamp();
    private ScheduleChoices _choices = null!;
    private MtcpClient _client = null!;
    private MtcpStream _stream = null!;
    private volatile string _phase = "starting";
    private long _received;
    private long _firstMismatch = -1;
    private int _failedMigrations;

    /// <summary>Runs the schedule; null when it ended as it must, else what went wrong.</summary>
    public async Task<string?> RunAsync()
    {
        _choices = ScheduleChoices.Draw(seed, _random, _readerRandom);
        run.Prepare(lane, _choices);
        using var timeout = new CancellationTokenSource(ScheduleBounds.Schedule);
        using var stopMigrating = new CancellationTokenSource();
        _client = new MtcpClient(lane.Runtime);
        Task driver = Task.CompletedTask;
        try
        {
            _phase = "connecting";
            _stream = await _client.ConnectAsync(Endpoint(_choices.Origin), timeout.Token);
            run.RecordPort(lane.Address, _stream.LocalEndPoint.Port, seed);
            Trace($"connected from port {_stream.LocalEndPoint.Port} to S{_choices.Origin + 1}");
            driver = DriveMigrationsAsync(stopMigrating.Token, timeout.Token);
            var expected = await ExchangeAsync(timeout.Token);
            await stopMigrating.CancelAsync();
            _phase = "waiting for the last migration before closing";
            await driver.WaitAsync(timeout.Token);
            if (_firstMismatch >= 0 || _received != expected)
            {
                return Fail($"stream differs at byte {_firstMismatch} (received {_received} of {expected})");
            }

            _phase = "closing";
            _stream.Dispose();
            run.Totals.Schedule(_choices, _received);
            if (_failedMigrations > 0)
            {
                run.Totals.FailedMigrationExample($"seed {seed}: {_choices}; {run.DescribeLinks(lane)}; trace: {_trace}");
            }

            return await AwaitLaneEmptyAsync();
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            _stream?.Abort();
            return Fail($"did not finish within {ScheduleBounds.Schedule.TotalSeconds} s (hang) while {_phase}");
        }
        catch (IOException e)
        {
            return Fail($"connection failed while {_phase}: {e.Message}");
        }
        finally
        {
            await stopMigrating.CancelAsync();
            _client.Dispose();
            if (!driver.IsCompleted)
            {
                await Task.WhenAny(driver, Task.Delay(TimeSpan.FromSeconds(5)));
            }
        }
    }

    private static IPEndPoint Endpoint(int server)
    {
        var service = MigrationCluster.Service(TestTransport.Memory, server);
        return new IPEndPoint(service.Address.ToIPAddress(), service.Port);
    }

    private string Fail(string what) =>
        string.Create(CultureInfo.InvariantCulture, $"{what}; {_choices}; after {Stopwatch.GetElapsedTime(_started).TotalSeconds:F1} s; received {_received}; {run.DescribeLinks(lane)}; trace: {_trace}");

    private void Trace(string what)
    {
        lock (_trace)
        {
            _trace.Append(CultureInfo.InvariantCulture, $"{Stopwatch.GetElapsedTime(_started).TotalMilliseconds:F0} ms {what}; ");
        }
    }

    /// <summary>The service's exchange; returns how many bytes the client must have received.</summary>
    private async Task<long> ExchangeAsync(CancellationToken cancellation)
    {
        var total = _choices.SessionBytes;
        switch (_choices.Service)
        {
            case ReferenceService.Stream:
            case ReferenceService.File:
                var key = _choices.Service == ReferenceService.Stream ? MigrationTestbed.StreamKey : MigrationTestbed.FileName;
                var kind = _choices.Service == ReferenceService.Stream ? ReferenceApps.StreamService : ReferenceApps.FileService;
                _phase = "sending the request";
                await _stream.WriteAsync(ReferenceApps.PropertyCommand(kind, total, _choices.Unit, _choices.SnapshotEvery, key), cancellation);
                await ReadAsync(total, (offset, bytes) => StreamPattern.FirstMismatch(key, offset, bytes), toEnd: true, cancellation);
                return total;
            default:
                var messages = total / _choices.Unit;
                var (requests, responses) = RequestResponseServerSession.Reference(messages, _choices.Unit, MigrationTestbed.RequestKey);
                _phase = "sending the request";
                await _stream.WriteAsync(ReferenceApps.PropertyCommand(ReferenceApps.RequestResponseService, total, _choices.Unit, _choices.SnapshotEvery, MigrationTestbed.RequestKey), cancellation);
                var writer = WriteRequestsAsync(requests, cancellation);
                await ReadAsync(total, (offset, bytes) => FirstDifference(responses.AsSpan((int)offset, bytes.Length), bytes), toEnd: false, cancellation);
                await writer;
                return total;
        }
    }

    private static long FirstDifference(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        var common = expected.CommonPrefixLength(actual);
        return common == actual.Length ? -1 : common;
    }

    private async Task WriteRequestsAsync(byte[] requests, CancellationToken cancellation)
    {
        for (var offset = 0; offset < requests.Length; offset += 4096)
        {
            await _stream.WriteAsync(requests.AsMemory(offset, Math.Min(4096, requests.Length - offset)), cancellation);
        }
    }

    /// <summary>
    /// Reads as the schedule's reader does, checking every byte; up to the server's FIN (<paramref name="toEnd"/>) or
    /// until the expected bytes are in.
    /// </summary>
    private async Task ReadAsync(long total, Func<long, ReadOnlySpan<byte>, long> mismatch, bool toEnd, CancellationToken cancellation)
    {
        var buffer = new byte[16 * 1024];
        var pacer = new ReaderPacer(_choices.Reader, _readerRandom);
        while (toEnd || _received < total)
        {
            await pacer.PauseIfDueAsync(cancellation);
            _phase = $"reading at {_received} of {total}";
            var read = await _stream.ReadAsync(buffer, cancellation);
            if (read == 0)
            {
                Trace($"end of stream at {_received}");
                return;
            }

            var fits = (int)Math.Min(read, total - _received);
            if (_firstMismatch < 0)
            {
                var at = mismatch(_received, buffer.AsSpan(0, fits));
                if (at >= 0 || fits < read)
                {
                    _firstMismatch = _received + (at >= 0 ? at : fits);
                    Trace($"mismatch at {_firstMismatch}");
                }
            }

            _received += read;
        }
    }

    /// <summary>
    /// Up to the schedule's count of migrations, at random moments (as the sans-IO test: the first within 200 ms, the
    /// next 1-150 ms after the previous ends; here also right after it ends, one time in four, so that it lands while
    /// the new server still waits for the client's ACK), to a random server other than the current one; one time in
    /// four a second request follows while the first is in flight.
    /// </summary>
    private async Task DriveMigrationsAsync(CancellationToken stop, CancellationToken timeout)
    {
        var remaining = _choices.Migrations;
        var current = _choices.Origin;
        var visited = new HashSet<int> { current };
        var currentEndpoint = _stream.LocalEndPoint;
        var delay = _random.Next(0, 200);
        var latency = (int)_choices.Conditions.Latency.TotalMilliseconds;
        while (remaining > 0)
        {
            if (delay > 0)
            {
                try
                {
                    await Task.Delay(delay, stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            if (stop.IsCancellationRequested)
            {
                return;
            }

            var target = _random.Next(MigrationCluster.ServerCount);
            var overlapAfter = _random.Next(4) == 0 ? _random.Next(latency, (3 * latency) + 3) : -1;
            delay = _random.Next(4) == 0 ? 0 : _random.Next(1, 150);
            if (target == current)
            {
                continue;
            }

            var duringHandshake = !run.Accepted.ContainsKey(currentEndpoint);
            var back = visited.Contains(target);
            var besideOthers = run.MigrationStarting() > 0;
            MigrationReport report;
            MigrationReport? overlapping = null;
            var third = 3 - current - target;
            try
            {
                _phase = $"migrating to S{target + 1}";
                var migration = _client.MigrateAsync(MigrationCluster.Service(TestTransport.Memory, target), timeout);
                if (overlapAfter >= 0)
                {
                    await Task.Delay(overlapAfter, timeout);
                    if (!migration.IsCompleted)
                    {
                        overlapping = await OverlapAsync(third, timeout);
                    }
                }

                report = await migration;
            }
            catch (InvalidOperationException e)
            {
                run.Totals.RefusedByClient(e.Message, duringStateTransfer: false);
                Trace($"migration to S{target + 1} not started: {e.Message}");
                continue;
            }
            finally
            {
                run.MigrationEnded();
            }

            remaining--;
            _failedMigrations += report.Outcome == MigrationOutcome.Failed ? 1 : 0;
            run.Totals.Migration(report, _choices.Conditions.LossRate, duringHandshake, back, besideOthers);
            Trace($"migration to S{target + 1} {report.Outcome} {report.FailureReason}{(duringHandshake ? " (during handshake)" : string.Empty)}{(back ? " (back)" : string.Empty)}");
            if (report.Outcome == MigrationOutcome.Completed)
            {
                current = target;
                visited.Add(target);
                currentEndpoint = _stream.LocalEndPoint;
                run.RecordPort(lane.Address, currentEndpoint.Port, seed);
            }

            if (overlapping is { } second)
            {
                // The first ended just before the second request reached the endpoint: it was a migration of its own.
                remaining--;
                run.Totals.Migration(second, _choices.Conditions.LossRate, duringHandshake: !run.Accepted.ContainsKey(currentEndpoint), visited.Contains(third), besideOthers: true);
                Trace($"second request became a migration to S{third + 1} {second.Outcome}");
                if (second.Outcome == MigrationOutcome.Completed)
                {
                    current = third;
                    visited.Add(third);
                    currentEndpoint = _stream.LocalEndPoint;
                    run.RecordPort(lane.Address, currentEndpoint.Port, seed);
                }
            }
        }
    }

    /// <summary>A request while a migration is in flight: the runtime must refuse it and leave the one in flight alone.</summary>
    private async Task<MigrationReport?> OverlapAsync(int server, CancellationToken timeout)
    {
        try
        {
            return await _client.MigrateAsync(MigrationCluster.Service(TestTransport.Memory, server), timeout);
        }
        catch (InvalidOperationException e)
        {
            run.Totals.RefusedByClient(e.Message, duringStateTransfer: e.Message.Contains("in progress", StringComparison.Ordinal));
            Trace($"second request during the transfer refused: {e.Message}");
            return null;
        }
    }

    /// <summary>After the close: the lane's runtime must hold no endpoint once the FIN exchange and TIME-WAIT are over.</summary>
    private async Task<string?> AwaitLaneEmptyAsync()
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(ScheduleBounds.Drain.TotalSeconds * Stopwatch.Frequency);
        PacketStatistics statistics;
        do
        {
            statistics = await lane.Runtime.GetStatisticsAsync();
            if (statistics.Endpoints == 0)
            {
                return null;
            }

            await Task.Delay(50);
        }
        while (Stopwatch.GetTimestamp() < deadline);

        return Fail($"the client still holds {statistics.Endpoints} endpoints {ScheduleBounds.Drain.TotalSeconds} s after closing");
    }

    /// <summary>Pauses a slow or stalling reader between phases of reading, as the sans-IO test's reader does.</summary>
    private sealed class ReaderPacer(RuntimeClientReader reader, Random random)
    {
        private long _phaseEnds = Stopwatch.GetTimestamp() + Ticks(Phase(reader, paused: false, random));

        public async ValueTask PauseIfDueAsync(CancellationToken cancellation)
        {
            if (reader == RuntimeClientReader.FullSpeed || Stopwatch.GetTimestamp() < _phaseEnds)
            {
                return;
            }

            await Task.Delay(Phase(reader, paused: true, random), cancellation);
            _phaseEnds = Stopwatch.GetTimestamp() + Ticks(Phase(reader, paused: false, random));
        }

        private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

        private static TimeSpan Phase(RuntimeClientReader reader, bool paused, Random random) => (reader, paused) switch
        {
            (RuntimeClientReader.Slow, false) => TimeSpan.FromMilliseconds(random.Next(1, 4)),
            (RuntimeClientReader.Slow, true) => TimeSpan.FromMilliseconds(random.Next(5, 41)),
            (RuntimeClientReader.Stalling, false) => TimeSpan.FromMilliseconds(random.Next(20, 201)),
            (RuntimeClientReader.Stalling, true) => TimeSpan.FromMilliseconds(random.Next(100, 801)),
            _ => TimeSpan.FromHours(1),
        };
    }
}

/// <summary>The bounds every schedule is held to.</summary>
internal static class ScheduleBounds
{
    /// <summary>Longer than any sound schedule takes (the slowest, 256 KiB at 20% loss with a stalling reader, take tens of seconds).</summary>
    public static readonly TimeSpan Schedule = TimeSpan.FromSeconds(90);

    /// <summary>How long endpoints may take to go once everything closed: 2 MSL (400 ms) plus retransmitted FINs under loss.</summary>
    public static readonly TimeSpan Drain = TimeSpan.FromSeconds(15);
}

using System.Diagnostics;
using System.Globalization;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Exactly-once across random schedules with crashes (DESIGN's fault model: one fault at a time costs no connection):
/// servers replicate each connection to a buddy (<see cref="ConnectionReplicator"/> and <see cref="ReplicaStore{TOrigin}"/>,
/// the client's bytes acknowledged once the buddy holds them), and at random moments a server dies, at most one at a
/// time: the serving node, its buddy or a bystander, mid-transfer, mid-migration, during the FIN exchange. The others
/// notice after a random detection delay (the buddy then sends the client a takeover MIGRATE_TRIGGER); the client's
/// own failover may notice first. The dead node comes back blank and may be
/// the next to die once the connection is replicated again. Every schedule checks the stream byte for byte both
/// ways and the server's digest chain (every request applied exactly once).
/// </summary>
[Trait("Category", "Property")]
public sealed class CrashPropertyTests(ITestOutputHelper output)
{
    [Fact]
    public void Random_crash_schedules_must_deliver_exactly_the_reference_stream_and_apply_every_request_once()
    {
        var schedules = Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? 5_000 : 250;
        if (int.TryParse(Environment.GetEnvironmentVariable("MTCP_CRASH_SCHEDULES"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var count))
        {
            schedules = count;
        }

        var firstSeed = int.TryParse(Environment.GetEnvironmentVariable("MTCP_CRASH_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 1;
        var stopwatch = Stopwatch.StartNew();
        var totals = new CrashTotals();
        var failures = new List<string>();
        for (var seed = firstSeed; seed < firstSeed + schedules; seed++)
        {
            CrashSchedule.Run(seed, totals, out var failure);
            if (failure is not null)
            {
                failures.Add($"seed {seed}: {failure}");
            }
        }

        // Every failing schedule, each replayable alone with MTCP_CRASH_SEED=n MTCP_CRASH_SCHEDULES=1.
        Assert.True(failures.Count == 0, $"{failures.Count} of {schedules} schedules failed:\n" + string.Join("\n", failures));

        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{schedules} schedules in {stopwatch.Elapsed.TotalSeconds:F1} s: {totals.Crashes} crashes ({totals.ServingCrashes} of the serving node, {totals.BuddyCrashes} of its buddy, "
            + $"{totals.OtherCrashes} of a bystander; {totals.CrashesDuringMigration} during a migration, {totals.CrashesDuringFin} during the FIN exchange), "
            + $"{totals.TakenOver} connections taken over from a replica ({totals.Triggers} takeover triggers, {totals.ClientFailovers} client failovers), "
            + $"{totals.PlannedMigrations} planned migrations; {totals.AbandonedKnowingNoAlternate} connections aborted within the give-up time, their client knowing no alternate and given no takeover trigger"));
        Assert.True(totals.AbandonedKnowingNoAlternate <= schedules / 100 + 1, "a connection aborted because its client knew no alternate needs a crash in its first round trips and a lost trigger: rare");
        Assert.True(totals.ServingCrashes >= schedules / 3, "the serving node must be the one that dies in a good share of the schedules");
        Assert.True(totals.TakenOver >= totals.ServingCrashes / 2, "crashes of the serving node must be survived by takeovers from a replica");
        Assert.True(totals.Triggers > 0 && totals.ClientFailovers > 0, "both detectors must be exercised: the buddy's trigger and the client's own failover");
        Assert.True(totals.BuddyCrashes > 0 && totals.CrashesDuringMigration > 0, "the buddy must die in some schedules, and some crashes must hit a migration");
    }
}

/// <summary>Running totals over many crash schedules.</summary>
internal sealed class CrashTotals
{
    public long Crashes { get; set; }

    public long ServingCrashes { get; set; }

    public long BuddyCrashes { get; set; }

    public long OtherCrashes { get; set; }

    /// <summary>Crashes while the client was migrating (planned or failing over).</summary>
    public long CrashesDuringMigration { get; set; }

    /// <summary>Crashes with a FIN sent or received (client not in ESTABLISHED).</summary>
    public long CrashesDuringFin { get; set; }

    public long TakenOver { get; set; }

    public long Triggers { get; set; }

    public long ClientFailovers { get; set; }

    public long PlannedMigrations { get; set; }

    /// <summary>Connections aborted at the give-up time because the client knew no alternate and got no takeover trigger.</summary>
    public long AbandonedKnowingNoAlternate { get; set; }
}

/// <summary>One random crash schedule, reproducible from its seed.</summary>
internal static class CrashSchedule
{
    /// <summary>
    /// The client's failover timers: the reference configuration's (mtcp.migration.failover, destination-timeout) but
    /// for the special SYN timeout and the give-up time. At the reference 1 s, the initial RTO, a special SYN or SYN+ACK
    /// lost once makes the client move on without a retransmission; the buddy has then given its replica to the
    /// endpoint whose SYN+ACK was lost (the state ack removes it), so coming back to the buddy on a new port finds no
    /// replica and the connection is lost. 3 s leaves room for one retransmission.
    /// </summary>
    private static readonly ClientFailover ClientTimers = new()
    {
        ProbeInterval = TimeSpan.FromSeconds(2),
        SilentAfter = 3,
        SpecialSynTimeout = TimeSpan.FromSeconds(3),
        GiveUpAfter = TimeSpan.FromSeconds(10),
        DestinationTimeout = TimeSpan.FromSeconds(5),
    };

    public static MigrationTestbed Run(int seed, CrashTotals totals, out string? failure)
    {
        var random = new Random(seed);
        var service = (ReferenceService)random.Next(4);
        var conditions = new LinkConditions
        {
            Latency = TimeSpan.FromMilliseconds(random.Next(1, 10)),
            Jitter = TimeSpan.FromMilliseconds(random.Next(0, 3)),
            LossRate = random.Next(3) * 0.05,
            DuplicateRate = random.NextDouble() * 0.05,
            ReorderRate = random.NextDouble() * 0.1,
            ReorderDelay = TimeSpan.FromMilliseconds(10),
        };
        var replicaDraws = new Random(~seed);
        var options = new TestbedOptions
        {
            Service = service,
            SessionBytes = random.Next(8, 49) * 4096,
            SnapshotEvery = random.Next(1, 17),
            ControlLatency = TimeSpan.FromMilliseconds(random.Next(1, 20)),
            Replication = true,

            // From a generator of its own, so that every other draw of a seed stays what it was: every snapshot a whole
            // state (as before whole states were scheduled), or one whole state per some kilobytes of replay saved, so
            // that takeovers replay from older snapshots, regenerate output the client already has, and discard it.
            ReplicaStates = replicaDraws.Next(3) switch
            {
                0 => ReplicaStateSchedule.EverySnapshot,
                1 => new ReplicaStateSchedule(MinProgress: 8 * 1024, ProgressPerStateByte: 2, MaxProgress: 64 * 1024),
                _ => new ReplicaStateSchedule(MinProgress: 32 * 1024, ProgressPerStateByte: 8, MaxProgress: 128 * 1024),
            },

            // One read log in flight makes every byte that comes meanwhile wait for an ack and go with others.
            ReplicaReadLogsInFlight = replicaDraws.Next(1, 5),
        };
        var bed = new MigrationTestbed(seed, conditions, options);
        bed.Connection.Failover = ClientTimers;
        var policy = bed.Client.OnMigrationEvent;
        Instant? silentAt = null;
        TimeSpan? abandonedAfter = null;
        bed.Client.OnMigrationEvent = (at, e) =>
        {
            silentAt = e.Kind == MigrationEventKind.ServerSilent ? at : silentAt;
            abandonedAfter = e.Kind == MigrationEventKind.FailoverAbandoned ? at - silentAt!.Value : abandonedAfter;
            Timeline(bed).Add($"{at} client {e.Kind} {e.Destination} {e.Detail} (received {bed.ClientApp.Received}, readable {bed.Connection.BytesReadable})".TrimEnd());
            policy(at, e);
        };
        var crashes = random.Next(1, 3);
        var migrations = random.Next(0, 4);
        var nextCrashAt = bed.Network.Now + TimeSpan.FromMilliseconds(random.Next(0, 400));
        var nextMigrationAt = bed.Network.Now + TimeSpan.FromMilliseconds(random.Next(0, 300));
        int? down = null;
        Instant? detectAt = null;
        Instant? restartAt = null;
        var limit = bed.Network.Now + TimeSpan.FromMinutes(30);
        failure = null;
        var mismatchNoted = false;
        while (!bed.Finished && !LastAckWithItsServerGone(bed))
        {
            if (bed.Network.Now > limit)
            {
                failure = "did not finish (stall): " + Explain(bed);
                return bed;
            }

            if (!bed.Network.Step())
            {
                // The network is idle (a client in FIN-WAIT-2 whose server died waits quietly) until the failure
                // detector's verdict or the restart: time moves on to it.
                if (Instant.Earliest(detectAt, restartAt) is not { } pending || pending <= bed.Network.Now)
                {
                    if (AbandonedKnowingNoAlternate(bed) && abandonedAfter <= ClientTimers.GiveUpAfter)
                    {
                        totals.AbandonedKnowingNoAlternate++;
                        return bed;
                    }

                    failure = "did not finish (deadlock): " + Explain(bed);
                    return bed;
                }

                bed.Network.AdvanceTo(pending);
            }

            var now = bed.Network.Now;
            if (bed.ClientApp.FirstMismatch >= 0 && !mismatchNoted)
            {
                mismatchNoted = true;
                Timeline(bed).Add($"{now} the client read a wrong byte at {bed.ClientApp.FirstMismatch} (received {bed.ClientApp.Received}) on S{bed.IndexOf(bed.Connection.CurrentServer) + 1}");
            }

            if (down is { } dead)
            {
                if (detectAt is { } detect && now >= detect)
                {
                    bed.DetectCrash(dead);
                    Timeline(bed).Add($"{now} S{dead + 1} detected");
                    detectAt = null;
                    restartAt = now + TimeSpan.FromMilliseconds(random.Next(100, 2000));
                }
                else if (restartAt is { } restart && now >= restart && bed.IndexOf(bed.Connection.CurrentServer) != dead && !bed.Connection.IsMigrating)
                {
                    bed.Restart(dead);
                    Timeline(bed).Add($"{now} S{dead + 1} restarted");
                    down = null;
                    restartAt = null;
                }
            }
            else if (crashes > 0 && now >= nextCrashAt && IsReplicated(bed))
            {
                var serving = bed.IndexOf(bed.Connection.CurrentServer);
                var buddy = bed.Servers[serving].Replication!.BuddyOf(bed.Connection.Cid) is { } address ? bed.Servers.ToList().FindIndex(x => x.Address == address) : -1;
                var draw = random.Next(100);
                var victim = draw < 65 ? serving : draw < 85 && buddy >= 0 ? buddy : Bystander(serving, buddy, bed.Servers.Count, random);
                totals.Crashes++;
                totals.ServingCrashes += victim == serving ? 1 : 0;
                totals.BuddyCrashes += victim == buddy ? 1 : 0;
                totals.OtherCrashes += victim != serving && victim != buddy ? 1 : 0;
                totals.CrashesDuringMigration += bed.Connection.IsMigrating ? 1 : 0;
                totals.CrashesDuringFin += bed.Connection.State != TcpState.Established ? 1 : 0;
                bed.Crash(victim);
                Timeline(bed).Add($"{now} crash S{victim + 1} (serving S{serving + 1}, buddy S{buddy + 1}, client {bed.Connection.State})");
                down = victim;
                crashes--;

                // The cluster's failure detector: from well before the client's own failover to well after it.
                detectAt = now + TimeSpan.FromMilliseconds(random.Next(20, 8000));
                nextCrashAt = now + TimeSpan.FromMilliseconds(random.Next(1, 300));
            }

            if (migrations > 0 && now >= nextMigrationAt)
            {
                var target = random.Next(bed.Servers.Count);
                if (!bed.Servers[target].IsDown && bed.Migrate(target))
                {
                    Timeline(bed).Add($"{now} migrate to S{target + 1}");
                    migrations--;
                    totals.PlannedMigrations++;
                }

                nextMigrationAt = now + TimeSpan.FromMilliseconds(random.Next(1, 300));
            }
        }

        totals.TakenOver += bed.Servers.Sum(x => x.Replication?.TakenOver ?? 0);
        totals.Triggers += bed.Servers.Sum(x => x.Replication?.TriggersSent ?? 0);
        totals.ClientFailovers += bed.Client.MigrationEvents.Count(e => e.Kind == MigrationEventKind.FailoverTo);
        if (bed.ClientApp.FirstMismatch >= 0 || bed.ClientApp.Received != bed.Expected.Length)
        {
            failure = $"stream differs at {bed.ClientApp.FirstMismatch}: " + Explain(bed);
            return bed;
        }

        failure = DigestChainFailure(bed);
        return bed;
    }

    /// <summary>
    /// The one way a single crash may end a connection: its server died before a segment carrying TCP_MIGRATE reached
    /// the client (its SYN+ACK has no room for an alternate beside the migration secret), and the buddy's takeover
    /// trigger, the only other news of where to go, was lost too. The client must then abort at the give-up time, its
    /// application told the connection timed out, without one wrong byte delivered.
    /// </summary>
    private static bool AbandonedKnowingNoAlternate(MigrationTestbed bed) =>
        bed.Connection.State == TcpState.Closed && bed.ClientApp.Events.Contains(TcpEvent.TimedOut) && bed.ClientApp.FirstMismatch < 0
        && bed.Client.MigrationEvents.Count > 0
        && bed.Client.MigrationEvents[^1] is { Kind: MigrationEventKind.FailoverAbandoned, Detail: "no alternate server of this service is known" };

    /// <summary>
    /// The client has everything, closed, and waits in LAST-ACK (or CLOSING) for the ACK of its FIN from a server that
    /// died holding nothing (it had reached TIME-WAIT, the replica released, and its ACK was lost with it): nothing is
    /// left to migrate (thesis 4.2.3 step 3), and the FIN's retransmissions end as plain TCP's do. The stream is done.
    /// </summary>
    private static bool LastAckWithItsServerGone(MigrationTestbed bed) =>
        bed.ClientApp.CloseCalled && bed.ClientApp.ReceivedAll && bed.Connection.State is TcpState.LastAck or TcpState.Closing
        && bed.Connection.CurrentControlBlock.BytesUnacknowledged == 0 && !bed.Connection.IsMigrating && bed.Servers.All(x => x.Host.LiveEndpoints == 0);

    /// <summary>
    /// Crash only what one fault may cost: the connection is established and its buddy holds a whole state of it (a
    /// connection younger than one replication round trip has no replica yet and dies with its node). A migration may
    /// be in flight: the origin, the destination or the buddy may die in the middle of it.
    /// </summary>
    private static bool IsReplicated(MigrationTestbed bed)
    {
        if (bed.Connection.State == TcpState.Closed)
        {
            return false;
        }

        var serving = bed.Servers[bed.IndexOf(bed.Connection.CurrentServer)];
        return serving.Replication!.BuddyOf(bed.Connection.Cid) is { } buddy
            && bed.Servers.Single(x => x.Address == buddy).Replication is { } replication
            && replication.Store.TryGetState(bed.Connection.Cid, out _, out _);
    }

    /// <summary>The testbed's state, the client's migration events and the servers' refusals: what a failed schedule needs to be read.</summary>
    private static string Explain(MigrationTestbed bed) =>
        bed.Describe() + "; schedule: " + string.Join(", ", Timeline(bed))
        + "; replication: " + string.Join(", ", bed.Servers.Select(x => $"{x.Address} triggers {x.Replication?.TriggersSent} answered {x.Replication?.AnsweredFromReplica} taken over {x.Replication?.TakenOver} held {x.Replication?.Store.Count}"))
        + "; sessions: " + string.Join(", ", AllSessions(bed).OfType<RequestResponseServerSession>().Select(x => $"{x.Imported.AppState.Length}B imported, read {x.MessagesRead}"))
        + "; refusals: " + string.Join(", ", bed.Servers.SelectMany(x => x.Host.Stats.RefusalReasons.Select(r => $"{x.Address} {r.Key} x{r.Value}")));

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<MigrationTestbed, List<string>> Timelines = [];

    /// <summary>What the schedule did, and when, for the failure message.</summary>
    private static List<string> Timeline(MigrationTestbed bed) => Timelines.GetOrCreateValue(bed);

    /// <summary>Every session that ran, including those of incarnations lost in crashes.</summary>
    private static IEnumerable<ServerSession> AllSessions(MigrationTestbed bed) => bed.Sessions.Concat(bed.Servers.SelectMany(x => x.LostSessions));

    private static int Bystander(int serving, int buddy, int count, Random random)
    {
        var others = Enumerable.Range(0, count).Where(i => i != serving && i != buddy).ToList();
        return others.Count > 0 ? others[random.Next(others.Count)] : serving;
    }

    /// <summary>
    /// The client→server direction, exactly once: the request/response server's count and digest chain, the upload
    /// server's byte count and digest, as held by the session that finished the connection (any other session that
    /// read as far must agree).
    /// </summary>
    private static string? DigestChainFailure(MigrationTestbed bed)
    {
        var options = bed.Options;
        switch (options.Service)
        {
            case ReferenceService.RequestResponse:
                {
                    var messages = options.SessionBytes / options.MessageSize;
                    var (requests, _) = RequestResponseServerSession.Reference(messages, options.MessageSize, MigrationTestbed.RequestKey);
                    var digest = RequestResponseServerSession.DigestSeed;
                    var scratch = new byte[options.MessageSize];
                    for (var i = 0; i < messages; i++)
                    {
                        digest = RequestResponseServerSession.Process(requests.AsSpan(i * options.MessageSize, options.MessageSize), digest, scratch);
                    }

                    var finished = AllSessions(bed).OfType<RequestResponseServerSession>().Where(x => x.MessagesRead >= messages).ToList();
                    return finished.Count == 0 ? "no session read every request: " + bed.Describe()
                        : finished.FirstOrDefault(x => x.MessagesRead != messages || x.Digest != digest) is { } wrong
                            ? $"digest chain broken: {wrong.MessagesRead}/{messages} requests, digest {wrong.Digest:X16} instead of {digest:X16}: " + bed.Describe()
                            : null;
                }

            case ReferenceService.Upload:
                {
                    var upload = new byte[options.SessionBytes];
                    StreamPattern.Fill(MigrationTestbed.RequestKey, 0, upload);
                    var digest = UploadServerSession.DigestOf(upload);
                    var finished = AllSessions(bed).OfType<UploadServerSession>().Where(x => x.BytesRead >= upload.Length).ToList();
                    return finished.Count == 0 ? "no session read the whole upload: " + bed.Describe()
                        : finished.FirstOrDefault(x => x.BytesRead != upload.Length || x.Digest != digest) is { } wrong
                            ? $"upload digest differs: {wrong.BytesRead}/{upload.Length} bytes, digest {wrong.Digest:X16} instead of {digest:X16}: " + bed.Describe()
                            : null;
                }

            default:
                return null;
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Exactly-once across random migration schedules: random service, snapshot frequency, session size and network
/// impairments (loss up to 20%), client readers at full speed, slow or stalling, and up to 10 migrations per session
/// at random moments, so that they land mid handshake, during retransmissions, during the FIN exchange, back on
/// servers already left, with the client's receive window closed and before the client has read what a server it
/// left delivered.
/// </summary>
[Trait("Category", "Property")]
public sealed class MigrationPropertyTests(ITestOutputHelper output)
{
    [Fact]
    public void Random_migration_schedules_must_deliver_exactly_the_reference_stream_and_close_every_endpoint()
    {
        var schedules = Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? 50_000 : 5_000;
        if (int.TryParse(Environment.GetEnvironmentVariable("MTCP_MIGRATION_SCHEDULES"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var count))
        {
            schedules = count;
        }

        var firstSeed = int.TryParse(Environment.GetEnvironmentVariable("MTCP_MIGRATION_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 1;
        var stopwatch = Stopwatch.StartNew();
        var totals = new ScheduleTotals();
        for (var seed = firstSeed; seed < firstSeed + schedules; seed++)
        {
            MigrationSchedule.Run(seed, totals, out var failure);
            Assert.True(failure is null, $"schedule failed (replay with MTCP_MIGRATION_SEED={seed}): {failure}");
        }

        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{schedules} schedules in {stopwatch.Elapsed.TotalSeconds:F1} s: {totals.MigrationsStarted} migrations started, {totals.MigrationsCompleted} completed, "
            + $"{totals.MigrationsFailed} failed and left the connection on its server; largest state reply {totals.LargestStateReply} bytes"));
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"started during the previous migration's handshake {totals.DuringPreviousHandshake}, while the origin was retransmitting {totals.WhileOriginRetransmitting}, "
            + $"during the FIN exchange {totals.DuringFinExchange}, back to a server already left {totals.BackToAServerLeft}, "
            + $"with the client's window closed {totals.WithClientWindowClosed}, with bytes of a server left still unread {totals.WithUnreadBytesOfAServerLeft}, "
            + $"with SACK holes in a scoreboard {totals.WithScoreboardHoles}"));
        output.WriteLine("client-side failures: " + string.Join("; ", totals.FailureReasons.Select(p => $"{p.Key} x{p.Value}")));
        output.WriteLine("refusals at destinations: " + string.Join("; ", totals.RejectReasons.Select(p => $"{p.Key} x{p.Value}")));
        output.WriteLine($"AUTH_FAILED causes: {string.Join("; ", totals.AuthFailures.Select(p => $"{p.Key} x{p.Value}"))}; duplicate special SYNs {totals.DuplicateSpecialSyns}");
        Assert.True(totals.MigrationsCompleted > schedules, "the schedules must exercise migrations");

        // A genuine client's authenticators always verify: the only AUTH_FAILED is a spent attempt coming back.
        Assert.All(totals.AuthFailures.Keys, cause => Assert.EndsWith($"({Mtcp.Stack.Migration.Authentication.MigratedConnectionCheck.Replayed})", cause));
        if (schedules >= 1000)
        {
            Assert.True(totals.DuringPreviousHandshake > 0 && totals.WhileOriginRetransmitting > 0 && totals.DuringFinExchange > 0 && totals.BackToAServerLeft > 0, "every kind of moment must be hit");
            Assert.True(totals.WithClientWindowClosed > 0 && totals.WithUnreadBytesOfAServerLeft > 0, "slow readers must be caught by migrations");
            Assert.True(totals.WithScoreboardHoles > 0, "migrations must start while a SACK scoreboard holds holes");
        }

        // Every endpoint of the testbed runs the default configuration: SACK is agreed on every connection.
        Assert.Equal(0, totals.WithoutSack);
    }
}

/// <summary>Running totals over many schedules.</summary>
internal sealed class ScheduleTotals
{
    public long MigrationsStarted { get; set; }

    public long MigrationsCompleted { get; set; }

    public long MigrationsFailed { get; set; }

    /// <summary>AUTH_FAILED rejects by diagnostic: with genuine clients only, replays of spent attempts (network duplicates, SYNs retransmitted after a refusal) are expected.</summary>
    public Dictionary<string, int> AuthFailures { get; } = [];

    public long DuplicateSpecialSyns { get; set; }

    public int LargestStateReply { get; set; }

    /// <summary>Migrations started while the previous one's new server still waited for the client's ACK (and β).</summary>
    public long DuringPreviousHandshake { get; set; }

    /// <summary>Migrations started while the origin held unacknowledged data and had retransmitted on this connection.</summary>
    public long WhileOriginRetransmitting { get; set; }

    /// <summary>Migrations started with a FIN sent or received (client not in ESTABLISHED).</summary>
    public long DuringFinExchange { get; set; }

    /// <summary>Migrations started towards a server the connection had already left.</summary>
    public long BackToAServerLeft { get; set; }

    /// <summary>Migrations started while the client's receive buffer was full (a reader slower than the network).</summary>
    public long WithClientWindowClosed { get; set; }

    /// <summary>Migrations started while the origin's or the client's SACK scoreboard held SACKed segments beyond a hole.</summary>
    public long WithScoreboardHoles { get; set; }

    /// <summary>Migrations of a connection whose origin endpoint had not agreed SACK (there should be none).</summary>
    public long WithoutSack { get; set; }

    /// <summary>Migrations started while the client still held unread bytes of a server it had left.</summary>
    public long WithUnreadBytesOfAServerLeft { get; set; }

    public Dictionary<string, int> FailureReasons { get; } = [];

    public Dictionary<string, int> RejectReasons { get; } = [];
}

/// <summary>How the client application reads: slow and stalling readers let the receive window close.</summary>
internal enum ClientReader
{
    FullSpeed,

    /// <summary>Reads for a few milliseconds, then pauses for tens: slower than the network on average.</summary>
    Slow,

    /// <summary>Reads for a while, then stops for hundreds of milliseconds: the window closes and stays closed.</summary>
    Stalling,
}

/// <summary>One random schedule, reproducible from its seed.</summary>
internal static class MigrationSchedule
{
    public static MigrationTestbed Run(int seed, ScheduleTotals totals, out string? failure)
    {
        var random = new Random(seed);
        var service = (ReferenceService)random.Next(3);
        var loss = random.Next(5) * 0.05;
        var conditions = new LinkConditions
        {
            Latency = TimeSpan.FromMilliseconds(random.Next(1, 10)),
            Jitter = TimeSpan.FromMilliseconds(random.Next(0, 3)),
            LossRate = loss,
            DuplicateRate = random.NextDouble() * 0.05,
            ReorderRate = random.NextDouble() * 0.1,
            ReorderDelay = TimeSpan.FromMilliseconds(10),
        };
        var options = new TestbedOptions
        {
            Service = service,
            SessionBytes = random.Next(16, 65) * 4096,
            SnapshotEvery = random.Next(1, 17),
            ControlLatency = TimeSpan.FromMilliseconds(random.Next(1, 20)),
        };
        var bed = new MigrationTestbed(seed, conditions, options);
        var migrations = random.Next(0, 11);
        var visited = new HashSet<int>();
        var nextAt = bed.Network.Now + TimeSpan.FromMilliseconds(random.Next(0, 200));
        var limit = bed.Network.Now + TimeSpan.FromMinutes(30);

        // Its own generator, so the reader does not shift the draws of the rest of the schedule.
        var readerRandom = new Random(unchecked((seed * 31) + 7));
        var reader = (ClientReader)readerRandom.Next(3);
        var toggleReaderAt = bed.Network.Now + ReaderPhase(reader, paused: false, readerRandom);
        var windowClosedAt = options.Tcp.ReceiveBufferSize - options.Tcp.MaxSegmentSize;
        failure = null;
        while (!bed.Finished)
        {
            if (reader != ClientReader.FullSpeed && bed.Network.Now >= toggleReaderAt)
            {
                bed.ClientApp.Paused = !bed.ClientApp.Paused;
                toggleReaderAt = bed.Network.Now + ReaderPhase(reader, bed.ClientApp.Paused, readerRandom);
            }

            if (bed.Network.Now > limit)
            {
                failure = "did not finish (stall): " + bed.Describe();
                return bed;
            }

            if (!bed.Network.Step())
            {
                if (bed.ClientApp.Paused)
                {
                    // Nothing happens until the reader wakes up (a request/response client that stopped writing too).
                    bed.ClientApp.Paused = false;
                    toggleReaderAt = bed.Network.Now + ReaderPhase(reader, paused: false, readerRandom);
                    continue;
                }

                failure = "did not finish (deadlock): " + bed.Describe();
                return bed;
            }

            if (migrations > 0 && bed.Network.Now >= nextAt)
            {
                var target = random.Next(bed.Servers.Count);
                var origin = bed.Servers[bed.IndexOf(bed.Connection.CurrentServer)].Host.Connections.LastOrDefault(c => !c.IsMigratedAway && c.State != TcpState.Closed);
                var duringHandshake = bed.Servers.Any(x => x.Host.Connections.Any(c => c.AwaitingMigrationHandshake && c.State != TcpState.Closed));
                var finExchange = bed.Connection.State != TcpState.Established;
                var retransmitting = origin is { BytesUnacknowledged: > 0 } && origin.Stats.Retransmissions > 0;
                var scoreboardHoles = origin is { SackedSegments: > 0 } || bed.Connection.CurrentControlBlock.SackedSegments > 0;
                var sackAgreed = origin is null || origin.SackAgreed;
                var windowClosed = bed.Connection.CurrentControlBlock.BytesReadable > windowClosedAt;
                var unreadOfAServerLeft = bed.Connection.BytesReadable > bed.Connection.CurrentControlBlock.BytesReadable;
                if (bed.Migrate(target))
                {
                    migrations--;
                    totals.DuringPreviousHandshake += duringHandshake ? 1 : 0;
                    totals.DuringFinExchange += finExchange ? 1 : 0;
                    totals.WhileOriginRetransmitting += retransmitting ? 1 : 0;
                    totals.WithScoreboardHoles += scoreboardHoles ? 1 : 0;
                    totals.WithoutSack += sackAgreed ? 0 : 1;
                    totals.BackToAServerLeft += visited.Contains(target) ? 1 : 0;
                    totals.WithClientWindowClosed += windowClosed ? 1 : 0;
                    totals.WithUnreadBytesOfAServerLeft += unreadOfAServerLeft ? 1 : 0;
                    visited.Add(bed.IndexOf(bed.Connection.CurrentServer));
                }

                nextAt = bed.Network.Now + TimeSpan.FromMilliseconds(random.Next(1, 150));
            }
        }

        var stats = bed.Connection.Stats;
        totals.MigrationsStarted += stats.MigrationsStarted;
        totals.MigrationsCompleted += stats.MigrationsCompleted;
        totals.MigrationsFailed += stats.MigrationsFailed;
        foreach (var e in bed.Client.MigrationEvents.Where(e => e.Kind == Mtcp.Stack.Migration.MigrationEventKind.Failed))
        {
            totals.FailureReasons[e.Detail] = totals.FailureReasons.GetValueOrDefault(e.Detail) + 1;
        }

        foreach (var reject in bed.Control.Delivered.Select(d => d.Message).OfType<Mtcp.Wire.Control.StateReject>().Where(r => r.Reason == Mtcp.Wire.Control.StateRejectReason.AuthFailed))
        {
            totals.AuthFailures[reject.Diagnostic] = totals.AuthFailures.GetValueOrDefault(reject.Diagnostic) + 1;
        }

        foreach (var server in bed.Servers)
        {
            totals.DuplicateSpecialSyns += server.Host.Stats.DuplicateSpecialSyns;
            foreach (var (reason, count) in server.Host.Stats.RefusalReasons)
            {
                totals.RejectReasons[reason] = totals.RejectReasons.GetValueOrDefault(reason) + count;
            }
        }

        totals.LargestStateReply = Math.Max(totals.LargestStateReply, bed.Servers.Max(x => x.Host.Stats.LargestStateReply));
        if (bed.ClientApp.FirstMismatch >= 0 || bed.ClientApp.Received != bed.Expected.Length)
        {
            failure = $"stream differs at {bed.ClientApp.FirstMismatch}: " + bed.Describe();
        }

        return bed;
    }

    private static TimeSpan ReaderPhase(ClientReader reader, bool paused, Random random) => (reader, paused) switch
    {
        (ClientReader.Slow, false) => TimeSpan.FromMilliseconds(random.Next(1, 4)),
        (ClientReader.Slow, true) => TimeSpan.FromMilliseconds(random.Next(5, 41)),
        (ClientReader.Stalling, false) => TimeSpan.FromMilliseconds(random.Next(20, 201)),
        (ClientReader.Stalling, true) => TimeSpan.FromMilliseconds(random.Next(100, 801)),
        // A full-speed reader never pauses: beyond any session's 30-minute limit.
        _ => TimeSpan.FromHours(1),
    };
}

using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Takeover from a replica, sans-IO, in the exact situations the random crash schedules found: the serving node dies,
/// its buddy answers the client's special SYN from its replica, and the stream must go on byte for byte.
/// </summary>
[Trait("Category", "Failover")]
public sealed class TakeoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    private static readonly ClientFailover Failover = new()
    {
        ProbeInterval = TimeSpan.FromMilliseconds(500),
        SilentAfter = 3,
        SpecialSynTimeout = TimeSpan.FromSeconds(3),
        GiveUpAfter = TimeSpan.FromSeconds(10),
    };

    /// <summary>
    /// Crash schedule seed 90: the replica's snd_max_seen lags the client's rcv_nxt (it is the SND.UNA of the last whole
    /// state), so β is not zero. The client's ACK carrying β is lost; its next segment is a keep-alive probe, below the
    /// new server's RCV.NXT. RFC 9293 answers that with a bare ACK, which the client took for the proof that β had
    /// arrived: it stopped sending β, the handshake completed on a later ACK without it, and the new server sent its
    /// write-buffer state from snd_max_seen, β bytes behind the client's rcv_nxt. The reinstated endpoint answers
    /// with its SYN+ACK instead, and the client's reply carries β.
    /// </summary>
    [Fact]
    public void A_lost_beta_ack_followed_by_a_keep_alive_probe_must_still_deliver_beta_to_the_new_server()
    {
        var bed = new MigrationTestbed(90, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SessionBytes = 512 * 1024, Replication = true });
        bed.Connection.Failover = Failover;
        var s1 = bed.Servers[0];
        var s2 = bed.Servers[1];
        Run(bed, () => bed.ClientApp.Received >= 64 * 1024 && s2.Replication!.Store.TryGetState(bed.Connection.Cid, out _, out _));

        // The client stops reading for a while, so that the new server's SYN+ACK finds it quiet and it probes.
        bed.ClientApp.Paused = true;
        var betaAcksLost = 0;
        var probesSeen = 0;
        var synAcksLost = 0;
        bed.Network.Drop = packet =>
        {
            if (packet.Source == bed.Client.Address && packet.Destination == s2.Address && !packet.Header.Has(TcpFlags.Syn) && packet.Header.Options.Beta is not null)
            {
                // The first segment carrying β is the ACK of the SYN+ACK: lost. The next one is the probe.
                if (betaAcksLost == 0)
                {
                    betaAcksLost++;
                    return true;
                }

                probesSeen++;
                return false;
            }

            // The new server's SYN+ACK retransmissions are lost until the client has probed.
            if (packet.Source == s2.Address && packet.Header.Has(TcpFlags.Syn | TcpFlags.Ack) && betaAcksLost > 0 && probesSeen == 0)
            {
                synAcksLost++;
                return true;
            }

            return false;
        };

        var received = bed.ClientApp.Received;
        bed.Crash(0);
        bed.DetectCrash(0);
        Run(bed, () => probesSeen > 0);
        Assert.Equal(bed.Endpoint(1), bed.Connection.CurrentServer);
        bed.ClientApp.Paused = false;
        bed.Network.Drop = null;

        Assert.True(bed.RunToFinish(Limit), bed.Describe());
        output.WriteLine($"{bed.Describe()}; the client had {received} bytes at the crash, {synAcksLost} SYN+ACKs lost");
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(bed.Expected.Length, bed.ClientApp.Received);
        Assert.Equal(1, s2.Replication!.TakenOver);
        Assert.True(s1.IsDown);
    }

    /// <summary>
    /// Crash schedule seeds 157 and 181: the serving node dies before any segment carrying TCP_MIGRATE reached the
    /// client (its SYN+ACK has no room for an alternate beside the migration secret, and what followed was lost), so
    /// the client finds it silent knowing no alternate. It waits until the give-up time, and the buddy's takeover
    /// MIGRATE_TRIGGER, sent when the cluster's failure detector notices after the client did, takes it over.
    /// </summary>
    [Fact]
    public void A_client_that_knows_no_alternate_when_its_server_dies_must_wait_for_the_buddys_takeover_trigger()
    {
        var (bed, silentAt) = CrashBeforeAnyAlternateReachesTheClient(157);

        bed.DetectCrash(0);
        Assert.True(bed.RunToFinish(Limit), bed.Describe());
        output.WriteLine($"{bed.Describe()}; silent at {silentAt}");

        var events = bed.Client.MigrationEvents.Select(e => (e.Kind, e.Destination)).ToList();
        Assert.Equal([(MigrationEventKind.ServerSilent, bed.Endpoint(0)), (MigrationEventKind.TriggerAccepted, bed.Endpoint(1)), (MigrationEventKind.Completed, bed.Endpoint(1))], events);
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(bed.Expected.Length, bed.ClientApp.Received);
        Assert.Equal(1, bed.Servers[1].Replication!.TakenOver);
    }

    /// <summary>
    /// As above, and the takeover trigger is lost too: nothing tells the client where the connection can go, so it is
    /// aborted at the give-up time, the application told it timed out, and not one wrong byte delivered.
    /// </summary>
    [Fact]
    public void A_client_that_knows_no_alternate_and_gets_no_trigger_must_time_out_at_the_give_up_time()
    {
        var (bed, silentAt) = CrashBeforeAnyAlternateReachesTheClient(181);
        bed.Network.Drop = packet => packet.Destination == bed.Client.Address && packet.Header.Options.MigrateTrigger is not null;

        bed.DetectCrash(0);
        Run(bed, () => bed.ClientApp.Events.Contains(TcpEvent.TimedOut));
        var waited = bed.Network.Now - silentAt;
        output.WriteLine($"{bed.Describe()}; timed out {waited.TotalSeconds:0.000} s after the server fell silent");

        Assert.Equal(MigrationEventKind.FailoverAbandoned, bed.Client.MigrationEvents[^1].Kind);
        Assert.Equal("no alternate server of this service is known", bed.Client.MigrationEvents[^1].Detail);
        Assert.InRange(waited, Failover.GiveUpAfter - Failover.SpecialSynTimeout, Failover.GiveUpAfter);
        Assert.Equal(TcpState.Closed, bed.Connection.State);
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(0, bed.Servers[1].Replication!.TakenOver);
    }

    /// <summary>
    /// Crash schedule seed 1899 (of 2,000): the client, knowing no alternate, found its server silent and was migrating
    /// to a server that never answers when the buddy's takeover trigger came. The trigger cannot start a second
    /// migration, but the server it names is an alternate from then on, tried at the next failover pass.
    /// </summary>
    [Fact]
    public void A_takeover_trigger_that_comes_during_another_migration_must_name_an_alternate_for_the_next_pass()
    {
        var (bed, _) = CrashBeforeAnyAlternateReachesTheClient(1899);
        var s3 = bed.Servers[2].Address;
        bed.Network.Drop = packet => packet.Source == s3 || packet.Destination == s3;
        Assert.True(bed.Migrate(2), bed.Describe());

        bed.DetectCrash(0);
        Run(bed, () => bed.Connection.AlternateServers.Contains(bed.Endpoint(1)));
        Assert.True(bed.Connection.IsMigrating);
        Assert.True(bed.RunToFinish(Limit), bed.Describe());
        output.WriteLine(bed.Describe());

        var events = bed.Client.MigrationEvents.Select(e => (e.Kind, e.Destination)).ToList();
        Assert.Contains((MigrationEventKind.Failed, bed.Endpoint(2)), events);
        Assert.Contains((MigrationEventKind.FailoverTo, bed.Endpoint(1)), events);
        Assert.Equal((MigrationEventKind.Completed, bed.Endpoint(1)), events[^1]);
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(bed.Expected.Length, bed.ClientApp.Received);
    }

    /// <summary>
    /// A request/response connection whose server's segments after the SYN+ACK never reach the client, replicated to
    /// its buddy; then the server dies and the client falls silent. Returns when the client found it silent.
    /// </summary>
    private static (MigrationTestbed Bed, Instant SilentAt) CrashBeforeAnyAlternateReachesTheClient(int seed)
    {
        var bed = new MigrationTestbed(seed, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, Replication = true });
        bed.Connection.Failover = Failover;
        var s1 = bed.Servers[0].Address;
        bed.Network.Drop = packet => packet.Source == s1 && !packet.Header.Has(TcpFlags.Syn);
        Run(bed, () => bed.Connection.State == TcpState.Established && bed.Servers[1].Replication!.Store.TryGetState(bed.Connection.Cid, out _, out _));
        Assert.DoesNotContain(bed.Connection.AlternateServers, server => server.Port == MigrationTestbed.ServicePort);

        bed.Crash(0);
        bed.Network.Drop = null;
        Instant? silentAt = null;
        var policy = bed.Client.OnMigrationEvent;
        bed.Client.OnMigrationEvent = (at, e) =>
        {
            silentAt ??= e.Kind == MigrationEventKind.ServerSilent ? at : null;
            policy(at, e);
        };
        Run(bed, () => silentAt is not null);
        Assert.Empty(bed.Connection.AlternateServers);
        return (bed, silentAt!.Value);
    }

    private static void Run(MigrationTestbed bed, Func<bool> condition) => Assert.True(bed.RunUntil(condition, Limit), bed.Describe());
}

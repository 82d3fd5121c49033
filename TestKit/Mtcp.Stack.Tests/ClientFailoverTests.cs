using System.Runtime.CompilerServices;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The client side of failover (<see cref="ClientFailover"/>): a client whose server stops answering moves the
/// connection to an alternate on its own, or, when none takes it, tells its application within a bounded time; a
/// server that is only quiet is probed and kept, and so is one whose segments a slow reader's closed window cannot take.
/// </summary>
[Trait("Category", "Migration")]
public sealed class ClientFailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);
    private static readonly ServerEndpoint S1 = MigrationTestbed.EndpointOf(0);
    private static readonly ServerEndpoint S2 = MigrationTestbed.EndpointOf(1);
    private static readonly ServerEndpoint S3 = MigrationTestbed.EndpointOf(2);

    private static readonly ClientFailover Failover = new()
    {
        ProbeInterval = TimeSpan.FromSeconds(2),
        SilentAfter = 3,
        SpecialSynTimeout = TimeSpan.FromSeconds(1),
        GiveUpAfter = TimeSpan.FromSeconds(5),
    };

    /// <summary>The documented worst case from the last byte heard to the silence: probe-interval + silent-after x probe-interval / 2.</summary>
    private static readonly TimeSpan SilenceBound = Failover.ProbeInterval + (Failover.SilentAfter * Failover.ProbeInterval / 2);

    [Theory]
    [InlineData(ReferenceService.Stream)]
    [InlineData(ReferenceService.RequestResponse)]
    public void A_client_cut_off_from_its_server_must_fail_over_to_an_alternate_and_keep_the_stream_exact(ReferenceService service)
    {
        var bed = new MigrationTestbed(11, LinkConditions.Perfect, new TestbedOptions { Service = service });
        bed.Connection.Failover = Failover;
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);

        // The client's path to S1 breaks both ways; the servers still reach each other, so S1 can hand its state over.
        bed.Network.Drop = packet => IsBetween(packet, bed.Client.Address, S1.Address);
        Finish(bed);

        Assert.Equal(S2, bed.Connection.CurrentServer);
        Assert.Equal(1, bed.Connection.Stats.Failovers);
        var kinds = bed.Client.MigrationEvents.Select(e => e.Kind).ToList();
        Assert.Equal([MigrationEventKind.ServerSilent, MigrationEventKind.FailoverTo, MigrationEventKind.Completed], kinds);
        Assert.Equal(S1, bed.Client.MigrationEvents[0].Destination);
    }

    [Fact]
    public void A_client_no_server_answers_must_try_the_alternates_until_the_give_up_time_then_time_out_within_the_bound()
    {
        var bed = new MigrationTestbed(12, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SessionBytes = 1 << 20 });
        bed.Connection.Failover = Failover;
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);
        var cutAt = bed.Network.Now;

        bed.Network.Drop = packet => packet.Source == bed.Client.Address || packet.Destination == bed.Client.Address;
        Run(bed, () => bed.ClientApp.Events.Contains(TcpEvent.TimedOut));

        var waited = bed.Network.Now - cutAt;
        output.WriteLine($"timed out {waited.TotalSeconds:0.000} s after the cut");
        var events = bed.Client.MigrationEvents.Select(e => (e.Kind, e.Destination)).ToList();
        Assert.Equal((MigrationEventKind.ServerSilent, S1), events[0]);
        Assert.Equal(
            [(MigrationEventKind.FailoverTo, S2), (MigrationEventKind.Failed, S2), (MigrationEventKind.FailoverTo, S3), (MigrationEventKind.Failed, S3)],
            events.Skip(1).Take(4));
        Assert.Equal((MigrationEventKind.FailoverAbandoned, S1), events[^1]);
        Assert.Contains("none of 2 alternate servers", bed.Client.MigrationEvents[^1].Detail, StringComparison.Ordinal);

        // Passes a special SYN timeout apart until the give-up time (5 s after the silence): S2 is tried again. The
        // silence itself took three backed-off retransmission timeouts with data in flight (about 7.6 s here).
        Assert.True(events.Count(e => e == (MigrationEventKind.FailoverTo, S2)) >= 2, string.Join(", ", events));
        Assert.InRange(waited, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(13));
        Assert.Equal(TcpState.Closed, bed.Connection.State);
        Assert.Equal(1, bed.Connection.Stats.FailoversAbandoned);
    }

    [Fact]
    public void An_alternate_that_cannot_take_the_connection_at_the_first_pass_must_be_tried_again_before_the_give_up_time()
    {
        // As a buddy whose failure detector has not yet marked the server unreachable: the client finds S1 silent
        // first, and S2 answers only later.
        var bed = new MigrationTestbed(15, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SessionBytes = 256 * 1024 });
        bed.Connection.Failover = Failover;
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);
        var s2From = TimeSpan.MaxValue;
        bed.Network.Drop = packet =>
            IsBetween(packet, bed.Client.Address, S1.Address)
            || IsBetween(packet, bed.Client.Address, S3.Address)
            || (IsBetween(packet, bed.Client.Address, S2.Address) && bed.Network.Now - Instant.Zero < s2From);
        Run(bed, () => bed.Client.MigrationEvents.Any(e => e.Kind == MigrationEventKind.Failed && e.Destination == S3));
        s2From = bed.Network.Now - Instant.Zero;

        Finish(bed);

        Assert.Equal(S2, bed.Connection.CurrentServer);
        var kinds = bed.Client.MigrationEvents.Select(e => (e.Kind, e.Destination)).ToList();
        Assert.Equal(2, kinds.Count(e => e == (MigrationEventKind.FailoverTo, S2)));
        Assert.Equal(0, bed.Connection.Stats.FailoversAbandoned);
    }

    [Fact]
    public void A_silent_server_heard_again_before_an_alternate_took_over_must_keep_the_connection()
    {
        // As an overloaded node: it answers nothing for seconds, and the alternates cannot take the connection (a buddy
        // whose state request to the live origin went unanswered refuses it). Giving up would abort a live connection.
        var bed = new MigrationTestbed(17, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SessionBytes = 256 * 1024 });
        bed.Connection.Failover = Failover;
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);
        var s1Answers = false;
        bed.Network.Drop = packet => packet.Source == bed.Client.Address || packet.Destination == bed.Client.Address
            ? !(s1Answers && IsBetween(packet, bed.Client.Address, S1.Address))
            : false;
        Run(bed, () => bed.Connection.Stats.ServersFallenSilent > 0);
        s1Answers = true;

        Finish(bed);

        Assert.Equal(S1, bed.Connection.CurrentServer);
        var events = bed.Client.MigrationEvents.Select(e => (e.Kind, e.Destination)).ToList();
        Assert.Equal((MigrationEventKind.ServerSilent, S1), events[0]);
        Assert.Contains((MigrationEventKind.ServerHeardAgain, S1), events);
        Assert.DoesNotContain(events, e => e.Kind is MigrationEventKind.FailoverAbandoned or MigrationEventKind.Completed);
        Assert.Equal(1, bed.Connection.Stats.FailoversCalledOff);
        Assert.Equal(0, bed.Connection.Stats.FailoversAbandoned);
        Assert.DoesNotContain(TcpEvent.TimedOut, bed.ClientApp.Events);
    }

    [Fact]
    public void A_planned_migration_to_a_silent_destination_must_fail_at_the_destination_timeout_and_the_stream_go_on()
    {
        var bed = new MigrationTestbed(14, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SessionBytes = 256 * 1024 });
        bed.Connection.Failover = Failover with { DestinationTimeout = TimeSpan.FromSeconds(3) };
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);

        // S2 is gone: nothing reaches it or comes from it.
        bed.Network.Drop = packet => packet.Source == S2.Address || packet.Destination == S2.Address;
        var startedAt = bed.Network.Now;
        Assert.True(bed.Migrate(1), bed.Describe());
        Run(bed, () => bed.Client.MigrationEvents.Any(e => e.Kind == MigrationEventKind.Failed));
        var waited = bed.Network.Now - startedAt;
        output.WriteLine($"the migration failed {waited.TotalSeconds:0.000} s after it started");

        Assert.InRange(waited, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3.5));
        Assert.Equal(S1, bed.Connection.CurrentServer);
        Finish(bed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_quiet_server_that_answers_probes_must_keep_the_connection()
    {
        var bed = new MigrationTestbed(13, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        bed.Connection.Failover = Failover;
        Run(bed, () => bed.ClientApp.Received >= 4 * 1024);
        bed.ClientApp.Paused = true;
        var quietFrom = bed.Network.Now;

        Run(bed, () => bed.Network.Now - quietFrom > TimeSpan.FromSeconds(30));

        Assert.True(bed.Connection.CurrentControlBlock.Stats.KeepAliveProbes >= 10, $"{bed.Connection.CurrentControlBlock.Stats.KeepAliveProbes} probes");
        Assert.Empty(bed.Client.MigrationEvents);
        bed.ClientApp.Paused = false;
        Finish(bed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_quiet_server_that_stopped_answering_must_be_found_by_probes()
    {
        var bed = new MigrationTestbed(14, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        bed.Connection.Failover = Failover;
        Run(bed, () => bed.ClientApp.Received >= 4 * 1024);
        bed.ClientApp.Paused = true;
        var tcb = bed.Connection.CurrentControlBlock;
        Run(bed, () => bed.ClientApp.Sent > 0 && tcb.SendUnacknowledged == tcb.WriteEnd && bed.Network.PacketsInFlight == 0);

        bed.Network.Drop = packet => IsBetween(packet, bed.Client.Address, S1.Address);
        Run(bed, () => bed.Client.MigrationEvents.Count > 0);

        Assert.Equal(MigrationEventKind.ServerSilent, bed.Client.MigrationEvents[0].Kind);
        Assert.Contains("keep-alive probes unanswered", bed.Client.MigrationEvents[0].Detail, StringComparison.Ordinal);
        bed.ClientApp.Paused = false;
        Finish(bed);
        Assert.Equal(S2, bed.Connection.CurrentServer);
    }

    [Theory]
    [InlineData(ReferenceService.Stream)]
    [InlineData(ReferenceService.File)]
    public void A_download_from_a_replicating_server_must_end_with_the_clients_FIN_acknowledged_and_no_failover(ReferenceService service)
    {
        // The server closes first; the client's FIN then reaches it in FIN-WAIT-2, and TIME-WAIT releases the replica,
        // so the replicated point never reaches that FIN. Its acknowledgment must not wait for it: unanswered, the
        // client retransmitted the FIN from LAST-ACK until it took its live server for a silent one.
        var bed = new MigrationTestbed(16, LinkConditions.Perfect, new TestbedOptions { Service = service, SessionBytes = 256 * 1024, Replication = true });
        bed.Connection.Failover = Failover;
        Run(bed, () => bed.ClientApp.CloseCalled);
        var closedAt = bed.Network.Now;
        Run(bed, () => bed.Connection.State == TcpState.Closed);
        var closing = bed.Network.Now - closedAt;
        output.WriteLine($"from the client's close to CLOSED: {closing.TotalMilliseconds:0.0} ms");

        Finish(bed);
        Assert.Empty(bed.Client.MigrationEvents);
        Assert.DoesNotContain(TcpEvent.TimedOut, bed.ClientApp.Events);
        Assert.Equal(0, bed.Connection.RetransmissionTimeouts);
        Assert.True(closing < TimeSpan.FromSeconds(1), $"the client closed {closing.TotalSeconds:0.000} s after its FIN");
    }

    [Fact]
    public void Failover_off_must_leave_a_silent_server_to_the_retransmission_limit()
    {
        var bed = new MigrationTestbed(15, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        Run(bed, () => bed.ClientApp.Received >= 4 * 1024);
        bed.Network.Drop = packet => IsBetween(packet, bed.Client.Address, S1.Address);

        bed.RunUntil(() => bed.Connection.State == TcpState.Closed, TimeSpan.FromSeconds(60));

        Assert.Empty(bed.Client.MigrationEvents);
        Assert.Equal(0, bed.Connection.CurrentControlBlock.Stats.KeepAliveProbes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_reader_that_stops_until_its_window_is_zero_must_keep_its_live_server(bool replication)
    {
        var bed = new MigrationTestbed(31, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SessionBytes = 256 * 1024, Replication = replication });
        var window = CloseTheWindow(bed);

        // Far longer than silent-after backed-off RTOs and many keep-alive intervals; the server probes the zero window.
        var closedAt = bed.Network.Now;
        Run(bed, () => bed.Network.Now - closedAt > TimeSpan.FromSeconds(30));

        var tcb = bed.Connection.CurrentControlBlock;
        var probes = bed.Sessions.Sum(s => s.Connection.Stats.ZeroWindowProbes);
        output.WriteLine($"closed for 30 s: {probes} zero-window probes from the server, {tcb.Stats.KeepAliveProbes} keep-alives from the client");
        Assert.Equal(0, window.Value);
        Assert.True(probes >= 2, $"{probes} zero-window probes");
        Assert.Empty(bed.Client.MigrationEvents);
        Assert.Equal(0, bed.Connection.Stats.ServersFallenSilent);

        bed.ClientApp.ReadBudget = null;
        Finish(bed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
        Assert.Empty(bed.Client.MigrationEvents);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_server_that_dies_must_be_found_silent_within_the_bound_whether_or_not_the_window_is_closed(bool windowClosed)
    {
        var bed = new MigrationTestbed(32, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SessionBytes = 1 << 20 });
        if (windowClosed)
        {
            CloseTheWindow(bed);
            Run(bed, () => bed.Sessions.Sum(s => s.Connection.Stats.ZeroWindowProbes) >= 1);
        }
        else
        {
            bed.Connection.Failover = Failover;
            Run(bed, () => bed.ClientApp.Received >= 64 * 1024);
        }

        // The client's path to S1 breaks both ways; S1 still reaches the other servers and hands its state over.
        var cutAt = bed.Network.Now;
        bed.Network.Drop = packet => IsBetween(packet, bed.Client.Address, S1.Address);
        Run(bed, () => bed.Connection.Stats.ServersFallenSilent > 0);
        var waited = bed.Network.Now - cutAt;
        output.WriteLine($"window {(windowClosed ? "closed" : "open")}: S1 found silent {waited.TotalSeconds:0.000} s after the cut ({bed.Client.MigrationEvents[0].Detail})");
        Assert.InRange(waited, TimeSpan.Zero, SilenceBound);

        bed.ClientApp.ReadBudget = null;
        Finish(bed);
        Assert.Equal(S2, bed.Connection.CurrentServer);
        Assert.Equal(
            [MigrationEventKind.ServerSilent, MigrationEventKind.FailoverTo, MigrationEventKind.Completed],
            bed.Client.MigrationEvents.Select(e => e.Kind));
    }

    /// <summary>
    /// The client reads 16 KiB and then nothing, until the window it advertises to S1 is zero and S1 knows it.
    /// Returns the window of the client's last segment to S1, kept up to date.
    /// </summary>
    private static StrongBox<int> CloseTheWindow(MigrationTestbed bed)
    {
        bed.Connection.Failover = Failover;
        bed.ClientApp.ReadBudget = 16 * 1024;
        var window = new StrongBox<int>(-1);
        bed.Network.OnDeliver = (_, packet) =>
        {
            if (packet.Source == bed.Client.Address && packet.Destination == S1.Address)
            {
                window.Value = packet.Header.Window;
            }
        };
        Run(bed, () => window.Value == 0 && bed.Sessions.Any(s => s.Connection.SendWindow == 0));
        return window;
    }

    private static bool IsBetween(in SimPacket packet, IpAddress a, IpAddress b) =>
        (packet.Source == a && packet.Destination == b) || (packet.Source == b && packet.Destination == a);

    private static void Run(MigrationTestbed bed, Func<bool> condition) => Assert.True(bed.RunUntil(condition, Limit), bed.Describe());

    private void Finish(MigrationTestbed bed)
    {
        Assert.True(bed.RunToFinish(Limit), bed.Describe());
        output.WriteLine(bed.Describe());
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(bed.Expected.Length, bed.ClientApp.Received);
    }
}

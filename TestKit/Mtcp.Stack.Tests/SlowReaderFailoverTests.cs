using System.Runtime.CompilerServices;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// A slow reader (as <c>curl --limit-rate</c> behind the agent) closes the client's receive window; the client's
/// failover must not take its live server for a silent one then, and must still find a server that really died.
/// </summary>
[Trait("Category", "Migration")]
public sealed class SlowReaderFailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);
    private static readonly ServerEndpoint S1 = MigrationTestbed.EndpointOf(0);
    private static readonly ServerEndpoint S2 = MigrationTestbed.EndpointOf(1);

    private static readonly ClientFailover Failover = new()
    {
        ProbeInterval = TimeSpan.FromSeconds(2),
        SilentAfter = 3,
        SpecialSynTimeout = TimeSpan.FromSeconds(1),
        GiveUpAfter = TimeSpan.FromSeconds(4),
    };

    /// <summary>The documented worst case from the last byte heard to the silence: probe-interval + silent-after x probe-interval / 2.</summary>
    private static readonly TimeSpan SilenceBound = Failover.ProbeInterval + (Failover.SilentAfter * Failover.ProbeInterval / 2);

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

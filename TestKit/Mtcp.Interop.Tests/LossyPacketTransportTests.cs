using System.Buffers.Binary;
using System.Diagnostics;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Interop.Tests;

/// <summary>
/// The impairing decorator over the in-memory fabric: each impairment of <see cref="LinkConditions"/> alone, its
/// counters, reproducibility per seed, per-link conditions, concurrent senders and disposal. Segments carry their
/// index, so the receiver can tell which arrived, how often and in what order.
/// </summary>
[Trait("Category", "Interop")]
public sealed class LossyPacketTransportTests
{
    private static readonly IpAddress AddressA = IpAddress.Parse("10.0.0.1");
    private static readonly IpAddress AddressB = IpAddress.Parse("10.0.0.2");
    private static readonly IpAddress AddressC = IpAddress.Parse("10.0.0.3");

    /// <summary>
    /// No delay, so that a segment is in the receiver's queue when <see cref="IPacketTransport.Send"/> returns, and no
    /// MTU below the fabric's largest segment.
    /// </summary>
    private static readonly LinkConditions Instant = LinkConditions.Perfect with { Latency = TimeSpan.Zero, Mtu = 1 << 17 };

    [Fact]
    public void Perfect_link_must_carry_every_segment_intact_and_count_it()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = new LossyPacketTransport(fabric.Attach(AddressA), Instant, seed: 1);
        using var b = fabric.Attach(AddressB);

        TransportAssertions.AssertCarries(a, b, seed: 3, 20, 1460, 60 * 1024);
        Assert.Equal(3, a.Stats.Sent);
        Assert.Equal(3, a.Stats.Forwarded);
        Assert.Equal(0, a.Stats.Lost + a.Stats.Duplicated + a.Stats.Reordered + a.Stats.Blackholed);
        Assert.Equal(AddressA, a.LocalAddress);
    }

    [Fact]
    public void Receive_must_pass_through_to_the_decorated_transport()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = fabric.Attach(AddressA);
        using var b = new LossyPacketTransport(fabric.Attach(AddressB), Instant with { LossRate = 1 }, seed: 1);

        // Loss applies to what b sends, not to what it receives.
        TransportAssertions.AssertCarries(a, b, seed: 4, 20, 1000);
    }

    [Fact]
    public void Loss_must_drop_about_its_rate_and_the_same_segments_for_the_same_seed()
    {
        const int Segments = 2000;
        var first = Arrivals(Instant with { LossRate = 0.2 }, seed: 7, Segments, out var stats);
        var again = Arrivals(Instant with { LossRate = 0.2 }, seed: 7, Segments, out _);
        var other = Arrivals(Instant with { LossRate = 0.2 }, seed: 8, Segments, out _);

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.Equal(Segments - first.Count, stats.Lost);
        Assert.InRange(stats.Lost, Segments * 0.15, Segments * 0.25);
        Assert.Equal(first.Count, stats.Forwarded);
    }

    [Fact]
    public void Duplication_must_deliver_a_second_copy_and_count_it()
    {
        const int Segments = 500;
        var arrivals = Arrivals(Instant with { DuplicateRate = 1 }, seed: 1, Segments, out var stats);
        Assert.Equal(2 * Segments, arrivals.Count);
        Assert.All(arrivals.CountBy(i => i), pair => Assert.Equal(2, pair.Value));
        Assert.Equal(Segments, stats.Duplicated);

        var some = Arrivals(Instant with { DuplicateRate = 0.05 }, seed: 2, 2000, out stats);
        Assert.Equal(2000 + stats.Duplicated, some.Count);
        Assert.InRange(stats.Duplicated, 50, 150);
    }

    [Fact]
    public void Latency_must_delay_every_segment_without_delaying_the_sender()
    {
        // Long enough that 100 sends on a loaded machine stay well inside it.
        var latency = TimeSpan.FromSeconds(1);
        var fabric = new InMemoryPacketFabric();
        using var a = new LossyPacketTransport(fabric.Attach(AddressA), LinkConditions.Perfect with { Latency = latency }, seed: 1);
        using var b = fabric.Attach(AddressB);
        var started = Stopwatch.StartNew();
        for (var i = 0; i < 100; i++)
        {
            Assert.True(a.Send(AddressB, Indexed(i)));
        }

        // A blocking send would have taken the latency at least once.
        Assert.True(started.Elapsed < latency, $"100 sends took {started.Elapsed.TotalMilliseconds:F1} ms");
        var buffer = new byte[b.ReceiveBufferLength];
        Assert.Equal(0, IndexOf(TransportAssertions.ReceiveOne(b, buffer, AddressA)));
        Assert.True(started.Elapsed >= latency, $"the first segment arrived after {started.Elapsed.TotalMilliseconds:F1} ms");

        // Equal delays keep the sending order.
        for (var i = 1; i < 100; i++)
        {
            Assert.Equal(i, IndexOf(TransportAssertions.ReceiveOne(b, buffer, AddressA)));
        }
    }

    [Fact]
    public void Reordering_must_let_later_segments_overtake_held_back_ones_and_lose_none()
    {
        const int Segments = 300;
        var conditions = LinkConditions.Perfect with { Latency = TimeSpan.FromMilliseconds(1), ReorderRate = 0.2, ReorderDelay = TimeSpan.FromMilliseconds(30) };
        var arrivals = Arrivals(conditions, seed: 5, Segments, out var stats, spacing: TimeSpan.FromMilliseconds(1));

        Assert.Equal(Enumerable.Range(0, Segments), arrivals.Order());
        Assert.InRange(stats.Reordered, 30, 90);
        Assert.Contains(arrivals.Zip(arrivals.Skip(1)), pair => pair.Second < pair.First);
    }

    [Fact]
    public void Jitter_must_reorder_segments_sent_closer_together_than_it()
    {
        const int Segments = 200;
        var conditions = LinkConditions.Perfect with { Latency = TimeSpan.FromMilliseconds(1), Jitter = TimeSpan.FromMilliseconds(20) };
        var arrivals = Arrivals(conditions, seed: 6, Segments, out var stats);

        Assert.Equal(Enumerable.Range(0, Segments), arrivals.Order());
        Assert.Contains(arrivals.Zip(arrivals.Skip(1)), pair => pair.Second < pair.First);
        Assert.Equal(0, stats.Reordered);
    }

    [Fact]
    public void A_blackhole_period_must_drop_everything_on_its_link_until_it_ends()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = new LossyPacketTransport(fabric.Attach(AddressA), Instant, seed: 1);
        using var b = fabric.Attach(AddressB);
        using var c = fabric.Attach(AddressC);
        var buffer = new byte[b.ReceiveBufferLength];

        a.StartBlackhole(TimeSpan.FromMilliseconds(150), AddressB);
        a.Send(AddressB, Indexed(0));
        a.Send(AddressC, Indexed(1));
        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(50), out _));
        Assert.Equal(1, IndexOf(TransportAssertions.ReceiveOne(c, buffer, AddressA)));
        Assert.Equal(1, a.Stats.Blackholed);
        Assert.Equal(1, a.LinkStats(AddressB).Blackholed);
        Assert.Equal(0, a.LinkStats(AddressC).Blackholed);

        Thread.Sleep(200);
        a.Send(AddressB, Indexed(2));
        Assert.Equal(2, IndexOf(TransportAssertions.ReceiveOne(b, buffer, AddressA)));

        // Without a destination, every link is cut.
        a.StartBlackhole(TimeSpan.FromSeconds(10));
        a.Send(AddressB, Indexed(3));
        a.Send(AddressC, Indexed(4));
        Assert.Equal(3, a.Stats.Blackholed);
    }

    [Fact]
    public void Blackhole_rate_must_start_periods_that_swallow_every_later_segment_of_the_period()
    {
        // A period longer than the test: once one starts, nothing more gets through on that link.
        const int Segments = 400;
        var conditions = Instant with { BlackholeRate = 0.01, BlackholeDuration = TimeSpan.FromMinutes(1) };
        var arrivals = Arrivals(conditions, seed: 11, Segments, out var stats);
        var again = Arrivals(conditions, seed: 11, Segments, out _);

        Assert.Equal(arrivals, again);
        Assert.True(arrivals.Count is > 0 and < Segments, $"{arrivals.Count} of {Segments} arrived");
        Assert.Equal(Enumerable.Range(0, arrivals.Count), arrivals);
        Assert.Equal(Segments - arrivals.Count, stats.Blackholed);
        Assert.Equal(0, stats.Lost);
    }

    [Fact]
    public void Link_conditions_must_apply_to_their_destination_only_and_return_to_the_defaults()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = new LossyPacketTransport(fabric.Attach(AddressA), Instant, seed: 1);
        using var b = fabric.Attach(AddressB);
        using var c = fabric.Attach(AddressC);
        var buffer = new byte[b.ReceiveBufferLength];

        a.SetLinkConditions(AddressB, Instant with { LossRate = 1 }, seed: 3);
        for (var i = 0; i < 10; i++)
        {
            a.Send(AddressB, Indexed(i));
            a.Send(AddressC, Indexed(i));
            Assert.Equal(i, IndexOf(TransportAssertions.ReceiveOne(c, buffer, AddressA)));
        }

        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(20), out _));
        Assert.Equal(10, a.LinkStats(AddressB).Lost);
        Assert.Equal(10, a.Stats.Lost);

        a.SetLinkConditions(AddressB, null, seed: 0);
        a.Send(AddressB, Indexed(10));
        Assert.Equal(10, IndexOf(TransportAssertions.ReceiveOne(b, buffer, AddressA)));
        Assert.Equal(0, a.LinkStats(AddressB).Lost);
    }

    [Fact]
    public void Mtu_must_drop_packets_larger_than_it_counting_headers_as_the_simulated_network_does()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = new LossyPacketTransport(fabric.Attach(AddressA), Instant with { Mtu = 1500 }, seed: 1);
        using var b = fabric.Attach(AddressB);
        var buffer = new byte[b.ReceiveBufferLength];

        // A TCP header with 12 bytes of options and 1460 bytes of payload: 40 + 1460 = 1500 fits.
        var fits = TcpShaped(1460);
        Assert.True(a.Send(AddressB, fits));
        Assert.Equal(fits.Length, TransportAssertions.ReceiveOne(b, buffer, AddressA).Length);

        Assert.True(a.Send(AddressB, TcpShaped(1461)));
        Assert.Equal(1, a.Stats.OverMtu);
        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(20), out _));
    }

    [Fact]
    public void Concurrent_senders_through_delays_must_lose_nothing()
    {
        const int Senders = 4;
        const int SegmentsPerSender = 1000;
        var fabric = new InMemoryPacketFabric();
        var conditions = LinkConditions.Perfect with { Latency = TimeSpan.FromMilliseconds(1), Jitter = TimeSpan.FromMilliseconds(3), ReorderRate = 0.1, ReorderDelay = TimeSpan.FromMilliseconds(5) };
        using var a = new LossyPacketTransport(fabric.Attach(AddressA), conditions, seed: 1);
        using var b = fabric.Attach(AddressB, queueCapacity: Senders * SegmentsPerSender);
        Parallel.For(0, Senders, s =>
        {
            for (var n = 0; n < SegmentsPerSender; n++)
            {
                a.Send(AddressB, Indexed((s * SegmentsPerSender) + n));
            }
        });

        var seen = new HashSet<int>();
        var buffer = new byte[b.ReceiveBufferLength];
        for (var i = 0; i < Senders * SegmentsPerSender; i++)
        {
            Assert.True(seen.Add(IndexOf(TransportAssertions.ReceiveOne(b, buffer, AddressA))));
        }

        // The link counts a segment once the fabric took it, so the receiver may see the last one a moment before.
        Assert.True(SpinWait.SpinUntil(() => a.Stats.Forwarded == Senders * SegmentsPerSender, TimeSpan.FromSeconds(5)), $"forwarded {a.Stats.Forwarded}");
    }

    [Fact]
    public void Dispose_must_drop_delayed_segments_dispose_the_decorated_transport_and_refuse_sends()
    {
        var fabric = new InMemoryPacketFabric();
        var a = new LossyPacketTransport(fabric.Attach(AddressA), LinkConditions.Perfect with { Latency = TimeSpan.FromSeconds(10) }, seed: 1);
        using var b = fabric.Attach(AddressB);
        a.Send(AddressB, Indexed(0));

        a.Dispose();
        Assert.Equal(1, a.Stats.DroppedLocally);
        Assert.Throws<ObjectDisposedException>(() => a.Send(AddressB, Indexed(1)));

        // The decorated endpoint left the fabric: its address can be attached again.
        using var again = fabric.Attach(AddressA);
    }

    /// <summary>Sends <paramref name="segments"/> indexed segments from A to B and returns the indices in arrival order.</summary>
    private static List<int> Arrivals(LinkConditions conditions, int seed, int segments, out LossyTransportStats stats, TimeSpan? spacing = null)
    {
        var fabric = new InMemoryPacketFabric();
        using var a = new LossyPacketTransport(fabric.Attach(AddressA), conditions, seed);
        using var b = fabric.Attach(AddressB, queueCapacity: 2 * segments);
        for (var i = 0; i < segments; i++)
        {
            a.Send(AddressB, Indexed(i));
            if (spacing is { } pause)
            {
                Thread.Sleep(pause);
            }
        }

        // Everything delayed is due within this margin of the last send.
        var quiet = conditions.Latency + conditions.Jitter + conditions.ReorderDelay + TimeSpan.FromMilliseconds(200);
        var arrivals = new List<int>();
        var buffer = new byte[b.ReceiveBufferLength];
        while (b.Receive(buffer, quiet, out var received) == ReceiveOutcome.Received)
        {
            arrivals.Add(IndexOf(received.SliceOf(buffer.AsSpan()).ToArray()));
        }

        stats = a.Stats;
        return arrivals;
    }

    private static byte[] Indexed(int index)
    {
        var segment = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(segment, index);
        return segment;
    }

    private static int IndexOf(byte[] segment) => BinaryPrimitives.ReadInt32BigEndian(segment);

    /// <summary>A 32-byte TCP header (data offset 8 words) followed by <paramref name="payload"/> bytes.</summary>
    private static byte[] TcpShaped(int payload)
    {
        var segment = new byte[32 + payload];
        segment[12] = 8 << 4;
        return segment;
    }
}

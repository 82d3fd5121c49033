using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Interop.Tests.TransportAssertions;

namespace Mtcp.Interop.Tests;

[Trait("Category", "Interop")]
public sealed class InMemoryPacketFabricTests
{
    private static readonly IpAddress AddressA = IpAddress.Parse("10.0.0.1");
    private static readonly IpAddress AddressB = IpAddress.Parse("10.0.0.2");

    [Fact]
    public void Fabric_must_carry_segments_both_ways_up_to_the_largest_size()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = fabric.Attach(AddressA);
        using var b = fabric.Attach(AddressB);

        AssertCarries(a, b, seed: 1, 20, 1460, 60 * 1024, a.MaxSegmentLength);
        AssertCarries(b, a, seed: 2, 20, 1460, 60 * 1024);
    }

    [Fact]
    public void Fabric_must_drop_and_count_segments_for_unknown_addresses_and_full_queues()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = fabric.Attach(AddressA);
        using var b = fabric.Attach(AddressB, queueCapacity: 2);

        a.Send(IpAddress.Parse("10.0.0.9"), new byte[20]);
        for (var i = 0; i < 3; i++)
        {
            a.Send(AddressB, new byte[20]);
        }

        Assert.Equal(2, fabric.DroppedSegments);
        var buffer = new byte[b.ReceiveBufferLength];
        Assert.Equal(ReceiveOutcome.Received, b.Receive(buffer, TimeSpan.Zero, out _));
        Assert.Equal(ReceiveOutcome.Received, b.Receive(buffer, TimeSpan.Zero, out _));
        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(20), out _));
    }

    [Fact]
    public void Fabric_must_refuse_a_second_endpoint_at_the_same_address_until_the_first_is_disposed()
    {
        var fabric = new InMemoryPacketFabric();
        var first = fabric.Attach(AddressA);
        Assert.Throws<InvalidOperationException>(() => fabric.Attach(AddressA));
        first.Dispose();
        using var second = fabric.Attach(AddressA);
        Assert.Equal(AddressA, second.LocalAddress);
    }

    [Fact]
    public void Receive_must_return_closed_when_the_endpoint_is_disposed_while_waiting()
    {
        var fabric = new InMemoryPacketFabric();
        var a = fabric.Attach(AddressA);
        AssertDisposeEndsBlockingReceive(a);
    }

    [Fact]
    public void Fabric_must_deliver_every_segment_from_concurrent_senders()
    {
        const int Senders = 4;
        const int SegmentsPerSender = 2000;
        var fabric = new InMemoryPacketFabric();
        using var sink = fabric.Attach(AddressB, queueCapacity: Senders * SegmentsPerSender);
        var sources = Enumerable.Range(1, Senders).Select(i => fabric.Attach(IpAddress.Parse($"10.0.1.{i}"))).ToArray();
        try
        {
            Parallel.For(0, Senders, s =>
            {
                Span<byte> segment = stackalloc byte[8];
                for (var n = 0; n < SegmentsPerSender; n++)
                {
                    System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(segment, s);
                    System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(segment[4..], n);
                    sources[s].Send(AddressB, segment);
                }
            });

            var nextExpected = new int[Senders];
            var buffer = new byte[sink.ReceiveBufferLength];
            for (var i = 0; i < Senders * SegmentsPerSender; i++)
            {
                Assert.Equal(ReceiveOutcome.Received, sink.Receive(buffer, ReceiveTimeout, out var received));
                var sender = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(buffer);
                Assert.Equal(sources[sender].LocalAddress, received.Source);
                // Each sender's segments keep their order, as on a single path.
                Assert.Equal(nextExpected[sender]++, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(4)));
            }

            Assert.Equal(0, fabric.DroppedSegments);
        }
        finally
        {
            foreach (var source in sources)
            {
                source.Dispose();
            }
        }
    }

    [Fact]
    public void Receive_must_not_allocate_per_segment()
    {
        var fabric = new InMemoryPacketFabric();
        using var a = fabric.Attach(AddressA);
        using var b = fabric.Attach(AddressB);
        AssertReceiveAllocatesNothing(a, b);
    }
}

using System.Net.Sockets;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Interop.Tests.TransportAssertions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// <see cref="IPacketTransport.SendBatch"/> on the raw and UDP transports (one sendmmsg(2) per batch) across a veth pair
/// between two network namespaces, IPv4 and IPv6: every segment arrives once and in order, a batch longer than one
/// sendmmsg takes goes whole, a segment the interface's MTU refuses or a firewall drops loses no other, and a batch the
/// transport cannot carry sends nothing.
/// </summary>
[Trait("Category", "Interop")]
public sealed class BatchSendTests(ITestOutputHelper output)
{
    private const ushort UdpPort = 47254;

    // The veth pair's MTU: a segment larger than this (less the IP and UDP headers) is refused on a DF path.
    private const int VethMtu = 1500;

    public static TheoryData<string, AddressFamily> TransportsAndFamilies
    {
        get
        {
            var data = new TheoryData<string, AddressFamily>();
            foreach (var kind in new[] { "raw", "udp" })
            {
                data.Add(kind, AddressFamily.InterNetwork);
                data.Add(kind, AddressFamily.InterNetworkV6);
            }

            return data;
        }
    }

    /// <summary>The transports whose sends refuse a datagram beyond the interface's MTU (raw IPv6 fragments it at the source).</summary>
    public static TheoryData<string, AddressFamily> RefusingTransports => new()
    {
        { "raw", AddressFamily.InterNetwork },
        { "udp", AddressFamily.InterNetwork },
        { "udp", AddressFamily.InterNetworkV6 },
    };

    [Theory]
    [MemberData(nameof(TransportsAndFamilies))]
    public void Batch_must_deliver_every_segment_once_in_order(string kind, AddressFamily family)
    {
        using var link = Link.Open(kind, family);
        var (a, b) = (link.A, link.B);

        // Sizes from a bare header to a full 1,400-byte segment, as a window's segments and a burst's ACKs mix them.
        var batch = new SegmentBatch(200, 200 * 1500);
        var lengths = Enumerable.Range(0, 200).Select(i => 20 + (i * 37 % 1380)).ToArray();
        for (var i = 0; i < lengths.Length; i++)
        {
            Assert.True(batch.TryAdd(b.LocalAddress, Numbered(i, lengths[i])));
        }

        Assert.Equal(0, a.SendBatch(batch));
        var arrived = ReceiveNumbered(b, a.LocalAddress, lengths.Length);
        Assert.Equal(Enumerable.Range(0, lengths.Length), arrived.Select(segment => segment.Number));
        Assert.All(arrived, segment => Assert.True(segment.Intact, $"segment {segment.Number} arrived altered"));
        Assert.Equal(0, a.SendDrops.Total);
    }

    [Theory]
    [MemberData(nameof(TransportsAndFamilies))]
    public void Batch_longer_than_one_sendmmsg_takes_must_send_the_rest_in_order(string kind, AddressFamily family)
    {
        using var link = Link.Open(kind, family);
        var (a, b) = (link.A, link.B);

        // The kernel takes at most UIO_MAXIOV (1,024) messages a call: 1,500 need two calls at least.
        const int Count = 1500;
        var batch = new SegmentBatch(Count, Count * 64);
        for (var i = 0; i < Count; i++)
        {
            Assert.True(batch.TryAdd(b.LocalAddress, Numbered(i, 40)));
        }

        Assert.False(batch.TryAdd(b.LocalAddress, Numbered(Count, 40)), "the batch took more segments than it holds");
        Assert.Equal(0, a.SendBatch(batch));
        var arrived = ReceiveNumbered(b, a.LocalAddress, Count);
        Assert.Equal(Enumerable.Range(0, Count), arrived.Select(segment => segment.Number));
        Assert.All(arrived, segment => Assert.True(segment.Intact, $"segment {segment.Number} arrived altered"));
    }

    [Theory]
    [MemberData(nameof(RefusingTransports))]
    public void Batch_with_a_segment_beyond_the_mtu_must_lose_no_other(string kind, AddressFamily family)
    {
        using var link = Link.Open(kind, family);
        var (a, b) = (link.A, link.B);
        const int Oversized = 3 * VethMtu;

        // Mid-batch the kernel stops at the refused segment without its errno: it is counted lost, the rest go.
        var batch = new SegmentBatch(8, 8 * Oversized);
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(0, 100)));
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(1, Oversized)));
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(2, 100)));
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(3, 1200)));
        Assert.Equal(1, a.SendBatch(batch));
        Assert.Equal(new[] { 0, 2, 3 }, ReceiveNumbered(b, a.LocalAddress, 3).Select(segment => segment.Number));
        Assert.Equal(1, a.SendDrops[SendDropReason.StoppedBatch]);

        // First in its call the refusal has its errno, and the segment is sent fragmented at the source, as Send sends it.
        batch.Clear();
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(4, Oversized)));
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(5, 100)));
        Assert.Equal(0, a.SendBatch(batch));
        var arrived = ReceiveNumbered(b, a.LocalAddress, 2);
        Assert.Equal(new[] { 4, 5 }, arrived.Select(segment => segment.Number));
        Assert.All(arrived, segment => Assert.True(segment.Intact, $"segment {segment.Number} arrived altered"));
        Assert.Equal(1, a.SendDrops.Total);
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("udp")]
    public void Batch_through_an_output_drop_rule_must_lose_exactly_what_the_rule_dropped(string kind)
    {
        const int Batches = 20;
        const int PerBatch = 50;
        const int DropPercent = 30;
        using var link = Link.Open(kind, AddressFamily.InterNetwork);
        var (a, b) = (link.A, link.B);
        using var loss = PacketLoss.Install(link.Pair.A, DropPercent, LossHooks.Output, kind == "raw" ? "ip protocol 253" : $"udp dport {UdpPort}");

        var batch = new SegmentBatch(PerBatch, PerBatch * 128);
        var dropped = 0;
        for (var round = 0; round < Batches; round++)
        {
            batch.Clear();
            for (var i = 0; i < PerBatch; i++)
            {
                Assert.True(batch.TryAdd(b.LocalAddress, Numbered((round * PerBatch) + i, 60)));
            }

            dropped += a.SendBatch(batch);
        }

        // Each drop the transport counted is one the rule made (no segment lost by the batching, none sent twice to learn
        // an errno), so the rule drops its share, not less; what was sent arrives once and in order.
        const int Sent = Batches * PerBatch;
        output.WriteLine($"{kind}: {dropped} of {Sent} dropped ({loss.DroppedOutgoing} counted by nftables); transport counts: {a.SendDrops}");
        Assert.Equal(loss.DroppedOutgoing, dropped);
        Assert.Equal(dropped, a.SendDrops.Total);
        Assert.InRange(dropped, Sent * DropPercent / 100 / 2, Sent * DropPercent / 100 * 2);
        var arrived = ReceiveNumbered(b, a.LocalAddress, Sent - dropped).Select(segment => segment.Number).ToList();
        Assert.Equal(Sent - dropped, arrived.Count);
        Assert.Equal(arrived.Order(), arrived);
        Assert.Equal(arrived.Count, arrived.Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(TransportsAndFamilies))]
    public void Batch_with_a_segment_the_transport_cannot_carry_must_send_nothing(string kind, AddressFamily family)
    {
        using var link = Link.Open(kind, family);
        var (a, b) = (link.A, link.B);
        var (otherFamilyA, _) = VethNamespacePair.Addresses(family == AddressFamily.InterNetwork ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork);

        // Garbage in a batch (another family's address, a segment beyond any packet) is refused before any segment goes.
        var batch = new SegmentBatch(4, 4 * 70_000);
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(0, 100)));
        Assert.True(batch.TryAdd(otherFamilyA, Numbered(1, 100)));
        Assert.Throws<ArgumentException>(() => a.SendBatch(batch));

        batch.Clear();
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(2, 100)));
        Assert.True(batch.TryAdd(b.LocalAddress, Numbered(3, a.MaxSegmentLength + 1)));
        Assert.Throws<ArgumentException>(() => a.SendBatch(batch));

        var buffer = new byte[b.ReceiveBufferLength];
        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(300), out _));
        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => a.SendBatch(batch));
    }

    [Theory]
    [MemberData(nameof(TransportsAndFamilies))]
    public void Burst_receive_must_return_every_segment_once_in_order_and_skip_a_strangers_datagrams(string kind, AddressFamily family)
    {
        using var link = Link.Open(kind, family);
        var (a, b) = (link.A, link.B);

        // Between two batches of ours, garbage from a stranger: to the UDP port from another port, and for raw, a packet
        // of another protocol's socket at the same address, which the raw socket never sees.
        const int PerBatch = 60;
        const int StrangerDatagrams = 20;
        var batch = new SegmentBatch(PerBatch, PerBatch * 1500);
        for (var i = 0; i < PerBatch; i++)
        {
            Assert.True(batch.TryAdd(b.LocalAddress, Numbered(i, 20 + (i * 53 % 1380))));
        }

        Assert.Equal(0, a.SendBatch(batch));
        using (var stranger = link.Pair.A.Run(() => new Socket(family, SocketType.Dgram, ProtocolType.Udp)))
        {
            for (var i = 0; i < StrangerDatagrams; i++)
            {
                stranger.SendTo(SeededBytes(1000 + i, 100), new System.Net.IPEndPoint(b.LocalAddress.ToIPAddress(), UdpPort));
            }
        }

        batch.Clear();
        for (var i = PerBatch; i < 2 * PerBatch; i++)
        {
            Assert.True(batch.TryAdd(b.LocalAddress, Numbered(i, 20 + (i * 53 % 1380))));
        }

        Assert.Equal(0, a.SendBatch(batch));

        // One blocking receive, then up to five of what is queued without blocking (read ahead many at a time), so that
        // the next blocking receive starts inside what was read ahead, as a burst that ends at its bound does.
        var buffer = new byte[b.ReceiveBufferLength];
        var numbers = new List<int>();
        var withoutBlocking = 0;
        for (var round = 0; round < 2 * PerBatch && numbers.Count < 2 * PerBatch; round++)
        {
            Assert.Equal(ReceiveOutcome.Received, b.Receive(buffer, ReceiveTimeout, out var received));
            numbers.Add(NumberOfIntact(received));
            for (var more = 0; more < 5 && b.TryReceiveWaiting(buffer, out received); more++)
            {
                numbers.Add(NumberOfIntact(received));
                withoutBlocking++;
            }
        }

        Assert.Equal(Enumerable.Range(0, 2 * PerBatch), numbers);
        Assert.True(withoutBlocking >= PerBatch, $"only {withoutBlocking} of {numbers.Count} segments were read without blocking");
        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(200), out _));
        if (b is UdpEncapsulationTransport udp)
        {
            Assert.Equal(StrangerDatagrams, udp.DiscardedDatagrams);
        }

        int NumberOfIntact(ReceivedSegment received)
        {
            Assert.Equal(a.LocalAddress, received.Source);
            var segment = received.SliceOf(buffer.AsSpan());
            var number = BitConverter.ToInt32(segment);
            Assert.True(segment.SequenceEqual(Numbered(number, segment.Length)), $"segment {number} arrived altered");
            return number;
        }
    }

    /// <summary>Two transports of one kind and family, A and B, each in its own namespace of a veth pair (needs root).</summary>
    private sealed class Link : IDisposable
    {
        private Link(VethNamespacePair pair, IPacketTransport a, IPacketTransport b) => (Pair, A, B) = (pair, a, b);

        public VethNamespacePair Pair { get; }

        public IPacketTransport A { get; }

        public IPacketTransport B { get; }

        public static Link Open(string kind, AddressFamily family)
        {
            NetnsPrerequisites.RequireRoot();
            var pair = VethNamespacePair.Create();
            var (addressA, addressB) = VethNamespacePair.Addresses(family);
            IPacketTransport? a = null;
            try
            {
                a = OpenIn(pair.A, addressA);
                return new Link(pair, a, OpenIn(pair.B, addressB));
            }
            catch
            {
                a?.Dispose();
                pair.Dispose();
                throw;
            }

            IPacketTransport OpenIn(NetworkNamespace ns, IpAddress address) =>
                ns.Run<IPacketTransport>(() => kind == "raw" ? RawIPTransport.OpenExperimental(address) : UdpEncapsulationTransport.Open(address, UdpPort, UdpPort));
        }

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
            Pair.Dispose();
        }
    }

    /// <summary>A segment-shaped payload of <paramref name="length"/> bytes that starts with its number, the rest seeded by it.</summary>
    private static byte[] Numbered(int number, int length)
    {
        var bytes = SeededBytes(number, length);
        BitConverter.GetBytes(number).CopyTo(bytes, 0);
        return bytes;
    }

    /// <summary>What arrived, in order: each segment's number and whether its bytes are the ones sent. Bounded: one more receive, which must time out.</summary>
    private static List<(int Number, bool Intact)> ReceiveNumbered(IPacketTransport transport, IpAddress source, int expected)
    {
        var buffer = new byte[transport.ReceiveBufferLength];
        var arrived = new List<(int, bool)>();
        for (var i = 0; i <= expected; i++)
        {
            var outcome = transport.Receive(buffer, i < expected ? ReceiveTimeout : TimeSpan.FromMilliseconds(200), out var received);
            if (outcome != ReceiveOutcome.Received)
            {
                break;
            }

            Assert.Equal(source, received.Source);
            var segment = received.SliceOf(buffer.AsSpan());
            var number = BitConverter.ToInt32(segment);
            arrived.Add((number, segment.SequenceEqual(Numbered(number, segment.Length))));
        }

        return arrived;
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Interop.Tests.TransportAssertions;

namespace Mtcp.Interop.Tests;

[Trait("Category", "Interop")]
public sealed class UdpEncapsulationTransportTests
{
    private static readonly IpAddress LoopbackA = IpAddress.Parse("127.0.0.2");
    private static readonly IpAddress LoopbackB = IpAddress.Parse("127.0.0.3");

    /// <summary>Both ends use the same port number on their own loopback address, as nodes of one service would.</summary>
    private static (UdpEncapsulationTransport A, UdpEncapsulationTransport B) OpenPair()
    {
        var probe = UdpEncapsulationTransport.Open(LoopbackA, 0, 0);
        var port = probe.LocalPort;
        probe.Dispose();
        return (UdpEncapsulationTransport.Open(LoopbackA, port, port), UdpEncapsulationTransport.Open(LoopbackB, port, port));
    }

    [Fact]
    public void Udp_must_carry_segments_both_ways_on_loopback_up_to_60_KB()
    {
        var (a, b) = OpenPair();
        using (a)
        using (b)
        {
            AssertCarries(a, b, seed: 10, 20, 1460, 60 * 1024, a.MaxSegmentLength);
            AssertCarries(b, a, seed: 11, 20, 1460, 60 * 1024);
        }
    }

    [Fact]
    public void Udp_must_discard_datagrams_from_ports_other_than_the_peer_port()
    {
        var (a, b) = OpenPair();
        using (a)
        using (b)
        using (var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            stranger.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.4"), 0));
            stranger.SendTo(new byte[40], new IPEndPoint(b.LocalAddress.ToIPAddress(), b.LocalPort));
            var buffer = new byte[b.ReceiveBufferLength];
            Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(200), out _));
            Assert.Equal(1, b.DiscardedDatagrams);

            AssertCarries(a, b, seed: 12, 64);
        }
    }

    [Fact]
    public void Udp_must_hand_out_segments_already_queued_without_waiting_and_skip_strangers_datagrams()
    {
        var (a, b) = OpenPair();
        using (a)
        using (b)
        using (var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            var buffer = new byte[b.ReceiveBufferLength];
            Assert.False(b.TryReceiveWaiting(buffer, out _));

            // Loopback queues each datagram before sendto returns: all three wait at b, the stranger's between.
            var first = SeededBytes(20, 100);
            var second = SeededBytes(21, 1460);
            Assert.True(a.Send(b.LocalAddress, first));
            stranger.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.4"), 0));
            stranger.SendTo(new byte[40], new IPEndPoint(b.LocalAddress.ToIPAddress(), b.LocalPort));
            Assert.True(a.Send(b.LocalAddress, second));

            Assert.True(b.TryReceiveWaiting(buffer, out var received));
            Assert.True(first.AsSpan().SequenceEqual(received.SliceOf(buffer.AsSpan())));
            Assert.True(b.TryReceiveWaiting(buffer, out received));
            Assert.Equal(a.LocalAddress, received.Source);
            Assert.True(second.AsSpan().SequenceEqual(received.SliceOf(buffer.AsSpan())));
            Assert.Equal(1, b.DiscardedDatagrams);

            var waited = System.Diagnostics.Stopwatch.StartNew();
            Assert.False(b.TryReceiveWaiting(buffer, out _));
            Assert.True(waited.Elapsed < TimeSpan.FromMilliseconds(500), $"an empty queue took {waited.Elapsed} to report");
        }
    }

    [Fact]
    public void Udp_must_return_closed_when_disposed_during_a_blocking_receive()
    {
        var (a, b) = OpenPair();
        a.Dispose();
        AssertDisposeEndsBlockingReceive(b);
    }

    [Fact]
    public void Udp_receive_must_not_allocate_per_segment()
    {
        var (a, b) = OpenPair();
        using (a)
        using (b)
        {
            AssertReceiveAllocatesNothing(a, b);
        }
    }

    [Fact]
    public void Udp_must_reject_a_wildcard_local_address()
    {
        var error = Assert.Throws<ArgumentException>(() => UdpEncapsulationTransport.Open(IpAddress.Parse("0.0.0.0"), 0, 0));
        Assert.Contains("specific", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Udp_must_carry_segments_over_IPv6()
    {
        var loopback = IpAddress.Parse("::1");
        ushort portA;
        using (var probe = UdpEncapsulationTransport.Open(loopback, 0, 0))
        {
            portA = probe.LocalPort;
        }

        using var b = UdpEncapsulationTransport.Open(loopback, 0, portA);
        using var a = UdpEncapsulationTransport.Open(loopback, portA, b.LocalPort);

        Assert.Equal(65535 - 8, a.MaxSegmentLength);
        Assert.Equal(65536 - 48, a.MaxSegmentLengthTo(loopback));
        AssertCarries(a, b, seed: 13, 20, 1460, 60 * 1024, 65536 - 48);
        AssertCarries(b, a, seed: 14, 20);

        // Beyond loopback's MTU the datagram goes fragmented, and is reported too big.
        AssertFragmentedAndReported(a, b, a.MaxSegmentLength, interfaceMtu: 65536);
    }

    /// <summary>
    /// A segment beyond the interface's MTU is refused with DF (IPV6_DONTFRAG) and sent again fragmented, so it arrives
    /// whole; the kernel's record of the refusal comes back as a report quoting the segment's own ports and sequence
    /// number with the interface's MTU, for its connection to lower its MSS. Nothing more is queued, nothing is ignored.
    /// </summary>
    private static void AssertFragmentedAndReported(UdpEncapsulationTransport from, UdpEncapsulationTransport to, int length, int interfaceMtu)
    {
        var segment = SeededBytes(17, length);
        var buffer = new byte[from.ReceiveBufferLength];
        Assert.True(from.Send(to.LocalAddress, segment));
        Assert.True(segment.AsSpan().SequenceEqual(ReceiveOne(to, new byte[to.ReceiveBufferLength], from.LocalAddress)));

        Assert.True(from.TryReceiveQueuedPacketTooBig(buffer, out var report));
        Assert.Equal(
            new PacketTooBigReport(from.LocalAddress, to.LocalAddress, 17, BinaryPrimitives.ReadUInt16BigEndian(segment), BinaryPrimitives.ReadUInt16BigEndian(segment.AsSpan(2)), new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(segment.AsSpan(4))), interfaceMtu),
            report);
        var ignored = from.IgnoredErrors;
        Assert.False(from.TryReceiveQueuedPacketTooBig(buffer, out _));
        Assert.Equal(ignored, from.IgnoredErrors);
        Assert.Equal(0, from.SendDrops.Total);
    }

    [Fact]
    public void Udp_must_carry_segments_over_IPv6_between_nodes_on_one_port_with_the_route_mtu_less_48_bytes()
    {
        using var pair = VethNamespacePair.Create();
        const ushort Port = 5253;
        using var a = pair.A.Run(() => UdpEncapsulationTransport.Open(VethNamespacePair.AddressA6, Port, Port));
        using var b = pair.B.Run(() => UdpEncapsulationTransport.Open(VethNamespacePair.AddressB6, Port, Port));

        // IPv6 header (40) and UDP header (8) within the veth's 1500 bytes; larger segments go as IPv6 fragments, each
        // reported too big.
        Assert.Equal(1500 - 48, a.MaxSegmentLengthTo(VethNamespacePair.AddressB6));
        AssertCarries(a, b, seed: 15, 20, 1452);
        AssertCarries(b, a, seed: 16, 20, 1452);
        AssertFragmentedAndReported(a, b, 1453, interfaceMtu: 1500);
        AssertFragmentedAndReported(a, b, 60 * 1024, interfaceMtu: 1500);
        AssertFragmentedAndReported(a, b, a.MaxSegmentLength - 40, interfaceMtu: 1500);

        // A datagram from another port is not MTCP traffic; an IPv4 destination is not reachable from an IPv6 socket.
        using (var stranger = pair.A.Run(() => new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp)))
        {
            stranger.SendTo(new byte[40], new IPEndPoint(VethNamespacePair.AddressB6.ToIPAddress(), Port));
            var buffer = new byte[b.ReceiveBufferLength];
            Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(200), out _));
            Assert.Equal(1, b.DiscardedDatagrams);
        }

        Assert.Throws<ArgumentException>(() => a.Send(VethNamespacePair.AddressB, SeededBytes(1, 40)));
    }
}

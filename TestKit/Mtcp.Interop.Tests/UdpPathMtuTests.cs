using System.Buffers.Binary;
using System.Globalization;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Interop.Tests.TransportAssertions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// The UDP transport's path MTU reports across a real routed path (client, router and server namespaces, the router's
/// link toward the server narrower): a datagram too big for that link is not fragmented (DF, IPV6_DONTFRAG) but
/// answered by the router, and the ICMP error reaches the client's socket's error queue, ends its blocking receive and
/// is read as a report quoting the segment; a datagram beyond the client's own interface is refused by its host, sent
/// again in fragments, and reported from the kernel's record of the refusal. Needs root (network namespaces).
/// </summary>
[Trait("Category", "Netns")]
public sealed class UdpPathMtuTests
{
    private const ushort Port = 7311;
    private const ushort SourcePort = 40001;
    private const ushort DestinationPort = 7300;
    private const uint Sequence = 0xFFFFFF00;

    [Theory]
    [InlineData(true, 1280)]
    [InlineData(false, 1200)]
    public void A_datagram_too_big_for_a_link_on_the_path_must_come_back_as_a_report_quoting_its_segment(bool ipv6, int linkMtu)
    {
        using var path = RoutedNamespacePath.Create(ipv6, linkMtu);
        using var client = path.Client.Run(() => UdpEncapsulationTransport.Open(path.ClientAddress, Port, Port));
        using var server = path.Server.Run(() => UdpEncapsulationTransport.Open(path.ServerAddress, Port, Port));
        var buffer = new byte[client.ReceiveBufferLength];
        var fits = linkMtu - (ipv6 ? 48 : 28);

        // One that fits the narrow link arrives whole; one byte more does not arrive at all (no fragments).
        AssertCarries(client, server, seed: 30, 20, fits);
        Assert.True(client.Send(path.ServerAddress, Segment(fits + 1)));
        Assert.Equal(ReceiveOutcome.TimedOut, server.Receive(buffer, TimeSpan.FromMilliseconds(300), out _));

        Assert.Equal(ReceiveOutcome.ErrorQueued, client.Receive(buffer, ReceiveTimeout, out _));
        Assert.True(client.TryReceiveQueuedPacketTooBig(buffer, out var report));
        Assert.Equal(new PacketTooBigReport(path.ClientAddress, path.ServerAddress, 17, SourcePort, DestinationPort, new SeqNumber(Sequence), linkMtu), report);
        Assert.False(client.TryReceiveQueuedPacketTooBig(buffer, out _));
        Assert.Equal(0, client.IgnoredErrors);

        // The socket still carries both ways after its error (the server's frames must fit the router's narrow interface,
        // which drops larger ones unanswered).
        AssertCarries(server, client, seed: 31, 20, fits);
        AssertCarries(client, server, seed: 32, fits);
    }

    [Theory]
    [InlineData(true, 1280)]
    [InlineData(false, 1200)]
    public void A_datagram_beyond_the_local_interface_must_go_fragmented_and_be_reported_with_the_interfaces_mtu(bool ipv6, int interfaceMtu)
    {
        using var path = RoutedNamespacePath.Create(ipv6, serverLinkMtu: 1500);
        using var client = path.Client.Run(() => UdpEncapsulationTransport.Open(path.ClientAddress, Port, Port));
        using var server = path.Server.Run(() => UdpEncapsulationTransport.Open(path.ServerAddress, Port, Port));
        path.Client.Exec("ip", "link", "set", "dev", RoutedNamespacePath.EndpointInterface, "mtu", interfaceMtu.ToString(CultureInfo.InvariantCulture));
        var buffer = new byte[client.ReceiveBufferLength];

        // Refused with DF, sent again in fragments (the narrow interface is the first hop; the rest of the path is wider).
        var segment = Segment(1400);
        Assert.True(client.Send(path.ServerAddress, segment));
        Assert.True(segment.AsSpan().SequenceEqual(ReceiveOne(server, new byte[server.ReceiveBufferLength], path.ClientAddress)));
        Assert.Equal(0, client.SendDrops.Total);

        // The kernel's record of the refusal names the destination and the interface's MTU; the transport kept the segment.
        Assert.True(client.TryReceiveQueuedPacketTooBig(buffer, out var report));
        Assert.Equal(new PacketTooBigReport(path.ClientAddress, path.ServerAddress, 17, SourcePort, DestinationPort, new SeqNumber(Sequence), interfaceMtu), report);
        Assert.False(client.TryReceiveQueuedPacketTooBig(buffer, out _));
        Assert.Equal(0, client.IgnoredErrors);

        // What fits goes, unfragmented.
        AssertCarries(client, server, seed: 33, interfaceMtu - (ipv6 ? 48 : 28));
    }

    /// <summary>
    /// A forged ICMP error naming the transport's addresses and UDP ports lowers the kernel's path MTU for the route
    /// (it cannot check more); under IP_PMTUDISC_PROBE the transport's sends must not follow it: what fits the interface
    /// still goes whole, no send is refused, and the error comes out of the queue as a report for the connection to judge.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_report_the_kernel_believed_must_not_make_it_refuse_sends_that_fit_the_interface(bool ipv6)
    {
        using var path = RoutedNamespacePath.Create(ipv6, serverLinkMtu: 1500);
        using var client = path.Client.Run(() => UdpEncapsulationTransport.Open(path.ClientAddress, Port, Port));
        using var server = path.Server.Run(() => UdpEncapsulationTransport.Open(path.ServerAddress, Port, Port));
        var buffer = new byte[client.ReceiveBufferLength];
        var lowered = ipv6 ? 1280 : 1000;

        // The router's own link is 1500 bytes: a real datagram of 1400 bytes is not too big; a forged report says it was.
        ForgedIcmp.Send(path.Router, path.ClientAddress, [ForgedIcmp.AboutUdpDatagram(path.ClientAddress, path.ServerAddress, Port, Port, SourcePort, DestinationPort, Sequence, (uint)lowered, quotedSegmentBytes: 8, type: 0)]);
        Assert.Equal(ReceiveOutcome.ErrorQueued, client.Receive(buffer, ReceiveTimeout, out _));
        Assert.True(client.TryReceiveQueuedPacketTooBig(buffer, out var report));
        Assert.Equal(lowered, report.Mtu);
        Assert.Equal(lowered, client.MaxSegmentLengthTo(path.ServerAddress) + (ipv6 ? 48 : 28));

        // Sent whole at once: a refusal would have queued the kernel's record of it, and so a report.
        AssertCarries(client, server, seed: 34, 1400);
        Assert.False(client.TryReceiveQueuedPacketTooBig(buffer, out _));
        Assert.Equal(0, client.SendDrops.Total);
    }

    /// <summary>A segment-shaped datagram of <paramref name="length"/> bytes: ports and sequence number, then seeded bytes.</summary>
    private static byte[] Segment(int length)
    {
        var segment = SeededBytes(length, length);
        BinaryPrimitives.WriteUInt16BigEndian(segment, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), Sequence);
        return segment;
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
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
        path.Router.Run(() => SendForgedReport(path, lowered));
        Assert.Equal(ReceiveOutcome.ErrorQueued, client.Receive(buffer, ReceiveTimeout, out _));
        Assert.True(client.TryReceiveQueuedPacketTooBig(buffer, out var report));
        Assert.Equal(lowered, report.Mtu);
        Assert.Equal(lowered, client.MaxSegmentLengthTo(path.ServerAddress) + (ipv6 ? 48 : 28));

        // Sent whole at once: a refusal would have queued the kernel's record of it, and so a report.
        AssertCarries(client, server, seed: 34, 1400);
        Assert.False(client.TryReceiveQueuedPacketTooBig(buffer, out _));
        Assert.Equal(0, client.SendDrops.Total);
    }

    /// <summary>An ICMP fragmentation needed or ICMPv6 packet too big quoting a UDP datagram from the client's port to the server's and a segment start.</summary>
    private static void SendForgedReport(RoutedNamespacePath path, int mtu)
    {
        var ipv6 = path.ClientAddress.IsIPv6;
        var ipHeaderLength = ipv6 ? 40 : 20;
        var message = new byte[8 + ipHeaderLength + 8 + 8];
        var quoted = message.AsSpan(8);
        if (ipv6)
        {
            message[0] = 2;
            BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), (uint)mtu);
            quoted[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(quoted[4..], 1420);
            quoted[6] = 17;
            quoted[7] = 64;
            path.ClientAddress.WriteTo(quoted[8..]);
            path.ServerAddress.WriteTo(quoted[24..]);
        }
        else
        {
            (message[0], message[1]) = (3, 4);
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), (ushort)mtu);
            quoted[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(quoted[2..], 1440);
            quoted[6] = 0x40;
            quoted[8] = 64;
            quoted[9] = 17;
            path.ClientAddress.WriteTo(quoted[12..]);
            path.ServerAddress.WriteTo(quoted[16..]);
            BinaryPrimitives.WriteUInt16BigEndian(quoted[10..], InternetChecksum.Compute(quoted[..20]));
        }

        var udp = quoted[ipHeaderLength..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, Port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], Port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[8..], SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[10..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(udp[12..], Sequence);
        if (!ipv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), InternetChecksum.Compute(message));
        }

        using var socket = ipv6
            ? new Socket(AddressFamily.InterNetworkV6, SocketType.Raw, ProtocolType.IcmpV6)
            : new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp);
        socket.SendTo(message, new IPEndPoint(path.ClientAddress.ToIPAddress(), 0));
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

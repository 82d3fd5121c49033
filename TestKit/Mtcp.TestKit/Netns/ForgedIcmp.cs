using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Mtcp.Wire;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// ICMP and ICMPv6 errors built byte by byte, as an attacker (or a router) would send them, and their sending from a
/// namespace of a test: for the path MTU tests' forged reports.
/// </summary>
public static class ForgedIcmp
{
    /// <summary>
    /// An ICMP fragmentation needed or ICMPv6 packet too big (or, with <paramref name="type"/>, another error: ICMP 3/3
    /// port unreachable, ICMPv6 1/4) quoting a UDP datagram from <paramref name="quotedSource"/>:<paramref name="udpSource"/>
    /// to <paramref name="quotedDestination"/>:<paramref name="udpDestination"/>, whose payload starts with
    /// <paramref name="quotedSegmentBytes"/> bytes of a segment.
    /// </summary>
    public static byte[] AboutUdpDatagram(IpAddress quotedSource, IpAddress quotedDestination, ushort udpSource, ushort udpDestination, ushort sourcePort, ushort destinationPort, uint sequence, uint mtu, int quotedSegmentBytes, byte type)
    {
        var ipv6 = quotedSource.IsIPv6;
        var ipHeaderLength = ipv6 ? 40 : 20;
        var message = new byte[8 + ipHeaderLength + 8 + quotedSegmentBytes];
        if (ipv6)
        {
            (message[0], message[1]) = type == 0 ? (IcmpPacketTooBig.IPv6PacketTooBig, (byte)0) : (type, (byte)4);
            BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), mtu);
        }
        else
        {
            (message[0], message[1]) = type == 0 ? (IcmpPacketTooBig.IPv4DestinationUnreachable, IcmpPacketTooBig.IPv4FragmentationNeeded) : (type, (byte)3);
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), (ushort)mtu);
        }

        var quoted = message.AsSpan(8);
        if (ipv6)
        {
            quoted[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(quoted[4..], 1440);
            quoted[6] = 17;
            quoted[7] = 64;
            quotedSource.WriteTo(quoted[8..]);
            quotedDestination.WriteTo(quoted[24..]);
        }
        else
        {
            quoted[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(quoted[2..], 1440);
            quoted[6] = 0x40;
            quoted[8] = 64;
            quoted[9] = 17;
            quotedSource.WriteTo(quoted[12..]);
            quotedDestination.WriteTo(quoted[16..]);
            BinaryPrimitives.WriteUInt16BigEndian(quoted[10..], InternetChecksum.Compute(quoted[..20]));
        }

        var udp = quoted[ipHeaderLength..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, udpSource);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], udpDestination);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], 1420);
        Span<byte> segment = stackalloc byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment[4..], sequence);
        segment[..quotedSegmentBytes].CopyTo(udp[8..]);
        return ipv6 ? message : WithIcmpChecksum(message);
    }

    /// <summary>Sets an ICMP message's checksum (bytes 2-3, over the whole message, RFC 792).</summary>
    public static byte[] WithIcmpChecksum(byte[] message)
    {
        message[2] = message[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), InternetChecksum.Compute(message));
        return message;
    }

    /// <summary>
    /// Sends each message from <paramref name="from"/>'s namespace to <paramref name="destination"/> on a raw ICMP or
    /// ICMPv6 socket of the destination's family.
    /// </summary>
    public static void Send(NetworkNamespace from, IpAddress destination, IEnumerable<byte[]> messages) => from.Run(() =>
    {
        using var socket = destination.IsIPv6
            ? new Socket(AddressFamily.InterNetworkV6, SocketType.Raw, ProtocolType.IcmpV6)
            : new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp);
        var target = new IPEndPoint(destination.ToIPAddress(), 0);
        foreach (var message in messages)
        {
            socket.SendTo(message, target);
        }
    });
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Interop.Tests;

/// <summary>
/// The decoder of the UDP transport's error queue entries (<see cref="ErrorQueueEntry"/>) over bytes laid out as Linux
/// hands them over (LP64 cmsghdr, sock_extended_err in host byte order, the quoted destination as a sockaddr, the
/// quote after the UDP header): only an ICMP 3/4 or ICMPv6 2/0 about a datagram to the peer port, quoting 8 segment
/// bytes, is a report; everything else is typed and refused without throwing.
/// </summary>
[Trait("Category", "Wire")]
public sealed class ErrorQueueEntryTests
{
    private const ushort PeerPort = 7311;
    private const ushort SourcePort = 40001;
    private const ushort DestinationPort = 7300;
    private const uint Sequence = 0x00000010;
    private const uint Emsgsize = 90;
    private static readonly IpAddress LocalV4 = IpAddress.Parse("10.97.1.2");
    private static readonly IpAddress PeerV4 = IpAddress.Parse("10.97.2.2");
    private static readonly IpAddress LocalV6 = IpAddress.Parse("fd00:97:1::2");
    private static readonly IpAddress PeerV6 = IpAddress.Parse("fd00:97:2::2");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_packet_too_big_about_a_datagram_to_the_peer_port_must_be_read_as_a_report_quoting_the_segment(bool ipv6)
    {
        var entry = Entry(ipv6);

        Assert.Equal(QueuedErrorVerdict.PacketTooBig, Read(entry, out var report));
        var (local, peer, mtu) = ipv6 ? (LocalV6, PeerV6, 1280) : (LocalV4, PeerV4, 1200);
        Assert.Equal(new PacketTooBigReport(local, peer, 17, SourcePort, DestinationPort, new SeqNumber(Sequence), mtu), report);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Other_errors_other_ports_local_errors_and_short_quotes_must_be_refused_by_kind(bool ipv6)
    {
        var (origin, type, code) = ipv6 ? (ErrorQueueEntry.OriginIcmp6, (byte)2, (byte)0) : (ErrorQueueEntry.OriginIcmp, (byte)3, (byte)4);
        // The local host's refusal: IPv4 names port 0 (the socket is not connected), and no quote; the MTU it names is kept.
        Assert.Equal(QueuedErrorVerdict.LocalTooBig, Read(Entry(ipv6, origin: ErrorQueueEntry.OriginLocal, type: 0, code: 0, mtu: 1400, port: 0, quoteLength: 0), out var local));
        Assert.Equal(new PacketTooBigReport(ipv6 ? LocalV6 : LocalV4, ipv6 ? PeerV6 : PeerV4, 17, 0, 0, default, 1400), local);
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, errno: 111, origin: ErrorQueueEntry.OriginLocal, type: 0, code: 0), out _));
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, origin: ErrorQueueEntry.OriginLocal, mtu: 0), out _));
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, errno: 111, type: ipv6 ? (byte)1 : (byte)3, code: ipv6 ? (byte)4 : (byte)3), out _));
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, errno: 113, type: 11, code: 0), out _));
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, type: (byte)(type + 1)), out _));
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, code: (byte)(code + 1)), out _));
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, origin: ipv6 ? ErrorQueueEntry.OriginIcmp : ErrorQueueEntry.OriginIcmp6), out _));
        Assert.Equal(QueuedErrorVerdict.NotPacketTooBig, Read(Entry(ipv6, origin: origin, mtu: 0), out _));
        Assert.Equal(QueuedErrorVerdict.NotOurs, Read(Entry(ipv6, port: PeerPort + 1), out _));
        Assert.Equal(QueuedErrorVerdict.TruncatedQuote, Read(Entry(ipv6, quoteLength: 0), out _));
        Assert.Equal(QueuedErrorVerdict.TruncatedQuote, Read(Entry(ipv6, quoteLength: 7), out _));
        Assert.Equal(QueuedErrorVerdict.PacketTooBig, Read(Entry(ipv6, quoteLength: 8), out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_extended_error_must_be_found_after_another_control_message_and_never_read_past_a_cut(bool ipv6)
    {
        var entry = Entry(ipv6);
        var other = new byte[24];
        WriteControlHeader(other, 20, level: 1, type: 29);
        var both = new ErrorQueueBytes([.. other, .. entry.Control], entry.SocketAddress, entry.Quote, ipv6);
        Assert.Equal(QueuedErrorVerdict.PacketTooBig, Read(both, out _));

        for (var length = 0; length < entry.Control.Length; length++)
        {
            Assert.Equal(QueuedErrorVerdict.NoExtendedError, Read(entry with { Control = entry.Control[..length] }, out var report));
            Assert.Equal(default, report);
        }

        // A control message for the other family's level, or claiming more bytes than there are, or fewer than its header.
        var otherLevel = entry.Control.ToArray();
        WriteControlHeader(otherLevel, 16 + 16 + 16, ipv6 ? ErrorQueueEntry.IPLevel : ErrorQueueEntry.IPv6Level, ipv6 ? ErrorQueueEntry.IPRecvErr : ErrorQueueEntry.IPv6RecvErr);
        Assert.Equal(QueuedErrorVerdict.NoExtendedError, Read(entry with { Control = otherLevel }, out _));
        foreach (var claimed in new ulong[] { 0, 15, (ulong)entry.Control.Length + 1, ulong.MaxValue })
        {
            var bad = entry.Control.ToArray();
            MemoryMarshal.Write(bad, claimed);
            Assert.Equal(QueuedErrorVerdict.NoExtendedError, Read(entry with { Control = bad }, out _));
        }

        Assert.Equal(QueuedErrorVerdict.NotOurs, Read(entry with { SocketAddress = entry.SocketAddress[..6] }, out _));
    }

    [Fact]
    public void Random_bytes_must_never_throw_and_never_pass_without_the_extended_error_header()
    {
        var random = new Random(8201);
        for (var i = 0; i < 50_000; i++)
        {
            var ipv6 = i % 2 == 0;
            var entry = Entry(ipv6);
            var control = entry.Control.ToArray();
            // Keep the header plausible in half the cases, so that the decoder gets past it; garble the rest.
            random.NextBytes(control.AsSpan(i % 4 < 2 ? 16 : 0));
            var address = new byte[random.Next(0, 40)];
            random.NextBytes(address);
            var quote = new byte[random.Next(0, 30)];
            random.NextBytes(quote);

            var verdict = ErrorQueueEntry.TryRead(control[..random.Next(0, control.Length + 1)], address, ipv6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, quote, ipv6 ? LocalV6 : LocalV4, PeerPort, out var report);
            Assert.True(verdict is QueuedErrorVerdict.PacketTooBig or QueuedErrorVerdict.LocalTooBig || report == default);
        }
    }

    private sealed record ErrorQueueBytes(byte[] Control, byte[] SocketAddress, byte[] Quote, bool IPv6);

    private static QueuedErrorVerdict Read(ErrorQueueBytes entry, out PacketTooBigReport report) =>
        ErrorQueueEntry.TryRead(entry.Control, entry.SocketAddress, entry.IPv6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, entry.Quote, entry.IPv6 ? LocalV6 : LocalV4, PeerPort, out report);

    /// <summary>One error queue entry as recvmsg(2) returns it; by default an ICMP 3/4 or ICMPv6 2/0 about a datagram to the peer port.</summary>
    private static ErrorQueueBytes Entry(bool ipv6, uint errno = Emsgsize, byte? origin = null, byte? type = null, byte? code = null, uint? mtu = null, int port = PeerPort, int quoteLength = 20)
    {
        // The control message: a cmsghdr, the sock_extended_err, and the offender's (the router's) sockaddr after it.
        var control = new byte[ErrorQueueEntry.ControlHeaderLength + ErrorQueueEntry.ExtendedErrorLength + 32];
        var dataLength = ErrorQueueEntry.ExtendedErrorLength + (ipv6 ? 28 : 16);
        WriteControlHeader(control, ErrorQueueEntry.ControlHeaderLength + dataLength, ipv6 ? ErrorQueueEntry.IPv6Level : ErrorQueueEntry.IPLevel, ipv6 ? ErrorQueueEntry.IPv6RecvErr : ErrorQueueEntry.IPRecvErr);
        var extended = control.AsSpan(ErrorQueueEntry.ControlHeaderLength);
        MemoryMarshal.Write(extended, errno);
        extended[4] = origin ?? (ipv6 ? ErrorQueueEntry.OriginIcmp6 : ErrorQueueEntry.OriginIcmp);
        extended[5] = type ?? (ipv6 ? (byte)2 : (byte)3);
        extended[6] = code ?? (ipv6 ? (byte)0 : (byte)4);
        MemoryMarshal.Write(extended[8..], mtu ?? (ipv6 ? 1280u : 1200u));

        var peer = (ipv6 ? PeerV6 : PeerV4).ToIPAddress();
        var socketAddress = new IPEndPoint(peer, port).Serialize();
        var quote = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(quote, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(quote.AsSpan(2), DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(quote.AsSpan(4), Sequence);
        return new ErrorQueueBytes(control[..(ErrorQueueEntry.ControlHeaderLength + dataLength)], socketAddress.Buffer[..socketAddress.Size].ToArray(), quote[..quoteLength], ipv6);
    }

    private static void WriteControlHeader(Span<byte> control, int length, int level, int type)
    {
        MemoryMarshal.Write(control, (ulong)length);
        MemoryMarshal.Write(control[8..], level);
        MemoryMarshal.Write(control[12..], type);
    }
}

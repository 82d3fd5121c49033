using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// ICMP "fragmentation needed" (RFC 1191) and ICMPv6 "packet too big" (RFC 8201), sans-IO: a link on the path drops the
/// server's segments above its MTU and reports each one (the quoted ports and sequence number) to the server, which
/// lowers its MSS and resends at the new size; a forged report changes nothing (RFC 5927 §4.1).
/// </summary>
[Trait("Category", "Stack")]
public sealed class PathMtuTests
{
    private const int LinkMtu = 1000;
    private const int ServerBytes = 400_000;
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_packet_too_big_for_a_segment_in_flight_must_lower_the_mss_and_the_transfer_must_complete_in_segments_that_fit(bool sack)
    {
        var pair = new TcpPair(seed: 8201, LinkConditions.Perfect, TcpConfig.Default with { MaxSegmentSize = 1400, SelectiveAcknowledgment = sack }, clientBytes: 1_000, serverBytes: ServerBytes);
        var verdicts = new List<PacketTooBigVerdict>();
        var tooBig = 0;
        pair.Network.Drop = packet =>
        {
            // The router in front of the client forwards what fits its link and reports the rest to the sender at once:
            // the report reaches the server before the next segment leaves it (the network's clock does not move
            // between two segments of one burst, and a report held for a later step would come after the jump to the
            // retransmission timer).
            if (packet.Source != pair.Server.Address || packet.Size <= LinkMtu)
            {
                return false;
            }

            tooBig++;
            verdicts.Add(pair.ServerConnection!.HandlePacketTooBig(packet.Header.SourcePort, packet.Header.DestinationPort, packet.Header.SequenceNumber, LinkMtu, ipv6: false, carrierHeaderLength: 0));
            return true;
        };

        var closed = pair.Network.Drive(() => pair.BothClosed, Limit);

        Assert.True(closed && pair.DriveToClose(Limit), pair.Describe());
        Assert.Equal(ServerBytes, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        var server = pair.ServerConnection!;
        Assert.Equal(TcpConnection.SegmentSizeForPathMtu(LinkMtu, ipv6: false, carrierHeaderLength: 0), server.SendMss);
        Assert.Equal(1, server.Stats.PathMtuReductions);
        Assert.Equal(PacketTooBigVerdict.Lowered, verdicts[0]);
        Assert.All(verdicts.Skip(1), verdict => Assert.Equal(PacketTooBigVerdict.NotSmaller, verdict));
        // Only the first flight was too big, and the report, not the retransmission timer, had it sent again.
        Assert.InRange(tooBig, 1, TcpConfig.Default.InitialWindowSegments);
        Assert.Equal(0, server.Stats.RetransmissionTimeouts);
    }

    [Theory]
    [InlineData("below SND.UNA", PacketTooBigVerdict.OutOfWindow)]
    [InlineData("at SND.NXT", PacketTooBigVerdict.OutOfWindow)]
    [InlineData("far ahead", PacketTooBigVerdict.OutOfWindow)]
    [InlineData("MTU above the current", PacketTooBigVerdict.NotSmaller)]
    [InlineData("MTU equal to the current", PacketTooBigVerdict.NotSmaller)]
    [InlineData("other ports", PacketTooBigVerdict.NotThisConnection)]
    public void A_forged_packet_too_big_must_change_nothing(string forgery, PacketTooBigVerdict expected)
    {
        var pair = new TcpPair(seed: 5927, LinkConditions.Perfect, TcpConfig.Default with { MaxSegmentSize = 1400 }, clientBytes: 1_000, serverBytes: ServerBytes);
        Assert.True(pair.Network.Drive(() => pair.ServerConnection is { } s && pair.ClientApp.BytesRead > 50_000 && s.SendNext - s.SendUnacknowledged > 0, Limit), pair.Describe());
        var server = pair.ServerConnection!;
        var (una, next, mss) = (server.SendUnacknowledged, server.SendNext, server.SendMss);
        var (sourcePort, destinationPort, sequence, mtu) = forgery switch
        {
            "below SND.UNA" => (server.LocalPort, server.RemotePort, una - 1, LinkMtu),
            "at SND.NXT" => (server.LocalPort, server.RemotePort, next, LinkMtu),
            "far ahead" => (server.LocalPort, server.RemotePort, next + (1 << 30), LinkMtu),
            "MTU above the current" => (server.LocalPort, server.RemotePort, una, 9000),
            "MTU equal to the current" => (server.LocalPort, server.RemotePort, una, mss + 20 + TcpSegment.MinHeaderLength + TcpSegment.MaxOptionsLength),
            _ => (server.LocalPort, (ushort)(server.RemotePort + 1), una, LinkMtu),
        };

        var verdict = server.HandlePacketTooBig(sourcePort, destinationPort, sequence, mtu, ipv6: false, carrierHeaderLength: 0);

        Assert.Equal(expected, verdict);
        Assert.Equal(mss, server.SendMss);
        Assert.Equal(next, server.SendNext);
        Assert.Equal(0, server.Stats.PathMtuReductions);
        Assert.True(pair.DriveToClose(Limit), pair.Describe());
        Assert.Equal(ServerBytes, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(0, server.Stats.Retransmissions);
    }

    [Theory]
    [InlineData(1000, false, 0, 920)]
    [InlineData(576, false, 0, 496)]
    [InlineData(68, false, 0, 496)]
    [InlineData(1280, true, 0, 1180)]
    [InlineData(1000, true, 0, 1180)]
    [InlineData(1500, true, 0, 1400)]
    [InlineData(1200, false, 8, 1112)]
    [InlineData(68, false, 8, 488)]
    [InlineData(1280, true, 8, 1172)]
    [InlineData(600, true, 8, 1172)]
    public void The_mss_for_a_path_mtu_must_leave_room_for_the_headers_and_never_fall_below_the_family_minimum(int mtu, bool ipv6, int carrierHeaderLength, int expected)
    {
        // The minimum MTU: 576 bytes for IPv4 (RFC 791), 1280 for IPv6 (RFC 8200 §5); a report below it is a forgery or
        // a broken link, and believing it would shrink the connection to nothing. A UDP carrier's 8 bytes come out of
        // the link's MTU, floored or not: the datagram, not the segment, must fit the link.
        Assert.Equal(expected, TcpConnection.SegmentSizeForPathMtu(mtu, ipv6, carrierHeaderLength));
        Assert.True(expected + (ipv6 ? 40 : 20) + carrierHeaderLength + TcpSegment.MinHeaderLength + TcpSegment.MaxOptionsLength <= Math.Max(mtu, ipv6 ? 1280 : 576));
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Tests.Migration;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// ICMP "packet too big" read by the runtime that ships, over raw protocol 253 and over UDP encapsulation, across a real
/// routed path (client, router and server namespaces; the router's link toward the server narrower than the endpoints'
/// 1500-byte links): the client's first segments are too big for the second link, the router answers with ICMPv6 packet
/// too big or ICMP fragmentation needed, and the connection must shrink its segments and finish the upload byte-exact.
/// The raw transports read the reports on an ICMP socket, the UDP transport on its own socket's error queue. Forged
/// reports sent at a live connection must change nothing. With the router's reports filtered (a PMTU black hole) the upload must still arrive, by the
/// connection's black-hole detection (RFC 4821 §7.2). Needs root (network namespaces, raw sockets, nftables).
/// </summary>
[Trait("Category", "Netns")]
[Collection(MultiNodeCollection.Name)]
public sealed class PathMtuNetnsTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7300;
    private const ushort UdpPort = 7301;
    private const string Raw = "raw";
    private const string Udp = "udp";
    private const long UploadBytes = 8L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(120);

    private readonly ITestOutputHelper _output;

    public PathMtuNetnsTests(ITestOutputHelper output)
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
    {
        _output = output;
    }

    [Theory]
    [InlineData(true, 1280, Raw)]
    [InlineData(false, 1200, Raw)]
    [InlineData(true, 1280, Udp)]
    [InlineData(false, 1200, Udp)]
    public async Task An_upload_through_a_narrower_link_must_shrink_its_segments_on_packet_too_big_and_arrive_byte_exact(bool ipv6, int linkMtu, string carrier)
    {
        using var path = RoutedNamespacePath.Create(ipv6, linkMtu);
        var reassembliesBefore = path.ServerReassemblies();

        var (clientStats, serverStats) = await UploadAsync(path, carrier, during: null);

        // Packets that went out before the MSS went down were dropped by the router (IPv6 routers never fragment;
        // our IPv4 packets carry DF): whatever the server reassembled was fragmented at the source. Over UDP the kernel
        // may hand a report back as the error of the next send (IP_RECVERR), which the transport then sends again
        // fragmented: at most one datagram per report.
        var fragmented = path.ServerReassemblies() - reassembliesBefore;
        _output.WriteLine($"reports routed {clientStats.PacketTooBigRouted}, applied {clientStats.PacketTooBigApplied}, refused {clientStats.PacketTooBigRefused}; datagrams the server reassembled {fragmented}");
        Assert.True(clientStats.PacketTooBigApplied >= 1, $"no report lowered the MSS: {clientStats}");
        Assert.InRange(fragmented, 0, carrier == Udp ? clientStats.PacketTooBigRouted : 200);
        Assert.Equal(0, serverStats.MalformedSegments);
    }

    /// <summary>
    /// The client's own interface goes down to a smaller MTU in the middle of the upload (as when a tunnel comes up): the
    /// UDP transport's datagrams beyond it are refused by the local host (EMSGSIZE) and go fragmented, and the kernel's
    /// record of the refusal must lower the connection's MSS, so that the rest of the upload goes in segments that fit:
    /// only the datagrams sent before the report came back may arrive as fragments (of the ~7,000 of the upload).
    /// </summary>
    [Theory]
    [InlineData(true, 1280)]
    [InlineData(false, 1200)]
    public async Task A_send_refused_as_too_big_by_the_local_host_must_lower_the_mss_and_the_upload_must_arrive_byte_exact(bool ipv6, int interfaceMtu)
    {
        using var path = RoutedNamespacePath.Create(ipv6, serverLinkMtu: 1500);
        var reassembliesBefore = path.ServerReassemblies();

        // Once connected, so that the connection's MSS is the 1500-byte route's, and before the upload, which could
        // otherwise end before the command does.
        var (clientStats, _) = await UploadAsync(path, Udp, during: null, connected: () =>
            path.Client.Exec("ip", "link", "set", "dev", RoutedNamespacePath.EndpointInterface, "mtu", interfaceMtu.ToString(CultureInfo.InvariantCulture)));

        var fragmented = path.ServerReassemblies() - reassembliesBefore;
        _output.WriteLine($"reports routed {clientStats.PacketTooBigRouted}, applied {clientStats.PacketTooBigApplied}, refused {clientStats.PacketTooBigRefused}; datagrams the server reassembled {fragmented}");
        // Sends refused before the first report is applied make more reports of the same MTU, which the engine refuses
        // as not lowering its MSS.
        Assert.True(clientStats.PacketTooBigApplied >= 1, $"no refusal lowered the MSS: {clientStats}");
        Assert.InRange(fragmented, 1, 1000);
    }

    [Theory]
    [InlineData(true, 1280, Raw)]
    [InlineData(false, 1200, Raw)]
    [InlineData(true, 1280, Udp)]
    [InlineData(false, 1200, Udp)]
    public async Task An_upload_through_a_pmtu_black_hole_must_fall_back_to_the_base_mss_and_arrive_byte_exact(bool ipv6, int linkMtu, string carrier)
    {
        // The router's reports are filtered out (RFC 2923 §2.1): the client's full-sized segments vanish without a
        // word, and only its retransmission timeouts tell it (mtcp.tcp.path-mtu-probing). Without that the upload
        // stalls at the first full-sized segment until the test's timeout.
        using var path = RoutedNamespacePath.Create(ipv6, linkMtu);
        using var filter = PacketLoss.DropPacketTooBig(path.Router, ipv6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork);
        using var blackHoles = new MigrationMeasurements(MtcpRuntime.PathMtuBlackHolesInstrument, meterName: MtcpRuntime.RuntimeMeterName);
        using var probes = new MigrationMeasurements(MtcpRuntime.PathMtuProbesInstrument, meterName: MtcpRuntime.RuntimeMeterName);
        var started = DateTime.UtcNow;

        var (clientStats, serverStats) = await UploadAsync(path, carrier, during: null);

        _output.WriteLine($"{UploadBytes} bytes in {(DateTime.UtcNow - started).TotalSeconds:F1} s; reports the router's filter dropped {filter.DroppedOutgoing}, reports routed to the client {clientStats.PacketTooBigRouted}; black holes counted {blackHoles.Sum}, probes {probes.Sum}");
        Assert.True(filter.DroppedOutgoing >= 1, "the router reported no packet too big: the path was no black hole");
        Assert.Equal(0, clientStats.PacketTooBigRouted);
        Assert.Equal(0, serverStats.MalformedSegments);

        // The runtime's counters (docs/metrics.md) saw the client's black hole and the search up from the base. Other
        // tests of the process count into the same instruments: at least, not exactly.
        Assert.True(blackHoles.Sum >= 1, "mtcp.tcp.path_mtu.black_holes counted nothing");
        Assert.True(probes.Sum >= 1, "mtcp.tcp.path_mtu.probes counted nothing");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Forged_packet_too_big_messages_at_a_live_connection_must_change_nothing(bool ipv6)
    {
        using var path = RoutedNamespacePath.Create(ipv6, serverLinkMtu: 1500);
        var forged = 0;

        var (clientStats, _) = await UploadAsync(path, Raw, during: (client, server) =>
        {
            var random = new Random(8201);
            var messages = new List<byte[]>();
            var clientPort = (ushort)client.LocalEndPoint.Port;
            byte[] Forge(IpAddress quotedSource, ushort sourcePort, ushort destinationPort, uint sequence, uint mtu, byte protocol = RawIPTransport.ExperimentalProtocol) => ipv6
                ? PacketTooBigV6(quotedSource, path.ServerAddress, sourcePort, destinationPort, sequence, mtu, protocol)
                : FragmentationNeeded(quotedSource, path.ServerAddress, sourcePort, destinationPort, sequence, (ushort)mtu, protocol);

            for (var i = 0; i < 10; i++)
            {
                // The right 4-tuple, a guessed sequence number: one of 2^32, in flight with odds of a window in 2^32.
                messages.Add(Forge(path.ClientAddress, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), 1280));
                forged++;
            }

            // A guessed sequence number with an MTU below the family's minimum (1280, RFC 8200 §5; 68, RFC 791), and one
            // above the link's.
            messages.Add(Forge(path.ClientAddress, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), ipv6 ? 600u : 60u));
            messages.Add(Forge(path.ClientAddress, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), 9000));
            forged += 2;

            // Other ports, another quoted source, another protocol: no connection of ours; never routed.
            messages.Add(Forge(path.ClientAddress, (ushort)(clientPort + 1), ServicePort, 0, 1280));
            messages.Add(Forge(path.ClientAddress, clientPort, ServicePort + 1, 0, 1280));
            messages.Add(Forge(path.RouterClientAddress, clientPort, ServicePort, 0, 1280));
            messages.Add(Forge(path.ClientAddress, clientPort, ServicePort, 0, 1280, protocol: 17));

            // Garbage after a plausible type and code, and quotes cut short (an ICMP checksum made to match, so that the
            // cut, not the checksum, is what the reader meets).
            for (var i = 0; i < 20; i++)
            {
                var garbage = new byte[random.Next(4, 100)];
                random.NextBytes(garbage);
                (garbage[0], garbage[1]) = ipv6 ? (IcmpPacketTooBig.IPv6PacketTooBig, (byte)0) : (IcmpPacketTooBig.IPv4DestinationUnreachable, IcmpPacketTooBig.IPv4FragmentationNeeded);
                messages.Add(garbage);
            }

            var valid = Forge(path.ClientAddress, clientPort, ServicePort, 0, 1280);
            messages.Add(ipv6 ? valid[..20] : ForgedIcmp.WithIcmpChecksum(valid[..20]));
            messages.Add(ipv6 ? valid[..50] : ForgedIcmp.WithIcmpChecksum(valid[..32]));
            ForgedIcmp.Send(path.Router, path.ClientAddress, messages);
        });

        Assert.Equal(0, clientStats.PacketTooBigApplied);
        Assert.Equal(forged, clientStats.PacketTooBigRouted);
        Assert.Equal(forged, clientStats.PacketTooBigRefused);
    }

    /// <summary>
    /// Forged ICMP errors at the UDP port of a live connection, quoting an IP and a UDP header the kernel delivers to our
    /// socket's error queue, then the segment's start: a guessed sequence number, MTUs below the family's minimum and
    /// above the link, other segment ports, another UDP port, quotes that end within the UDP header or within the
    /// segment's first 8 bytes, another ICMP error, and garbage. None may lower the MSS; only those naming the
    /// connection's 4-tuple reach it, and it refuses them all.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Forged_packet_too_big_messages_at_the_udp_port_of_a_live_connection_must_change_nothing(bool ipv6)
    {
        using var path = RoutedNamespacePath.Create(ipv6, serverLinkMtu: 1500);
        var forged = 0;
        var dropped = 0;
        UdpEncapsulationTransport? client = null;

        var (clientStats, _) = await UploadAsync(path, Udp, during: (stream, _) =>
        {
            var random = new Random(1191);
            var messages = new List<byte[]>();
            var clientPort = (ushort)stream.LocalEndPoint.Port;
            byte[] Forge(ushort udpDestination, ushort sourcePort, ushort destinationPort, uint sequence, uint mtu, int quotedSegmentBytes = 20, byte type = 0) =>
                ForgedIcmp.AboutUdpDatagram(path.ClientAddress, path.ServerAddress, UdpPort, udpDestination, sourcePort, destinationPort, sequence, mtu, quotedSegmentBytes, type);

            for (var i = 0; i < 10; i++)
            {
                // The right 4-tuple, a guessed sequence number: one of 2^32, in flight with odds of a window in 2^32.
                messages.Add(Forge(UdpPort, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), 1280));
                forged++;
            }

            // MTUs below the family's minimum (1280, RFC 8200 §5; 68, RFC 791) and above the link's, sequence guessed.
            messages.Add(Forge(UdpPort, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), ipv6 ? 600u : 60u));
            messages.Add(Forge(UdpPort, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), 9000));
            forged += 2;

            // Other segment ports: no connection of ours, never routed. Another UDP port: not a datagram of the transport.
            // Quotes cut within the UDP header's 8 bytes after it, or within the segment's first 8: nothing to check. A
            // port unreachable quoting the connection: no path MTU report.
            messages.Add(Forge(UdpPort, (ushort)(clientPort + 1), ServicePort, 0, 1280));
            messages.Add(Forge(UdpPort, clientPort, ServicePort + 1, 0, 1280));
            messages.Add(Forge(UdpPort + 1, clientPort, ServicePort, 0, 1280));
            messages.Add(Forge(UdpPort, clientPort, ServicePort, 0, 1280, quotedSegmentBytes: 0));
            messages.Add(Forge(UdpPort, clientPort, ServicePort, 0, 1280, quotedSegmentBytes: 6));
            messages.Add(Forge(UdpPort, clientPort, ServicePort, 0, 1280, type: ipv6 ? (byte)1 : (byte)3));
            dropped += 4;

            // Garbage after a plausible type and code: the kernel finds no socket for it, or it quotes nothing of ours.
            for (var i = 0; i < 20; i++)
            {
                var garbage = new byte[random.Next(4, 100)];
                random.NextBytes(garbage);
                (garbage[0], garbage[1]) = ipv6 ? (IcmpPacketTooBig.IPv6PacketTooBig, (byte)0) : (IcmpPacketTooBig.IPv4DestinationUnreachable, IcmpPacketTooBig.IPv4FragmentationNeeded);
                messages.Add(ipv6 ? garbage : ForgedIcmp.WithIcmpChecksum(garbage));
            }

            ForgedIcmp.Send(path.Router, path.ClientAddress, messages);
        }, opened: transport => client = (UdpEncapsulationTransport)transport);

        _output.WriteLine($"reports routed {clientStats.PacketTooBigRouted}, refused {clientStats.PacketTooBigRefused}; error queue entries ignored {client!.IgnoredErrors}");
        Assert.Equal(0, clientStats.PacketTooBigApplied);
        Assert.Equal(forged, clientStats.PacketTooBigRouted);
        Assert.Equal(forged, clientStats.PacketTooBigRefused);
        // Other segment ports make reports that name no connection; the other UDP port, the short quotes and the port
        // unreachable are dropped as they leave the error queue.
        Assert.True(client.IgnoredErrors >= dropped, $"only {client.IgnoredErrors} error queue entries ignored");
    }

    /// <summary>
    /// A runtime of <paramref name="carrier"/> (raw protocol 253, or UDP encapsulation on <see cref="UdpPort"/>) in the
    /// server and the client namespace; the client uploads <see cref="UploadBytes"/> (with <paramref name="during"/> run
    /// once the first write is under way, and <paramref name="connected"/> before it) and closes; the server reads to the
    /// FIN. Both digests must agree. Returns both runtimes' statistics; <paramref name="opened"/> is given the client's
    /// transport.
    /// </summary>
    private async Task<(PacketStatistics Client, PacketStatistics Server)> UploadAsync(RoutedNamespacePath path, string carrier, Action<MtcpStream, MtcpConnection>? during, Action<IPacketTransport>? opened = null, Action? connected = null)
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        IPacketTransport Open(IpAddress address) => carrier == Udp
            ? UdpEncapsulationTransport.Open(address, UdpPort, UdpPort)
            : RawIPTransport.OpenExperimental(address);
        var serverTransport = path.Server.Run(() => Open(path.ServerAddress));
        var clientTransport = path.Client.Run(() => Open(path.ClientAddress));
        opened?.Invoke(clientTransport);
        await using var server = MtcpRuntime.Start(Sys, serverTransport, NodeConfig(path.ServerAddress.ToString(), carrier), "server");
        await using var client = MtcpRuntime.Start(Sys, clientTransport, NodeConfig(path.ClientAddress.ToString(), carrier), "client");
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var connector = new MtcpClient(client);
        var stream = await connector.ConnectAsync(new IPEndPoint(path.ServerAddress.ToIPAddress(), ServicePort), timeout.Token);
        await using var connection = await accepting;
        connected?.Invoke();

        var reading = ReadAllAsync(connection.Stream, length: null, timeout.Token);
        var writing = WritePatternAsync(stream, key: 7, UploadBytes, chunk: 64 * 1024, timeout.Token);
        during?.Invoke(stream, connection);
        var sent = await writing;
        await stream.DisposeAsync();
        var (length, received) = await reading;

        Assert.Equal(UploadBytes, length);
        Assert.Equal(sent, received);
        return (await client.GetStatisticsAsync(timeout.Token), await server.GetStatisticsAsync(timeout.Token));
    }

    /// <summary>An ICMPv6 packet too big (RFC 4443 §3.2) quoting the start of a segment; the kernel fills in the checksum.</summary>
    private static byte[] PacketTooBigV6(IpAddress quotedSource, IpAddress quotedDestination, ushort sourcePort, ushort destinationPort, uint sequence, uint mtu, byte nextHeader)
    {
        var message = new byte[8 + 40 + 20];
        message[0] = IcmpPacketTooBig.IPv6PacketTooBig;
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), mtu);
        var quoted = message.AsSpan(8);
        quoted[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(quoted[4..], 1440);
        quoted[6] = nextHeader;
        quoted[7] = 64;
        quotedSource.WriteTo(quoted[8..]);
        quotedDestination.WriteTo(quoted[24..]);
        WriteQuotedSegmentStart(quoted[40..], sourcePort, destinationPort, sequence);
        return message;
    }

    /// <summary>
    /// An ICMP destination unreachable, fragmentation needed (RFC 792, next-hop MTU from RFC 1191 §4), quoting an IPv4
    /// header with DF and the start of a segment, its checksum computed (a raw ICMP socket sends the message as given).
    /// </summary>
    private static byte[] FragmentationNeeded(IpAddress quotedSource, IpAddress quotedDestination, ushort sourcePort, ushort destinationPort, uint sequence, ushort mtu, byte protocol)
    {
        var message = new byte[8 + 20 + 8];
        message[0] = IcmpPacketTooBig.IPv4DestinationUnreachable;
        message[1] = IcmpPacketTooBig.IPv4FragmentationNeeded;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), mtu);
        var quoted = message.AsSpan(8);
        quoted[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(quoted[2..], 1440);
        quoted[6] = 0x40;
        quoted[8] = 64;
        quoted[9] = protocol;
        quotedSource.WriteTo(quoted[12..]);
        quotedDestination.WriteTo(quoted[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(quoted[10..], InternetChecksum.Compute(quoted[..20]));
        WriteQuotedSegmentStart(quoted[20..], sourcePort, destinationPort, sequence);
        return ForgedIcmp.WithIcmpChecksum(message);
    }

    /// <summary>The first 8 bytes of a segment header, all an ICMP error is sure to quote: ports and sequence number.</summary>
    private static void WriteQuotedSegmentStart(Span<byte> segment, ushort sourcePort, ushort destinationPort, uint sequence)
    {
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment[4..], sequence);
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// ICMP "packet too big" read by the runtime that ships, over raw protocol 253 across a real routed path (client,
/// router and server namespaces; the router's link toward the server narrower than the endpoints' 1500-byte links):
/// the client's first segments are too big for the second link, the router answers with ICMPv6 packet too big or
/// ICMP fragmentation needed, and
/// the connection must shrink its segments and finish the upload byte-exact. Forged reports sent at a live connection
/// must change nothing. Needs root (network namespaces, raw sockets).
/// </summary>
[Trait("Category", "Netns")]
[Collection(MultiNodeCollection.Name)]
public sealed class PathMtuNetnsTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7300;
    private const long UploadBytes = 8L << 20;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(120);

    private readonly ITestOutputHelper _output;

    public PathMtuNetnsTests(ITestOutputHelper output)
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
    {
        _output = output;
    }

    [Theory]
    [InlineData(true, 1280)]
    [InlineData(false, 1200)]
    public async Task An_upload_through_a_narrower_link_must_shrink_its_segments_on_packet_too_big_and_arrive_byte_exact(bool ipv6, int linkMtu)
    {
        using var path = RoutedNamespacePath.Create(ipv6, linkMtu);
        var reassembliesBefore = path.ServerReassemblies();

        var (clientStats, serverStats) = await UploadAsync(path, during: null);

        // Packets that went out before the MSS went down were dropped by the router (IPv6 routers never fragment;
        // our IPv4 packets carry DF): whatever the server reassembled was fragmented at the source.
        var fragmented = path.ServerReassemblies() - reassembliesBefore;
        _output.WriteLine($"reports routed {clientStats.PacketTooBigRouted}, applied {clientStats.PacketTooBigApplied}, refused {clientStats.PacketTooBigRefused}; datagrams the server reassembled {fragmented}");
        Assert.True(clientStats.PacketTooBigApplied >= 1, $"no report lowered the MSS: {clientStats}");
        Assert.InRange(fragmented, 0, 200);
        Assert.Equal(0, serverStats.MalformedSegments);
    }

    [Fact]
    public async Task Forged_ICMPv6_packet_too_big_messages_at_a_live_connection_must_change_nothing()
    {
        using var path = RoutedNamespacePath.Create(ipv6: true, serverLinkMtu: 1500);
        var forged = 0;

        var (clientStats, _) = await UploadAsync(path, during: (client, server) =>
        {
            var random = new Random(8201);
            var messages = new List<byte[]>();
            var clientPort = (ushort)client.LocalEndPoint.Port;
            for (var i = 0; i < 10; i++)
            {
                // The right 4-tuple, a guessed sequence number: one of 2^32, in flight with odds of a window in 2^32.
                messages.Add(PacketTooBig(path.ClientAddress, path.ServerAddress, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), 1280));
                forged++;
            }

            // A guessed sequence number with an MTU below IPv6's minimum, and one above the link's.
            messages.Add(PacketTooBig(path.ClientAddress, path.ServerAddress, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), 600));
            messages.Add(PacketTooBig(path.ClientAddress, path.ServerAddress, clientPort, ServicePort, (uint)random.NextInt64(0, 1L << 32), 9000));
            forged += 2;

            // Other ports, another quoted source, another next header: no connection of ours; never routed.
            messages.Add(PacketTooBig(path.ClientAddress, path.ServerAddress, (ushort)(clientPort + 1), ServicePort, 0, 1280));
            messages.Add(PacketTooBig(path.ClientAddress, path.ServerAddress, clientPort, ServicePort + 1, 0, 1280));
            messages.Add(PacketTooBig(path.RouterClientAddress, path.ServerAddress, clientPort, ServicePort, 0, 1280));
            messages.Add(PacketTooBig(path.ClientAddress, path.ServerAddress, clientPort, ServicePort, 0, 1280, nextHeader: 17));

            // Garbage after a plausible type and code, and quotes cut short.
            for (var i = 0; i < 20; i++)
            {
                var garbage = new byte[random.Next(4, 100)];
                random.NextBytes(garbage);
                (garbage[0], garbage[1]) = (IcmpPacketTooBig.IPv6PacketTooBig, 0);
                messages.Add(garbage);
            }

            var valid = PacketTooBig(path.ClientAddress, path.ServerAddress, clientPort, ServicePort, 0, 1280);
            messages.Add(valid[..20]);
            messages.Add(valid[..50]);
            SendIcmpV6(path.Router, path.ClientAddress, messages);
        });

        Assert.Equal(0, clientStats.PacketTooBigApplied);
        Assert.Equal(forged, clientStats.PacketTooBigRouted);
        Assert.Equal(forged, clientStats.PacketTooBigRefused);
    }

    /// <summary>
    /// A raw-protocol-253 runtime in the server and the client namespace; the client uploads <see cref="UploadBytes"/>
    /// (with <paramref name="during"/> run once the first write is under way) and closes; the server reads to the FIN. Both
    /// digests must agree. Returns both runtimes' statistics.
    /// </summary>
    private async Task<(PacketStatistics Client, PacketStatistics Server)> UploadAsync(RoutedNamespacePath path, Action<MtcpStream, MtcpConnection>? during)
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        var serverTransport = path.Server.Run(() => RawIPTransport.OpenExperimental(path.ServerAddress));
        var clientTransport = path.Client.Run(() => RawIPTransport.OpenExperimental(path.ClientAddress));
        await using var server = MtcpRuntime.Start(Sys, serverTransport, NodeConfig(path.ServerAddress.ToString(), "raw"), "server");
        await using var client = MtcpRuntime.Start(Sys, clientTransport, NodeConfig(path.ClientAddress.ToString(), "raw"), "client");
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var connector = new MtcpClient(client);
        var stream = await connector.ConnectAsync(new IPEndPoint(path.ServerAddress.ToIPAddress(), ServicePort), timeout.Token);
        await using var connection = await accepting;

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
    private static byte[] PacketTooBig(IpAddress quotedSource, IpAddress quotedDestination, ushort sourcePort, ushort destinationPort, uint sequence, uint mtu, byte nextHeader = RawIPTransport.ExperimentalProtocol)
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
        BinaryPrimitives.WriteUInt16BigEndian(quoted[40..], sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(quoted[42..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(quoted[44..], sequence);
        return message;
    }

    /// <summary>Sends each message from <paramref name="from"/>'s namespace to <paramref name="destination"/> on a raw ICMPv6 socket.</summary>
    private static void SendIcmpV6(NetworkNamespace from, IpAddress destination, IEnumerable<byte[]> messages) => from.Run(() =>
    {
        using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Raw, ProtocolType.IcmpV6);
        var target = new IPEndPoint(destination.ToIPAddress(), 0);
        foreach (var message in messages)
        {
            socket.SendTo(message, target);
        }
    });
}

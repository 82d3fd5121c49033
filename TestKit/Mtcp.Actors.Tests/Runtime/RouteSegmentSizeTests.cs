using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Packets;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// The MSS of a connection follows the route to its peer, at connect and at accept: the packet actor over an
/// in-memory transport that reports a 1,500-byte route MTU towards one address (as the raw and UDP transports read
/// it from the kernel) and none towards the others; the test plays the peer with hand-built segments.
/// </summary>
[Trait("Category", "Actors")]
public sealed class RouteSegmentSizeTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ListenPort = 80;
    private const ushort PeerPort = 40000;

    // An Ethernet route: 1,500 bytes of MTU less the IPv4 header, the TCP header and room for 40 bytes of options.
    private const int RouteSegmentLength = 1500 - 20;
    private const int RouteMss = RouteSegmentLength - 20 - 40;

    private static readonly IpAddress NodeAddress = IpAddress.Parse("10.1.0.1");
    private static readonly IpAddress PeerAddress = IpAddress.Parse("10.1.0.2");
    private static readonly IpAddress UnroutedAddress = IpAddress.Parse("10.1.0.3");

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly RoutedTransport _node;
    private readonly IActorRef _packetActor;

    public RouteSegmentSizeTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.Empty))
    {
        _node = new RoutedTransport(_fabric.Attach(NodeAddress), PeerAddress, RouteSegmentLength);
        var config = MtcpConfig.WithFallback(RuntimeTestSupport.NodeConfig(NodeAddress.ToString()));
        _packetActor = Sys.ActorOf(PacketActor.Props(new OpenedTransport(_node, "a test transport with a route"), RuntimeSettings.Create(config), TcpSettings.Create(config)), "packets");
    }

    [Fact]
    public void Connect_must_announce_the_mss_of_the_route_to_the_server_and_look_it_up_once()
    {
        using var peer = _fabric.Attach(PeerAddress);
        _packetActor.Tell(new ConnectTo(PeerAddress, ListenPort, new TaskCompletionSource<EndpointChannel>(), CancellationToken.None));
        var syn = ReceiveAt(peer);
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.Equal((ushort?)RouteMss, syn.Options.MaxSegmentSize);

        // A second connection within mtcp.runtime.route-mtu-cache reuses the MTU read for the first.
        _packetActor.Tell(new ConnectTo(PeerAddress, ListenPort, new TaskCompletionSource<EndpointChannel>(), CancellationToken.None));
        Assert.Equal((ushort?)RouteMss, ReceiveAt(peer).Options.MaxSegmentSize);
        Assert.Equal(1, _node.Lookups(PeerAddress));
    }

    [Fact]
    public void Accept_must_answer_with_the_mss_of_the_route_to_the_client()
    {
        using var peer = _fabric.Attach(PeerAddress);
        _packetActor.Tell(new Bind(ListenPort));
        ExpectMsg<Bound>();

        var syn = new TcpSegmentRepr
        {
            SourcePort = PeerPort,
            DestinationPort = ListenPort,
            SequenceNumber = new SeqNumber(1000),
            Flags = TcpFlags.Syn,
            Window = 65535,
            Options = new TcpOptions { MaxSegmentSize = 65495 },
        };
        var segment = new byte[syn.HeaderLength];
        syn.Emit(segment, default, PeerAddress, NodeAddress);
        Assert.True(peer.Send(NodeAddress, segment));

        var synAck = ReceiveAt(peer);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal((ushort?)RouteMss, synAck.Options.MaxSegmentSize);
    }

    [Fact]
    public void Without_a_route_the_mss_must_be_the_transports_largest()
    {
        using var peer = _fabric.Attach(UnroutedAddress);
        _packetActor.Tell(new ConnectTo(UnroutedAddress, ListenPort, new TaskCompletionSource<EndpointChannel>(), CancellationToken.None));

        // The reference's bound (65,495) is above what one in-memory segment carries with a full header.
        var largest = InMemoryPacketFabric.MaxSegmentLength - TcpSegment.MinHeaderLength - TcpSegment.MaxOptionsLength;
        Assert.Equal((ushort?)largest, ReceiveAt(peer).Options.MaxSegmentSize);
    }

    private static TcpSegmentRepr ReceiveAt(IPacketTransport peer)
    {
        var buffer = new byte[peer.ReceiveBufferLength];
        Assert.Equal(ReceiveOutcome.Received, peer.Receive(buffer, TimeSpan.FromSeconds(5), out var received));
        Assert.True(TcpSegmentRepr.TryParse(received.SliceOf(buffer.AsSpan()), received.Source, received.Destination, ChecksumPolicy.Verify, out var header, out _, out var error), $"the node sent an invalid segment: {error}");
        return header;
    }

    /// <summary>An in-memory transport with a kernel-like route towards one address; counts the lookups.</summary>
    private sealed class RoutedTransport(IPacketTransport inner, IpAddress routed, int segmentLength) : IPacketTransport
    {
        private readonly Dictionary<IpAddress, int> _lookups = [];

        public IpAddress LocalAddress => inner.LocalAddress;

        public int MaxSegmentLength => inner.MaxSegmentLength;

        public int ReceiveBufferLength => inner.ReceiveBufferLength;

        public int Lookups(IpAddress destination)
        {
            lock (_lookups)
            {
                return _lookups.GetValueOrDefault(destination);
            }
        }

        public int? MaxSegmentLengthTo(IpAddress destination)
        {
            lock (_lookups)
            {
                _lookups[destination] = _lookups.GetValueOrDefault(destination) + 1;
            }

            return destination == routed ? segmentLength : null;
        }

        public bool Send(IpAddress destination, ReadOnlySpan<byte> segment) => inner.Send(destination, segment);

        public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received) => inner.Receive(buffer, timeout, out received);

        public void Dispose() => inner.Dispose();
    }
}

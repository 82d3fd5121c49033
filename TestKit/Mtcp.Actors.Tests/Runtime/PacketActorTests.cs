using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Packets;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// The packet actor over an in-memory transport, with TestProbes registered in its table as the listener and the
/// endpoint; the test plays the peer with hand-built segments on a transport of its own.
/// </summary>
[Trait("Category", "Actors")]
public sealed class PacketActorTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ListenPort = 80;
    private const ushort ConnectedPort = 8080;
    private const ushort PeerPort = 40000;
    private static readonly IpAddress NodeAddress = IpAddress.Parse("10.1.0.1");
    private static readonly IpAddress PeerAddress = IpAddress.Parse("10.1.0.2");

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly IPacketTransport _peer;
    private readonly byte[] _peerBuffer;
    private readonly ConnectionTable _table = new();
    private readonly TestProbe _listener;
    private readonly TestProbe _endpoint;
    private readonly IActorRef _packetActor;

    public PacketActorTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.Empty))
    {
        _peer = _fabric.Attach(PeerAddress);
        _peerBuffer = new byte[_peer.ReceiveBufferLength];
        _listener = CreateTestProbe("listener");
        _endpoint = CreateTestProbe("endpoint");
        _table.TryAddListener(ListenPort, _listener.Ref);
        _table.TryAddEndpoint(new ConnectionKey(PeerAddress, PeerPort, ConnectedPort), _endpoint.Ref);

        var config = MtcpConfig.WithFallback(RuntimeTestSupport.NodeConfig(NodeAddress.ToString()));
        var settings = RuntimeSettings.Create(config);
        var opened = PacketTransports.Open(settings, _fabric);
        _packetActor = Sys.ActorOf(PacketActor.Props(opened, settings, TcpSettings.Create(config), table: _table), "packets");
    }

    private void SendFromPeer(TcpSegmentRepr header, ReadOnlySpan<byte> payload = default)
    {
        var segment = new byte[header.HeaderLength + payload.Length];
        header.Emit(segment, payload, PeerAddress, NodeAddress);
        Assert.True(_peer.Send(NodeAddress, segment));
    }

    private static TcpSegmentRepr Segment(ushort destinationPort, TcpFlags flags, uint seq = 1000, uint ack = 0) => new()
    {
        SourcePort = PeerPort,
        DestinationPort = destinationPort,
        SequenceNumber = new SeqNumber(seq),
        AcknowledgmentNumber = new SeqNumber(ack),
        Flags = flags,
        Window = 1024,
    };

    private TcpSegmentRepr ReceiveAtPeer()
    {
        Assert.Equal(ReceiveOutcome.Received, _peer.Receive(_peerBuffer, TimeSpan.FromSeconds(5), out var received));
        Assert.Equal(NodeAddress, received.Source);
        Assert.True(TcpSegmentRepr.TryParse(received.SliceOf(_peerBuffer.AsSpan()), received.Source, received.Destination, ChecksumPolicy.Verify, out var header, out _, out var error), $"the node sent an invalid segment: {error}");
        return header;
    }

    private PacketStatistics Statistics() => _packetActor.Ask<PacketStatistics>(GetPacketStatistics.Instance, TimeSpan.FromSeconds(5)).Result;

    [Fact]
    public void Syn_for_a_new_4_tuple_must_go_to_the_listener_of_its_port()
    {
        SendFromPeer(Segment(ListenPort, TcpFlags.Syn) with { Options = new TcpOptions { MaxSegmentSize = 1460 } });

        var syn = _listener.ExpectMsg<InboundSegment>();
        Assert.Equal(new ConnectionKey(PeerAddress, PeerPort, ListenPort), syn.Key);
        Assert.Equal(TcpFlags.Syn, syn.Header.Flags);
        Assert.Equal((ushort?)1460, syn.Header.Options.MaxSegmentSize);
        syn.Release();
        _endpoint.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void Segment_of_a_known_4_tuple_must_go_to_its_endpoint_with_its_payload()
    {
        SendFromPeer(Segment(ConnectedPort, TcpFlags.Ack | TcpFlags.Psh, seq: 5000, ack: 77), "payload bytes"u8);

        var segment = _endpoint.ExpectMsg<InboundSegment>();
        Assert.Equal(new SeqNumber(5000), segment.Header.SequenceNumber);
        Assert.Equal("payload bytes", System.Text.Encoding.ASCII.GetString(segment.Payload));
        segment.Release();
        Assert.True(segment.Payload.IsEmpty);
        _listener.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void Segments_that_arrived_together_must_reach_their_endpoint_as_bursts_in_order_bounded_by_the_burst_size()
    {
        // A node of its own whose transport already holds five segments when its receive thread starts: they are read
        // in one go, at most mtcp.runtime.receive-burst (here 2) per message.
        var fabric = new InMemoryPacketFabric();
        var peer = fabric.Attach(PeerAddress);
        var table = new ConnectionTable();
        var endpoint = CreateTestProbe("burst-endpoint");
        table.TryAddEndpoint(new ConnectionKey(PeerAddress, PeerPort, ConnectedPort), endpoint.Ref);
        var config = MtcpConfig.WithFallback(RuntimeTestSupport.NodeConfig(NodeAddress.ToString(), extra: "mtcp.runtime.receive-burst = 2"));
        var settings = RuntimeSettings.Create(config);
        var opened = PacketTransports.Open(settings, fabric);
        for (var i = 0; i < 5; i++)
        {
            var header = Segment(ConnectedPort, TcpFlags.Ack, seq: 1000 + (uint)(i * 100), ack: 77);
            var segment = new byte[header.HeaderLength + 100];
            header.Emit(segment, new byte[100], PeerAddress, NodeAddress);
            Assert.True(peer.Send(NodeAddress, segment));
        }

        Sys.ActorOf(PacketActor.Props(opened, settings, TcpSettings.Create(config), table: table), "burst-packets");

        var first = endpoint.ExpectMsg<InboundBurst>();
        var second = endpoint.ExpectMsg<InboundBurst>();
        var last = endpoint.ExpectMsg<InboundSegment>();
        var segments = first.Segments.Concat(second.Segments).Append(last).ToList();
        Assert.Equal([2, 2], new[] { first.Segments.Count, second.Segments.Count });
        Assert.Equal(Enumerable.Range(0, 5).Select(i => new SeqNumber(1000 + (uint)(i * 100))), segments.Select(s => s.Header.SequenceNumber));
        Assert.All(segments, s => Assert.Equal(100, s.PayloadLength));
        segments.ForEach(s => s.Release());
    }

    [Fact]
    public void Stray_segment_with_ack_must_be_answered_by_a_reset_at_its_ack_number()
    {
        SendFromPeer(Segment(9999, TcpFlags.Ack, seq: 123, ack: 4567), "x"u8);

        var reset = ReceiveAtPeer();
        Assert.Equal(TcpFlags.Rst, reset.Flags);
        Assert.Equal(new SeqNumber(4567), reset.SequenceNumber);
        Assert.Equal(PeerPort, reset.DestinationPort);
        Assert.Equal((ushort)9999, reset.SourcePort);
        AwaitAssert(() =>
        {
            var stats = Statistics();
            Assert.Equal(1, stats.StraySegments);
            Assert.Equal(1, stats.ResetsSent);
        });
    }

    [Fact]
    public void Syn_to_a_port_without_listener_must_be_refused_with_reset_and_ack()
    {
        SendFromPeer(Segment(9999, TcpFlags.Syn, seq: 700));

        var reset = ReceiveAtPeer();
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, reset.Flags);
        Assert.Equal(new SeqNumber(701), reset.AcknowledgmentNumber);
    }

    [Fact]
    public void Ack_to_a_listening_port_must_go_to_the_listener_which_checks_it_for_a_SYN_cookie()
    {
        // RFC 4987 §3.6: it may complete a handshake answered with a cookie; the listener resets it when it does not
        // (ListenerQueueTests), the receive thread answers nothing.
        SendFromPeer(Segment(ListenPort, TcpFlags.Ack, seq: 1, ack: 999));

        var routed = _listener.ExpectMsg<InboundSegment>();
        Assert.Equal(TcpFlags.Ack, routed.Header.Flags);
        Assert.Equal(ReceiveOutcome.TimedOut, _peer.Receive(_peerBuffer, TimeSpan.FromMilliseconds(200), out _));
    }

    [Fact]
    public void Incoming_reset_for_no_connection_must_not_be_answered()
    {
        SendFromPeer(Segment(9999, TcpFlags.Rst, seq: 1));

        AwaitAssert(() => Assert.Equal(1, Statistics().StraySegments));
        Assert.Equal(ReceiveOutcome.TimedOut, _peer.Receive(_peerBuffer, TimeSpan.FromMilliseconds(200), out _));
        Assert.Equal(0, Statistics().ResetsSent);
    }

    [Fact]
    public void Malformed_segments_must_be_counted_by_reason_and_change_nothing()
    {
        var valid = new byte[20];
        Segment(ConnectedPort, TcpFlags.Ack).Emit(valid, default, PeerAddress, NodeAddress);
        var badChecksum = (byte[])valid.Clone();
        badChecksum[17] ^= 0xFF;
        var badOffset = (byte[])valid.Clone();
        badOffset[12] = 0x40;

        _peer.Send(NodeAddress, badChecksum);
        _peer.Send(NodeAddress, valid.AsSpan(0, 10));
        _peer.Send(NodeAddress, badOffset);

        AwaitAssert(() =>
        {
            var stats = Statistics();
            Assert.Equal(1, stats.MalformedByReason.GetValueOrDefault(WireError.BadChecksum));
            Assert.Equal(1, stats.MalformedByReason.GetValueOrDefault(WireError.Truncated));
            Assert.Equal(1, stats.MalformedByReason.GetValueOrDefault(WireError.BadDataOffset));
            Assert.Equal(0, stats.SegmentsRouted);
        });
        _endpoint.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(ReceiveOutcome.TimedOut, _peer.Receive(_peerBuffer, TimeSpan.FromMilliseconds(100), out _));

        // The receive path is still alive: the valid segment is routed.
        _peer.Send(NodeAddress, valid);
        _endpoint.ExpectMsg<InboundSegment>().Release();
    }

    [Fact]
    public void Bind_must_refuse_a_port_that_already_has_a_listener()
    {
        _packetActor.Tell(new Bind(ListenPort));

        var failure = ExpectMsg<Status.Failure>();
        Assert.IsType<InvalidOperationException>(failure.Cause);
    }

    protected override void AfterAll()
    {
        _peer.Dispose();
        base.AfterAll();
    }
}

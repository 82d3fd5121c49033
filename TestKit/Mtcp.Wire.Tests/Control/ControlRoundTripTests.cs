using System.Collections.Immutable;
using Mtcp.Wire.Control;

namespace Mtcp.Wire.Tests.Control;

[Trait("Category", "Wire")]
public sealed class ControlRoundTripTests
{
    private static T RoundTrip<T>(T message)
        where T : ControlMessage
    {
        var bytes = message.ToArray();
        Assert.Equal(message.GetEncodedLength(), bytes.Length);
        Assert.True(ControlMessageCodec.TryDecode(message.Manifest, bytes, out var decoded, out var error), error.ToString());
        Assert.Equal(message, decoded);
        Assert.Equal(Convert.ToHexString(bytes), Convert.ToHexString(decoded.ToArray()));
        return Assert.IsType<T>(decoded);
    }

    private static StateReply Reply(ReadOnlyMemory<byte> appState, ReadOnlyMemory<byte> writeBufferState, ReadOnlyMemory<byte> readBufferState, uint sndBytesDiscard = 0) =>
        new(
            7,
            ControlSamples.NewEndpointCidV4,
            new SeqNumber(0x7FFFFFFF),
            sndBytesDiscard,
            new SeqNumber(0x80000000),
            default,
            default,
            appState,
            writeBufferState,
            readBufferState,
            []);

    [Fact]
    public void Reply_with_every_part_empty_must_round_trip()
    {
        var decoded = RoundTrip(Reply(default, default, default));

        Assert.Equal(0, decoded.AppStateLength);
        Assert.Equal(0, decoded.SndStateLength);
        Assert.Equal(0, decoded.RcvStateLength);
        Assert.Empty(decoded.TStateTransitions);
        Assert.Equal(TcpStateCode.Closed, decoded.TSnapshot.TState);
    }

    [Fact]
    public void Reply_with_megabyte_parts_must_round_trip()
    {
        var random = new Random(20011);
        var appState = new byte[(1 << 20) + 3];
        var writeBuffer = new byte[1 << 20];
        var readBuffer = new byte[(1 << 20) - 1];
        random.NextBytes(appState);
        random.NextBytes(writeBuffer);
        random.NextBytes(readBuffer);

        var decoded = RoundTrip(Reply(appState, writeBuffer, readBuffer));

        Assert.True(decoded.AppState.Span.SequenceEqual(appState));
        Assert.True(decoded.WriteBufferState.Span.SequenceEqual(writeBuffer));
        Assert.True(decoded.ReadBufferState.Span.SequenceEqual(readBuffer));
        Assert.Equal(new SeqNumber(0x80000000) + writeBuffer.Length, decoded.SndSeqSnapshot);
        Assert.Equal(new SeqNumber(0x7FFFFFFF) - readBuffer.Length, decoded.RcvSeqSnapshot);
    }

    [Fact]
    public void Reply_that_discards_duplicates_must_place_the_snapshot_before_snd_max_seen()
    {
        var decoded = RoundTrip(Reply(new byte[] { 1 }, default, default, sndBytesDiscard: 0x100));

        Assert.Equal(0x100u, decoded.SndBytesDiscard);
        Assert.Equal(new SeqNumber(0x80000000) - 0x100, decoded.SndSeqSnapshot);
    }

    [Fact]
    public void Request_with_an_empty_or_full_authenticator_and_ipv6_ids_must_round_trip()
    {
        RoundTrip(new StateRequest(0, ControlSamples.NewEndpointCidV6, ControlSamples.NewEndpointCidV6, new SeqNumber(0), default));
        RoundTrip(new StateRequest(ulong.MaxValue, ControlSamples.MigratingCidV4, ControlSamples.NewEndpointCidV6, new SeqNumber(uint.MaxValue), new byte[StateRequest.MaxAuthenticatorLength]));
    }

    [Fact]
    public void Reject_must_round_trip_every_reason_and_a_longest_non_ascii_diagnostic()
    {
        foreach (var reason in new[] { StateRejectReason.CbNotFound, StateRejectReason.InvalidState, StateRejectReason.AuthFailed })
        {
            RoundTrip(new StateReject(1, ControlSamples.NewEndpointCidV6, reason));
        }

        var longest = string.Concat(Enumerable.Repeat("€", StateReject.MaxDiagnosticLength / 3));
        Assert.Equal(longest, RoundTrip(new StateReject(2, ControlSamples.NewEndpointCidV4, StateRejectReason.AuthFailed, longest)).Diagnostic);
    }

    [Fact]
    public void Ack_must_round_trip_ipv4_and_ipv6_ids()
    {
        RoundTrip(new StateAck(3, ControlSamples.MigratingCidV4));
        RoundTrip(new StateAck(4, ControlSamples.NewEndpointCidV6));
    }

    [Fact]
    public void Decoded_messages_must_own_their_bytes_so_the_frame_buffer_can_be_reused()
    {
        var replyFrame = (byte[])ControlSamples.ReplyBytes.Clone();
        var requestFrame = (byte[])ControlSamples.RequestBytes.Clone();
        Assert.True(StateReply.TryDecode(replyFrame, out var reply, out _));
        Assert.True(StateRequest.TryDecode(requestFrame, out var request, out _));

        Array.Clear(replyFrame);
        Array.Clear(requestFrame);

        Assert.Equal(ControlSamples.Reply, reply);
        Assert.Equal(ControlSamples.Request, request);
    }

    [Fact]
    public void Manifests_must_stay_frozen_and_map_to_their_message_types()
    {
        Assert.Equal("SRQ", StateRequest.SerializerManifest);
        Assert.Equal("SRP", StateReply.SerializerManifest);
        Assert.Equal("SAK", StateAck.SerializerManifest);
        Assert.Equal("SRJ", StateReject.SerializerManifest);
        foreach (var (message, _) in ControlSamples.Golden())
        {
            Assert.True(ControlMessageCodec.TryGetMessageType(message.Manifest, out var type));
            Assert.Equal(message.MessageType, type);
        }
    }

    [Fact]
    public void Frame_header_must_tell_a_stream_reader_the_frame_length_before_the_body_arrives()
    {
        var bytes = ControlSamples.ReplyBytes;

        Assert.True(ControlFrameHeader.TryRead(bytes.AsSpan(0, ControlFrameHeader.Length), out var header, out _));

        Assert.Equal(bytes.Length, header.FrameLength);
        Assert.Equal(ControlMessageType.StateReply, header.MessageType);
        Assert.Equal(0x1122334455667788UL, header.RequestId);
    }

    [Fact]
    public void Equality_must_compare_payload_contents_not_buffers()
    {
        Assert.Equal(ControlSamples.Reply, ControlSamples.Reply);
        Assert.Equal(ControlSamples.Request, ControlSamples.Request);
        Assert.Equal(ControlSamples.Reply, ControlSamples.Reply with { });
        Assert.NotEqual<ControlMessage>(ControlSamples.Ack, new StateAck(ControlSamples.Ack.RequestId + 1, ControlSamples.MigratingCidV4));
        Assert.NotEqual(Reply(new byte[] { 1 }, default, default), Reply(new byte[] { 2 }, default, default));
    }

    [Fact]
    public void Constructors_must_refuse_values_the_wire_cannot_carry()
    {
        var cid = ControlSamples.MigratingCidV4;
        var mixed = new ConnectionId(IpAddress.Parse("10.0.0.1"), 1, IpAddress.Parse("::1"), 2);
        Assert.Throws<ArgumentException>(() => new StateAck(1, mixed));
        Assert.Throws<ArgumentException>(() => new StateAck(1, default));
        Assert.Throws<ArgumentException>(() => new StateRequest(1, cid, cid, default, new byte[StateRequest.MaxAuthenticatorLength + 1]));
        Assert.Throws<ArgumentException>(() => new StateReject(1, cid, StateRejectReason.CbNotFound, new string('x', StateReject.MaxDiagnosticLength + 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StateReject(1, cid, (StateRejectReason)0));
        Assert.Throws<ArgumentException>(() => Reply(default, new byte[] { 1 }, default, sndBytesDiscard: 1));
        Assert.Throws<ArgumentException>(() => Reply(default, default, default, sndBytesDiscard: 0x80000000));
        Assert.Throws<ArgumentException>(() => new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.None, 1460, 1, 0));
        Assert.Throws<ArgumentException>(() => new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.WindowScaling, 1460, 15, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpSnapshot((TcpStateCode)11, TcpSnapshotFlags.None, 1460, 0, 0));
        Assert.Throws<ArgumentException>(() => new SocketSnapshot((SocketStateFlags)8, SocketOptionFlags.None, 0));
        Assert.Throws<ArgumentException>(() => new StateReply(
            1, cid, default, 0, default, new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.None, 0, 0, 0), default, default, default, default,
            ImmutableArray.Create(new TcpStateTransition(TcpStateCode.CloseWait, TcpStateCode.LastAck))));
    }
}

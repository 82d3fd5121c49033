using System.Buffers.Binary;
using Mtcp.Wire.Control;

namespace Mtcp.Wire.Tests.Control;

/// <summary>The replication conversation's control messages: round trips through both decoders, and malformed frames refused.</summary>
[Trait("Category", "Wire")]
public sealed class ReplicaMessagesTests
{
    private static readonly ConnectionId Cid = new(IpAddress.Parse("192.0.2.10"), 40000, IpAddress.Parse("198.51.100.1"), 443);
    private static readonly ConnectionId Cid6 = new(IpAddress.Parse("2001:db8::10"), 40000, IpAddress.Parse("2001:db8::1"), 443);

    public static TheoryData<ControlMessage> Messages() =>
    [
        new ReplicaState(1, Cid, 3, 10, 4, new byte[] { 1, 2, 3, 4, 5, 6 }),
        new ReplicaState(2, Cid6, 1, 0, 0, Array.Empty<byte>()),
        new ReplicaReadLog(3, Cid, 3, new SeqNumber(0xFFFF_FFFE), new byte[] { 9, 8, 7 }),
        new ReplicaAck(4, Cid, ReplicaAckStatus.Held),
        new ReplicaAck(5, Cid6, ReplicaAckStatus.NeedsState),
        new ReplicaRelease(6, Cid),
        new ConnectionTakenOver(7, Cid, 0),
        new ConnectionTakenOver(0, Cid6, uint.MaxValue),
    ];

    [Theory]
    [MemberData(nameof(Messages))]
    public void Message_must_round_trip_through_the_frame_and_the_manifest_decoders(ControlMessage message)
    {
        var frame = message.ToArray();

        Assert.True(ControlMessageCodec.TryDecode(frame, out var byType, out var error), error.ToString());
        Assert.True(ControlMessageCodec.TryDecode(message.Manifest, frame, out var byManifest, out error), error.ToString());
        Assert.Equal(message, byType);
        Assert.Equal(message, byManifest);
        Assert.Equal(frame, byType.ToArray());
    }

    [Fact]
    public void Read_log_must_end_after_its_bytes_across_the_sequence_wrap()
    {
        var readLog = new ReplicaReadLog(1, Cid, 1, new SeqNumber(0xFFFF_FFFE), new byte[] { 1, 2, 3 });
        Assert.Equal(new SeqNumber(1), readLog.End);
    }

    [Fact]
    public void State_piece_beyond_the_total_must_be_refused()
    {
        Assert.Throws<ArgumentException>(() => new ReplicaState(1, Cid, 1, 3, 2, new byte[] { 1, 2 }));

        var frame = new ReplicaState(1, Cid, 1, 4, 2, new byte[] { 1, 2 }).ToArray();
        frame[ControlFrameHeader.Length + 13 + 4 + 3] = 3;
        Assert.False(ReplicaState.TryDecode(frame, out _, out var error));
        Assert.Equal(ControlWireError.LengthExceedsPayload, error);
    }

    [Fact]
    public void Ack_with_an_undefined_status_or_trailing_bytes_must_be_refused()
    {
        var frame = new ReplicaAck(1, Cid, ReplicaAckStatus.Held).ToArray();
        frame[^1] = 9;
        Assert.False(ReplicaAck.TryDecode(frame, out _, out var error));
        Assert.Equal(ControlWireError.BadReplicaAckStatus, error);

        Assert.False(ReplicaRelease.TryDecode(new ReplicaAck(1, Cid, ReplicaAckStatus.Held).ToArray(), out _, out error));
        Assert.Equal(ControlWireError.UnexpectedMessageType, error);
    }

    [Fact]
    public void Takeover_notice_without_its_epoch_or_with_trailing_bytes_must_be_refused()
    {
        var frame = new ConnectionTakenOver(1, Cid, 5).ToArray();
        var withoutEpoch = frame[..^4];
        BinaryPrimitives.WriteUInt32BigEndian(withoutEpoch.AsSpan(4), (uint)(withoutEpoch.Length - ControlFrameHeader.Length));
        Assert.False(ConnectionTakenOver.TryDecode(withoutEpoch, out _, out var error));
        Assert.Equal(ControlWireError.Truncated, error);

        var trailing = new byte[frame.Length + 1];
        frame.CopyTo(trailing, 0);
        BinaryPrimitives.WriteUInt32BigEndian(trailing.AsSpan(4), (uint)(trailing.Length - ControlFrameHeader.Length));
        Assert.False(ConnectionTakenOver.TryDecode(trailing, out _, out error));
        Assert.Equal(ControlWireError.TrailingBytes, error);

        Assert.False(ConnectionTakenOver.TryDecode(new StateAck(1, Cid).ToArray(), out _, out error));
        Assert.Equal(ControlWireError.UnexpectedMessageType, error);
    }
}

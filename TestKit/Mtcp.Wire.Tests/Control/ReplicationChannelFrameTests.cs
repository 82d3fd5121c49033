using Mtcp.Wire.Control;

namespace Mtcp.Wire.Tests.Control;

[Trait("Category", "Wire")]
public sealed class ReplicationChannelFrameTests
{
    private const byte Marker = 0xEE;
    private const int Limit = 128_000;

    /// <summary>The golden frame of <see cref="ControlEnvelopeTests.EnvelopeBytes"/>: its length, then the envelope.</summary>
    private static readonly byte[] FrameBytes = Convert.FromHexString(
        ControlEnvelopeTests.EnvelopeBytes.Length.ToString("X8", System.Globalization.CultureInfo.InvariantCulture)
        + Convert.ToHexString(ControlEnvelopeTests.EnvelopeBytes));

    [Fact]
    public void Writer_must_write_the_golden_bytes_and_nothing_else()
    {
        var buffer = new byte[FrameBytes.Length + 8];
        Array.Fill(buffer, Marker);

        var written = ReplicationChannelFrame.Write(buffer, ControlEnvelopeTests.EnvelopeBytes);

        Assert.Equal(FrameBytes.Length, written);
        Assert.Equal(FrameBytes.Length, ReplicationChannelFrame.GetEncodedLength(ControlEnvelopeTests.EnvelopeBytes.Length));
        Assert.Equal(Convert.ToHexString(FrameBytes), Convert.ToHexString(buffer, 0, written));
        Assert.All(buffer[written..], b => Assert.Equal(Marker, b));
    }

    [Fact]
    public void Writer_must_refuse_an_empty_envelope_and_a_short_destination_writing_nothing()
    {
        var buffer = new byte[FrameBytes.Length - 1];
        Array.Fill(buffer, Marker);

        Assert.Equal(0, ReplicationChannelFrame.Write(buffer, ControlEnvelopeTests.EnvelopeBytes));
        Assert.Equal(0, ReplicationChannelFrame.Write(buffer, []));
        Assert.All(buffer, b => Assert.Equal(Marker, b));
    }

    [Fact]
    public void Reader_must_return_the_golden_envelope_and_the_bytes_the_frame_takes()
    {
        var received = FrameBytes.Concat(new byte[] { 0, 0, 0, 9, 1, 2 }).ToArray();

        Assert.Equal(ReplicationChannelFrameStatus.Complete, ReplicationChannelFrame.TryRead(received, Limit, out var envelope, out var frameLength));

        Assert.Equal(FrameBytes.Length, frameLength);
        Assert.Equal(ControlEnvelopeTests.EnvelopeBytes, envelope.ToArray());
        Assert.True(ControlEnvelope.TryDecode(envelope, out _, out _));
    }

    [Fact]
    public void Reader_must_ask_for_more_at_every_truncation_and_name_the_frame_length_once_the_header_is_in()
    {
        for (var length = 0; length < FrameBytes.Length; length++)
        {
            Assert.Equal(ReplicationChannelFrameStatus.Incomplete, ReplicationChannelFrame.TryRead(FrameBytes.AsSpan(0, length), Limit, out var envelope, out var frameLength));
            Assert.True(envelope.IsEmpty);
            Assert.Equal(length < ReplicationChannelFrame.HeaderLength ? 0 : FrameBytes.Length, frameLength);
        }
    }

    [Theory]
    [InlineData(Limit + 1)]
    [InlineData(int.MaxValue)]
    [InlineData(uint.MaxValue)]
    public void Reader_must_refuse_a_length_over_the_limit_before_its_envelope_is_there(uint length)
    {
        var header = new byte[ReplicationChannelFrame.HeaderLength];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(header, length);

        Assert.Equal(ReplicationChannelFrameStatus.TooLong, ReplicationChannelFrame.TryRead(header, Limit, out var envelope, out var frameLength));
        Assert.True(envelope.IsEmpty);
        Assert.Equal(0, frameLength);
    }

    [Fact]
    public void Reader_must_accept_a_length_of_exactly_the_limit()
    {
        var frame = new byte[ReplicationChannelFrame.GetEncodedLength(Limit)];
        Assert.Equal(frame.Length, ReplicationChannelFrame.Write(frame, new byte[Limit]));

        Assert.Equal(ReplicationChannelFrameStatus.Complete, ReplicationChannelFrame.TryRead(frame, Limit, out var envelope, out _));
        Assert.Equal(Limit, envelope.Length);
    }

    [Fact]
    public void Reader_must_refuse_a_zero_length()
    {
        Assert.Equal(ReplicationChannelFrameStatus.Empty, ReplicationChannelFrame.TryRead(new byte[8], Limit, out var envelope, out var frameLength));
        Assert.True(envelope.IsEmpty);
        Assert.Equal(0, frameLength);
    }

    [Fact]
    public void Reader_must_survive_garbage_and_never_claim_more_than_was_received_or_allowed()
    {
        var random = new Random(0x52434846);
        var buffer = new byte[512];
        for (var i = 0; i < 100_000; i++)
        {
            var received = buffer.AsSpan(0, random.Next(buffer.Length + 1));
            random.NextBytes(received);
            var limit = random.Next(-1, 600);

            var status = ReplicationChannelFrame.TryRead(received, limit, out var envelope, out var frameLength);

            switch (status)
            {
                case ReplicationChannelFrameStatus.Complete:
                    Assert.InRange(envelope.Length, 1, limit);
                    Assert.InRange(frameLength, ReplicationChannelFrame.HeaderLength + 1, received.Length);
                    Assert.Equal(frameLength, ReplicationChannelFrame.HeaderLength + envelope.Length);
                    break;
                case ReplicationChannelFrameStatus.Incomplete:
                    Assert.True(frameLength == 0 ? received.Length < ReplicationChannelFrame.HeaderLength : frameLength > received.Length && frameLength - ReplicationChannelFrame.HeaderLength <= limit);
                    break;
                default:
                    Assert.True(envelope.IsEmpty);
                    Assert.Equal(0, frameLength);
                    break;
            }
        }
    }
}

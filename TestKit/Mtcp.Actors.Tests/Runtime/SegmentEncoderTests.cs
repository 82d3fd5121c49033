using Mtcp.Actors.Packets;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// <see cref="SegmentEncoder"/> builds segments in its thread's buffer, shared by every encoder on the thread: each
/// segment must come out whole whatever encoder, and whatever segment size, used the buffer before it.
/// </summary>
[Trait("Category", "Actors")]
public sealed class SegmentEncoderTests
{
    private static readonly IpAddress Local = IpAddress.Parse("10.9.0.1");
    private static readonly IpAddress Remote = IpAddress.Parse("10.9.0.2");

    [Fact]
    public void Encoders_on_one_thread_must_each_emit_their_own_segment_whole()
    {
        var small = new SegmentEncoder(Local, maxPayload: 1);
        var large = new SegmentEncoder(Local, maxPayload: 65_000);
        var first = new TcpSegmentRepr { SourcePort = 41001, DestinationPort = 80, SequenceNumber = new SeqNumber(7000), Flags = TcpFlags.Syn, Window = 1024 };
        var second = first with { SourcePort = 41002, SequenceNumber = new SeqNumber(9000), Flags = TcpFlags.Rst };

        var fromSmall = small.Encode(first, Remote).ToArray();
        var fromLarge = large.Encode(second, Remote).ToArray();
        var fromSmallAgain = small.Encode(first, Remote).ToArray();

        Assert.Equal(first, Parse(fromSmall));
        Assert.Equal(second, Parse(fromLarge));
        Assert.Equal(fromSmall, fromSmallAgain);
    }

    [Fact]
    public async Task Encoders_on_other_threads_must_not_share_a_buffer()
    {
        var encoder = new SegmentEncoder(Local, maxPayload: 1460);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() =>
        {
            var header = new TcpSegmentRepr { SourcePort = (ushort)(42000 + i), DestinationPort = 80, SequenceNumber = new SeqNumber((uint)i * 1000), Flags = TcpFlags.Ack, Window = 512 };
            for (var round = 0; round < 1000; round++)
            {
                if (Parse(encoder.Encode(header, Remote).ToArray()) != header)
                {
                    return false;
                }
            }

            return true;
        })));

        Assert.All(results, Assert.True);
    }

    private static TcpSegmentRepr Parse(byte[] segment)
    {
        Assert.True(TcpSegmentRepr.TryParse(segment, Local, Remote, ChecksumPolicy.Verify, out var repr, out _, out var error), error.ToString());
        return repr;
    }
}

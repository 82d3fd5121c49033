using Mtcp.Actors.Api;
using Mtcp.Actors.Packets;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

[Trait("Category", "Actors")]
public sealed class InboundSegmentTests
{
    /// <summary>One connection's 256 KiB window of 1,420-byte segments: what can wait in an endpoint's mailbox at once.</summary>
    private const int WindowOfSegments = 185;

    /// <summary>The reference pool size (<c>mtcp.runtime.inbound-payload-buffers</c>) keeps a whole window of segments.</summary>
    [Fact]
    public void Payloads_released_on_another_thread_must_be_rented_again_without_allocating()
    {
        var key = new ConnectionKey(IpAddress.Parse("10.99.0.2"), 40000, 9000);
        var header = new TcpSegmentRepr { SourcePort = 40000, DestinationPort = 9000, Flags = TcpFlags.Ack };
        var payload = new byte[1420];
        var pool = InboundSegment.CreatePayloadPool(MtcpConfig.Reference.GetInt("mtcp.runtime.inbound-payload-buffers"));

        // As in the runtime: the receive thread creates a window of segments, an endpoint actor's thread releases them.
        long WindowCreatedAndReleasedElsewhere()
        {
            var segments = new InboundSegment[WindowOfSegments];
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < segments.Length; i++)
            {
                segments[i] = InboundSegment.Create(pool, key, header, payload);
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            var consumer = new Thread(() =>
            {
                foreach (var segment in segments)
                {
                    segment.Release();
                }
            });
            consumer.Start();
            consumer.Join();
            return allocated;
        }

        WindowCreatedAndReleasedElsewhere();
        var allocated = Enumerable.Range(0, 10).Select(_ => WindowCreatedAndReleasedElsewhere()).Max();

        // The message objects themselves are the only allocation: well under one payload array per segment.
        Assert.True(allocated < WindowOfSegments * 256, $"creating {WindowOfSegments} segments allocated {allocated} bytes ({allocated / WindowOfSegments} per segment)");
    }
}

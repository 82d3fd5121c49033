using System.Net;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// An endpoint hands the transport what it has sendable as one batch (<c>mtcp.runtime.send-batch</c>): a client and a
/// server runtime over an in-memory fabric, the client's transport recording each batch it is given (and passing it on),
/// the connection used through the API with 1,000-byte segments so that a write fills a window of several.
/// </summary>
[Trait("Category", "Actors")]
public sealed class SendBatchTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7200;
    private const int SegmentSize = 1000;

    // RFC 6928's initial window, the reference's mtcp.tcp.initial-window-segments: what the first write may send at once.
    private const int InitialWindowSegments = 10;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);
    private static readonly IpAddress ServerAddress = IpAddress.Parse("10.4.0.1");
    private static readonly IpAddress ClientAddress = IpAddress.Parse("10.4.0.2");

    private readonly InMemoryPacketFabric _fabric = new();

    public SendBatchTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
    {
    }

    [Fact]
    public async Task Window_must_go_out_as_one_batch_in_sequence_order()
    {
        var sent = await SendThroughRecordingClientAsync(sendBatch: 64, bytes: 64 * 1024);

        // The first write's initial window: ten segments, one batch, in sequence order.
        var firstWindow = sent.First(batch => batch.Any(segment => segment.PayloadLength > 0));
        Assert.Equal(InitialWindowSegments, firstWindow.Count(segment => segment.PayloadLength > 0));
        AssertInSequence(firstWindow);

        // Every data segment once and in order across the batches (no loss in memory, so no retransmission), far fewer
        // calls than segments.
        var data = sent.SelectMany(batch => batch).Where(segment => segment.PayloadLength > 0).ToList();
        AssertInSequence(data);
        Assert.Equal(64 * 1024, data.Sum(segment => segment.PayloadLength));
        var dataBatches = sent.Count(batch => batch.Any(segment => segment.PayloadLength > 0));
        Assert.True(dataBatches * 3 <= data.Count, $"{data.Count} data segments went in {dataBatches} batches");
    }

    [Fact]
    public async Task Batch_must_hold_at_most_send_batch_segments()
    {
        var sent = await SendThroughRecordingClientAsync(sendBatch: 4, bytes: 64 * 1024);

        Assert.All(sent, batch => Assert.InRange(batch.Count, 1, 4));
        var data = sent.SelectMany(batch => batch).Where(segment => segment.PayloadLength > 0).ToList();
        AssertInSequence(data);
        Assert.Equal(64 * 1024, data.Sum(segment => segment.PayloadLength));

        // The initial window of ten goes as four, four and two.
        Assert.Contains(sent, batch => batch.Count(segment => segment.PayloadLength > 0) == 4);
    }

    /// <summary>
    /// Connects a client over a recording transport to a server, writes <paramref name="bytes"/> in one write, reads them
    /// at the server, and returns the client's batches as they were handed to its transport.
    /// </summary>
    private async Task<List<List<SentSegment>>> SendThroughRecordingClientAsync(int sendBatch, int bytes)
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        var extra = $"mtcp.tcp.max-segment-size = {SegmentSize}\nmtcp.runtime.send-batch = {sendBatch}";
        await using var server = MtcpRuntime.Start(Sys, _fabric, NodeConfig(ServerAddress.ToString(), extra: extra), "server");
        var recording = new BatchRecordingTransport(_fabric.Attach(ClientAddress));
        await using var client = MtcpRuntime.Start(Sys, recording, NodeConfig(ClientAddress.ToString(), extra: extra), "client");
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token);
        using var connector = new MtcpClient(client);
        var stream = await connector.ConnectAsync(new IPEndPoint(ServerAddress.ToIPAddress(), ServicePort), timeout.Token);
        await using var accepted = await accepting;

        var written = new byte[bytes];
        new Random(bytes).NextBytes(written);
        await stream.WriteAsync(written, timeout.Token);
        var read = new byte[bytes];
        await accepted.Stream.ReadExactlyAsync(read, timeout.Token);
        Assert.Equal(written, read);
        return recording.Batches();
    }

    private static void AssertInSequence(IReadOnlyList<SentSegment> data)
    {
        for (var i = 1; i < data.Count; i++)
        {
            Assert.Equal(data[i - 1].Sequence + (uint)data[i - 1].PayloadLength, data[i].Sequence);
        }
    }

    private readonly record struct SentSegment(uint Sequence, int PayloadLength);

    /// <summary>An in-memory transport that records the segments of each batch it is given, then sends them as the fabric does.</summary>
    private sealed class BatchRecordingTransport(IPacketTransport inner) : IPacketTransport
    {
        private readonly List<List<SentSegment>> _batches = [];

        public IpAddress LocalAddress => inner.LocalAddress;

        public int MaxSegmentLength => inner.MaxSegmentLength;

        public int ReceiveBufferLength => inner.ReceiveBufferLength;

        public List<List<SentSegment>> Batches()
        {
            lock (_batches)
            {
                return [.. _batches];
            }
        }

        public int SendBatch(SegmentBatch batch)
        {
            var segments = new List<SentSegment>(batch.Count);
            for (var i = 0; i < batch.Count; i++)
            {
                Assert.True(TcpSegment.TryCreate(batch.SegmentAt(i), out var segment, out var error), $"the batch holds a malformed segment: {error}");
                segments.Add(new SentSegment(segment.SequenceNumber.Value, segment.Payload.Length));
            }

            lock (_batches)
            {
                _batches.Add(segments);
            }

            return SegmentBatch.SendEach(inner, batch);
        }

        public bool Send(IpAddress destination, ReadOnlySpan<byte> segment) => inner.Send(destination, segment);

        public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received) => inner.Receive(buffer, timeout, out received);

        public bool TryReceiveWaiting(Span<byte> buffer, out ReceivedSegment received) => inner.TryReceiveWaiting(buffer, out received);

        public void Dispose() => inner.Dispose();
    }
}

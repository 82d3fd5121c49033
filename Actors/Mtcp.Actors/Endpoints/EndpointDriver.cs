using Akka.Actor;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// What the server and the client endpoint actors share in driving their sans-IO endpoint, in the order it asks
/// (segments, events, deadline): the segment encoder and the transport, the one engine timer, and the application
/// stream's serving. Owned by one actor; called on its thread only.
/// </summary>
internal sealed class EndpointDriver(EndpointContext context, IPolledEndpoint endpoint, EndpointChannel channel, IStreamBuffers buffers)
{
    private readonly SegmentEncoder _encoder = new(context.LocalAddress, context.MaxPayload);
    private readonly EngineDeadline _deadline = new();
    private readonly StreamEvents _stream = new(channel, buffers);

    /// <summary>The endpoint's path MTU counts already added to the runtime's counters.</summary>
    private PathMtuCounts _pathMtuExported;

    public EndpointChannel Channel => channel;

    public StreamEvents Stream => _stream;

    /// <summary>
    /// Sends every segment the endpoint has, each to the address it names, in the order the endpoint gives them: encoded
    /// into a batch, which goes to the transport in one call (one sendmmsg(2) on the raw and UDP transports) whenever it
    /// is full (<c>mtcp.runtime.send-batch</c>, <c>send-batch-bytes</c>) and once the endpoint has no more.
    /// </summary>
    public void Transmit(Instant now)
    {
        var batch = context.SendBatches.Rent(_encoder.SegmentRoom);
        try
        {
            while (true)
            {
                var room = batch.Room(_encoder.SegmentRoom);
                if (room.IsEmpty)
                {
                    // The pool's batches hold at least one segment of the largest size, so this one holds some.
                    SendBatch(batch);
                    continue;
                }

                if (!_encoder.TryPoll(endpoint, now, room, out var destination, out var start, out var length))
                {
                    break;
                }

                batch.Add(destination, start, length);
            }

            SendBatch(batch);
        }
        finally
        {
            context.SendBatches.Return(batch);
        }
    }

    /// <summary>
    /// An ICMP path MTU report for <paramref name="tcb"/>, one of this endpoint's control blocks, given to the engine,
    /// which checks it (RFC 5927 §4.1) and, when it believes it (<see cref="PacketTooBigVerdict.Lowered"/>, or
    /// <see cref="PacketTooBigVerdict.ProbeTooBig"/>: a path MTU probe's report), has the too-big segments to send again:
    /// the caller then drives the endpoint. A report the engine refuses goes to the refusal summary, so that a flood of
    /// forged ones costs a counter each, not a log line.
    /// </summary>
    public PacketTooBigVerdict ApplyPacketTooBig(TcpConnection tcb, PacketTooBigReceived report)
    {
        var verdict = tcb.HandlePacketTooBig(report.QuotedSourcePort, report.QuotedDestinationPort, report.QuotedSequence, report.Mtu, report.IPv6, context.Transport.CarrierHeaderLength);
        if (verdict is PacketTooBigVerdict.Lowered or PacketTooBigVerdict.ProbeTooBig)
        {
            context.Counters.PacketTooBigApplied();
        }
        else if (verdict is PacketTooBigVerdict.OutOfWindow or PacketTooBigVerdict.NotSmaller)
        {
            context.Counters.PacketTooBigRefused();
            context.Refusals.Refuse(
                RefusalClass.PacketTooBigRefused,
                $"an ICMP packet too big for {report.Peer}:{report.QuotedDestinationPort} from port {report.QuotedSourcePort} ignored ({verdict}): sequence {report.QuotedSequence}, MTU {report.Mtu}");
        }

        return verdict;
    }

    /// <summary>Sends a segment built outside the engine (a MIGRATE_TRIGGER).</summary>
    public void Send(IpAddress destination, in TcpSegmentRepr header) => Send(destination, _encoder.Encode(header, destination));

    /// <summary>Sends a segment built outside the engine with its payload (a sealed client-stored state); false when it does not fit a segment.</summary>
    public bool Send(IpAddress destination, in TcpSegmentRepr header, ReadOnlySpan<byte> payload)
    {
        var segment = _encoder.Encode(header, payload, destination);
        if (segment.IsEmpty)
        {
            return false;
        }

        Send(destination, segment);
        return true;
    }

    /// <summary>
    /// The stream's events: Connected goes to <paramref name="onConnected"/>, a close, reset or timeout to
    /// <paramref name="onFailed"/> with the reason the application's calls fail with; the rest serve the
    /// application's read or write. True when there was any, so that the caller transmits again (serving a write
    /// queues segments).
    /// </summary>
    public bool DrainEvents(Action onConnected, Action<string> onFailed)
    {
        var any = false;
        while (endpoint.PollEvent(out var e))
        {
            any = true;
            switch (e)
            {
                case TcpEvent.Connected:
                    onConnected();
                    break;
                case TcpEvent.Closed:
                    _stream.EndIfPeerFinished();
                    onFailed("the connection is closed");
                    break;
                default:
                    if (_stream.Serve(e) is { } failure)
                    {
                        onFailed(failure);
                    }

                    break;
            }
        }

        return any;
    }

    /// <summary>The engine's timer fired: fires what is due.</summary>
    public void OnTick(Instant now)
    {
        _deadline.Fired();
        if (endpoint.PollTimeout() is { } due && due <= now)
        {
            var timeoutsBefore = endpoint.RetransmissionTimeouts;
            endpoint.HandleTimeout(now);
            TcpMetrics.RetransmissionTimedOut(endpoint.RetransmissionTimeouts - timeoutsBefore);
        }
    }

    /// <summary>
    /// After an input: the engine's one deadline is armed, and its path MTU events since the last go to the counters.
    /// <paramref name="alsoAt"/> is a deadline of the actor's own that the same timer fires for (a client's left
    /// 4-tuple's release, a server's replica ack timeout; null: none), so that the actor arms no timer of its own; the
    /// actor checks it on the tick.
    /// </summary>
    public void ArmTimer(ITimerScheduler timers, Instant now, Instant? alsoAt)
    {
        ExportPathMtu();
        _deadline.Arm(timers, Instant.Earliest(endpoint.PollTimeout(), alsoAt), now);
    }

    /// <summary>
    /// The path MTU events since the last export (an ICMP report, a black hole, probes sent, lost or raising the MSS can
    /// come from any input: a segment, a timeout, a report, a send) go to the runtime's counters.
    /// </summary>
    private void ExportPathMtu()
    {
        var counts = endpoint.PathMtu;
        TcpMetrics.PathMtuChanged(counts - _pathMtuExported);
        _pathMtuExported = counts;
    }

    /// <summary>
    /// The endpoint is over: its 4-tuples leave the table, and it stops on <see cref="EndpointRetired"/>, which the
    /// receive thread sends once nothing more can be routed to it (<see cref="ConnectionTable.Retire"/>).
    /// </summary>
    public void Retire(IActorRef self, IEnumerable<ConnectionKey> keys, ITimerScheduler timers)
    {
        if (IsRetiring)
        {
            return;
        }

        IsRetiring = true;
        ExportPathMtu();
        timers.CancelAll();
        context.Table.Retire(self, keys);
    }

    public bool IsRetiring { get; private set; }

    /// <summary>The actor has stopped: the application's calls fail with <paramref name="reason"/>, and requests waiting on it end.</summary>
    public void Stopped(string reason)
    {
        FailStream(reason);
        channel.Stopped.TrySetResult();
    }

    public void FailStream(string reason, Exception? cause = null)
    {
        channel.Reader.Fail(reason, cause);
        channel.Writer.Fail(reason, cause);
    }

    /// <summary>The batch's segments, then an empty batch; each one the transport could not send is a loss, as in <see cref="Send(IpAddress, ReadOnlySpan{byte})"/>.</summary>
    private void SendBatch(SegmentBatch batch)
    {
        if (batch.Count == 0)
        {
            return;
        }

        int unsent;
        try
        {
            unsent = context.Transport.SendBatch(batch);
        }
        catch (PacketBatchException e)
        {
            context.Refusals.Refuse(RefusalClass.SendDropped, $"sending a batch failed, counted as lost segments: {e.Message}");
            unsent = e.Unsent;
        }

        for (var i = 0; i < unsent; i++)
        {
            context.Counters.SendDropped();
        }

        batch.Clear();
    }

    /// <summary>IP is best effort: a segment the transport could not send is a loss that retransmission recovers.</summary>
    private void Send(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        bool sent;
        try
        {
            sent = context.Transport.Send(destination, segment);
        }
        catch (PacketTransportException e)
        {
            // Not a closed socket (that is ObjectDisposedException, which stops the endpoint): lose the segment, keep the connection.
            context.Refusals.Refuse(RefusalClass.SendDropped, $"sending to {destination} failed, counted as a lost segment: {e.Message}");
            sent = false;
        }

        if (!sent)
        {
            context.Counters.SendDropped();
        }
    }
}

using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// A node's packet transport that tells a test when the node receives a SYN (a client's special SYN, at a migration's
/// destination) and when it sends a SYN+ACK (the destination reinstated the state and answers): the moments a test
/// times a crash at. The callbacks run on the transport's threads: they should only signal the test.
/// </summary>
internal sealed class SynWatchTransport(IPacketTransport inner) : IPacketTransport
{
    public Action? SynReceived { get; set; }

    public Action? SynAckSent { get; set; }

    public IpAddress LocalAddress => inner.LocalAddress;

    public int MaxSegmentLength => inner.MaxSegmentLength;

    public int ReceiveBufferLength => inner.ReceiveBufferLength;

    public SendDropCounters SendDrops => inner.SendDrops;

    public bool Send(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        if (SynAckSent is { } sent && FlagsOf(segment) is { } flags && flags.HasFlag(TcpFlags.Syn | TcpFlags.Ack))
        {
            sent();
        }

        return inner.Send(destination, segment);
    }

    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received)
    {
        var outcome = inner.Receive(buffer, timeout, out received);
        if (outcome == ReceiveOutcome.Received && SynReceived is { } arrived && FlagsOf(received.SliceOf(buffer)) is { } flags
            && flags.HasFlag(TcpFlags.Syn) && !flags.HasFlag(TcpFlags.Ack))
        {
            arrived();
        }

        return outcome;
    }

    public void Dispose() => inner.Dispose();

    private static TcpFlags? FlagsOf(ReadOnlySpan<byte> segment) =>
        TcpSegment.TryCreate(segment, out var parsed, out _) ? parsed.Flags : null;
}

using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// Segments that arrived together: what one read of the receive queue hands up, as GRO hands a burst to Linux's TCP.
/// Between <see cref="BeginBurst"/> and <see cref="EndBurst"/>, with <see cref="TcpConfig.AckPerBurst"/>, the in-order
/// data of the burst is acknowledged once, at its end, by one ACK covering every segment of it (RFC 5681 §4.2 and RFC
/// 9293 §3.8.6.3 ask for at least one ACK per two full-sized segments received; Linux sends one per GRO burst);
/// without it, every second full-sized segment's ACK is built in place, as one at a time. Everything that RFC 5681 §4.2
/// wants acknowledged at once keeps its own ACK, built when its segment is processed and sent ahead of anything else:
/// an out-of-order segment's duplicate ACK with the SACK blocks of that moment (RFC 6675 counts them), the ACK of a
/// segment that fills a hole, of a duplicate, a challenge ACK. Either way the driver polls once per burst.
/// </summary>
public sealed partial class TcpConnection
{
    /// <summary>Between <see cref="BeginBurst"/> and <see cref="EndBurst"/>.</summary>
    private bool _inBurst;

    /// <summary>The burst's in-order data reached the every-second-segment rule: its one ACK goes at <see cref="EndBurst"/>.</summary>
    private bool _burstAckOwed;

    /// <summary>The immediate ACKs built during a burst, in order, sent before any other segment; null until the first.</summary>
    private Queue<TcpSegmentRepr>? _burstAcks;

    /// <summary>The segments handled until <see cref="EndBurst"/> arrived together: their in-order data gets one ACK.</summary>
    public void BeginBurst() => _inBurst = true;

    /// <summary>The burst is over: the ACK its in-order data is owed is due now (<see cref="PollTransmit"/> sends it).</summary>
    public void EndBurst()
    {
        _inBurst = false;
        if (_burstAckOwed)
        {
            _burstAckOwed = false;
            _ackNow = true;
        }
    }

    /// <summary>
    /// In-order data owes an ACK (every second full-sized segment, RFC 9293 §3.8.6.3): at once, or in a burst at its end.
    /// The delayed-ACK deadline stays armed meanwhile, so a burst that is never ended still gets its ACK.
    /// </summary>
    private void OweAckForInOrderData(Instant now)
    {
        if (!_inBurst || !_config.AckPerBurst)
        {
            _ackNow = true;
            return;
        }

        _burstAckOwed = true;
        _delayedAckAt ??= now + _config.DelayedAckTimeout;
    }

    /// <summary>
    /// After each segment of a burst: an ACK the segment made due at once is built now, with the acknowledgment number
    /// and SACK blocks of this moment, before the next segment changes them.
    /// </summary>
    private void BuildImmediateAckInBurst()
    {
        if (!_inBurst || !_ackNow || _state is TcpState.Closed or TcpState.Listen or TcpState.SynSent)
        {
            return;
        }

        if (TryEmitAck(out var header))
        {
            (_burstAcks ??= new Queue<TcpSegmentRepr>()).Enqueue(header);
        }
    }

    /// <summary>The next ACK built during a burst, ahead of every other segment.</summary>
    private bool TryTakeBurstAck(out TcpSegmentRepr header)
    {
        header = default;
        return _burstAcks is { Count: > 0 } acks && acks.TryDequeue(out header);
    }
}

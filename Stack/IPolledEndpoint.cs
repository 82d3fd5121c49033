using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// What a driver polls from a sans-IO endpoint after every input, in this order (as quinn-proto's connections):
/// segments with the address each goes to, the application's stream events, and the one deadline at which
/// <see cref="HandleTimeout"/> is due. <see cref="Migration.MtcpServerEndpoint{TPeer}"/> and
/// <see cref="Migration.MtcpClientConnection"/> implement it, so one driver serves both roles.
/// </summary>
public interface IPolledEndpoint
{
    /// <summary>The next segment to send, its payload copied into <paramref name="payloadBuffer"/>, and the address it goes to.</summary>
    bool PollTransmit(Instant now, Span<byte> payloadBuffer, out IpAddress destination, out TcpSegmentRepr header, out int payloadLength);

    /// <summary>The next event of the application's byte stream.</summary>
    bool PollEvent(out TcpEvent e);

    /// <summary>The earliest deadline at which <see cref="HandleTimeout"/> must be called, or null when none.</summary>
    Instant? PollTimeout();

    /// <summary>
    /// The segments handled until <see cref="EndBurst"/> arrived together (one read of the receive queue): their in-order
    /// data is acknowledged once, at the end (<see cref="TcpConnection.BeginBurst"/>).
    /// </summary>
    void BeginBurst();

    /// <summary>The burst is over: its one ACK is due at the next <see cref="PollTransmit"/>.</summary>
    void EndBurst();

    /// <summary>Fires every timer whose deadline is at or before <paramref name="now"/>.</summary>
    void HandleTimeout(Instant now);

    /// <summary>
    /// Retransmission-timer expirations (RFC 6298 §5.4) over the endpoint's life, in every control block it used: the
    /// stalls that loss recovery without a timeout (SACK, RACK-TLP) did not prevent.
    /// </summary>
    long RetransmissionTimeouts { get; }

    /// <summary>Path MTU events (ICMP reductions, black holes, probes) over the endpoint's life, in every control block it used.</summary>
    PathMtuCounts PathMtu { get; }
}

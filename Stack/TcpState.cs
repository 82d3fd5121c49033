namespace Mtcp.Stack;

/// <summary>The eleven connection states of RFC 9293 §3.3.2.</summary>
public enum TcpState
{
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

/// <summary>What a connection tells its driver, polled with <see cref="TcpConnection.PollEvent"/>.</summary>
public enum TcpEvent
{
    /// <summary>The three-way handshake completed (entered ESTABLISHED).</summary>
    Connected,

    /// <summary>New in-order bytes can be read.</summary>
    Readable,

    /// <summary>Send-buffer space was freed by an acknowledgment after a write was refused or short.</summary>
    Writable,

    /// <summary>The peer's FIN arrived in order: no more bytes will come (RFC 9293 §3.10.7.4, eighth step).</summary>
    PeerClosed,

    /// <summary>The connection reached CLOSED after a graceful close (or a local abort).</summary>
    Closed,

    /// <summary>An acceptable RST arrived; the connection is CLOSED.</summary>
    Reset,

    /// <summary>The connection gave up: establishment timeout or too many retransmissions (RFC 9293 §3.8.3 R2).</summary>
    TimedOut,

    /// <summary>The connection migrated to another server (thesis 4.2.3, state ack): reads and writes now fail with EMIGRATED.</summary>
    MigratedAway,
}

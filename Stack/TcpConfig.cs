namespace Mtcp.Stack;

/// <summary>
/// Settings of one TCP connection. Immutable; <see cref="Validate"/> runs when a connection is created and
/// names the first bad field. Sizes are in bytes, durations are <see cref="TimeSpan"/>s.
/// </summary>
public sealed record TcpConfig
{
    /// <summary>The defaults: RFC values where the RFCs give one, otherwise values suited to a LAN service.</summary>
    public static TcpConfig Default { get; } = new();

    /// <summary>
    /// Largest payload we send in one segment and the MSS we announce on our SYN (RFC 9293 §3.7.1), in bytes.
    /// The effective send MSS is the smaller of this and the peer's announced MSS (536 when absent, RFC 9293 §3.7.1).
    /// </summary>
    public int MaxSegmentSize { get; init; } = 1460;

    /// <summary>Capacity of the send buffer in bytes: written bytes stay there until acknowledged.</summary>
    public int SendBufferSize { get; init; } = 256 * 1024;

    /// <summary>
    /// Capacity of the receive buffer in bytes (unread and out-of-order bytes), which bounds the advertised window.
    /// A retained read log (<see cref="RetainReadLog"/>) is held in addition and does not shrink the window.
    /// </summary>
    public int ReceiveBufferSize { get; init; } = 256 * 1024;

    /// <summary>
    /// Window-scale shift offered on our SYN (RFC 7323 §2.2), 0 to 14; null to not offer the option, which
    /// also disables scaling in both directions and caps the advertised window at 65,535 bytes.
    /// </summary>
    public byte? WindowScaleShift { get; init; } = 7;

    /// <summary>
    /// Selective acknowledgments (RFC 2018, D-SACK RFC 2883): offer SACK-permitted on our SYN and accept the peer's.
    /// When both SYNs carry it, the receiver reports out-of-order data in SACK blocks and the sender recovers losses
    /// from its scoreboard with RACK-TLP (RFC 8985) and PRR (RFC 6937); otherwise NewReno recovery (RFC 6582) is used.
    /// </summary>
    public bool SelectiveAcknowledgment { get; init; } = true;

    /// <summary>
    /// Congestion avoidance: CUBIC (RFC 9438), as Linux, or NewReno (RFC 5681). Slow start, loss recovery and the loss
    /// window after a timeout are the same for both.
    /// </summary>
    public CongestionControlAlgorithm CongestionControl { get; init; } = CongestionControlAlgorithm.Cubic;

    /// <summary>
    /// Nagle's algorithm (RFC 896, RFC 9293 §3.7.4) with Minshall's refinement, as Linux: hold a sub-MSS segment while an
    /// earlier sub-MSS segment is unacknowledged. Off is TCP_NODELAY.
    /// </summary>
    public bool Nagle { get; init; }

    /// <summary>Retransmission timeout before any RTT sample (RFC 6298 §2.1: 1 second).</summary>
    public TimeSpan InitialRto { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Lower bound of the RTO (RFC 6298 §2.4 says 1 s; 200 ms is the common LAN choice).</summary>
    public TimeSpan MinRto { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Upper bound of the RTO, also capping exponential backoff (RFC 6298 §2.5: at least 60 s).</summary>
    public TimeSpan MaxRto { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Clock granularity G in the RTO formula (RFC 6298 §2.3).</summary>
    public TimeSpan ClockGranularity { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>How long an ACK may be delayed (RFC 9293 §3.8.6.3: under 0.5 s); zero disables delayed ACKs.</summary>
    public TimeSpan DelayedAckTimeout { get; init; } = TimeSpan.FromMilliseconds(40);

    /// <summary>
    /// Segments handed over as one burst (<see cref="TcpConnection.BeginBurst"/>) get one ACK for their in-order data at
    /// the end; false: an ACK every second full-sized segment within a burst too, as one at a time.
    /// </summary>
    public bool AckPerBurst { get; init; }

    /// <summary>Maximum segment lifetime; TIME_WAIT lasts twice this (RFC 9293 §3.4.2).</summary>
    public TimeSpan MaximumSegmentLifetime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>2 MSL: TIME-WAIT (RFC 9293 §3.4.2), a migrated-away endpoint's silence and a client's BLACKHOLE (thesis 4.2.3).</summary>
    public TimeSpan TwoMsl => MaximumSegmentLifetime + MaximumSegmentLifetime;

    /// <summary>Give up on an active or passive open not completed within this time (RFC 9293 §3.8.3 R2 for SYN).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(75);

    /// <summary>Retransmissions of a SYN or SYN-ACK before the open fails (RFC 9293 §3.8.3 R2 for SYN).</summary>
    public int MaxSynRetransmissions { get; init; } = 6;

    /// <summary>Consecutive RTO expirations for the same data before the connection is aborted (RFC 9293 §3.8.3 R2).</summary>
    public int MaxRetransmissions { get; init; } = 15;

    /// <summary>Initial congestion window in segments (RFC 6928: 10); the window is this times the send MSS.</summary>
    public int InitialWindowSegments { get; init; } = 10;

    /// <summary>
    /// Packetization-layer path MTU discovery (RFC 4821, RFC 8899) on top of ICMP "packet too big": a PMTU black hole
    /// (<see cref="BlackHoleTimeouts"/> timeouts of a segment longer than <see cref="BaseSegmentSize"/>) drops the send
    /// MSS to that base, and probes of real queued data search the MSS back up after any lowering and every
    /// <see cref="PathMtuRaiseInterval"/>. A lost probe is told from congestion by SACK, or without it by duplicate ACKs
    /// naming the probe (RFC 4821 §7.5), and costs no congestion window. Off: the MSS only ever goes down, on an ICMP
    /// report.
    /// </summary>
    public bool PathMtuProbing { get; init; } = true;

    /// <summary>
    /// Consecutive retransmission timeouts of a segment longer than <see cref="BaseSegmentSize"/> that make the path a
    /// black hole (Linux's tcp_retries1, 3, with tcp_mtu_probing = 1); the count starts over at any ACK of new data and
    /// at a timeout of a segment no longer than the base, which size cannot explain.
    /// </summary>
    public int BlackHoleTimeouts { get; init; } = 3;

    /// <summary>
    /// The MSS a black hole falls back to (Linux's tcp_base_mss, 1024): with the engine's 40 bytes of option room it
    /// fits RFC 8899's BASE_PLPMTU of 1200 bytes in both families, so every IPv6 link and nearly every IPv4 path carries it.
    /// </summary>
    public int BaseSegmentSize { get; init; } = 1024;

    /// <summary>
    /// RFC 8899's PMTU_RAISE_TIMER (600 s; RFC 1191 §6.3 and RFC 4821 §7.7 say 10 minutes): how long after an ICMP report
    /// lowered the MSS, and after a search ended below the largest MSS, the next search up starts.
    /// </summary>
    public TimeSpan PathMtuRaiseInterval { get; init; } = TimeSpan.FromSeconds(600);

    /// <summary>
    /// The search's resolution in bytes (Linux's tcp_probe_threshold, 8): probes halve the range between the largest
    /// size known to pass and the smallest known to fail, and the search ends when that range is narrower than this.
    /// </summary>
    public int PathMtuSearchStep { get; init; } = 8;

    /// <summary>
    /// MTCP read log (thesis §3.3.3, §4.2.2): when on, bytes the application reads are kept until
    /// <see cref="TcpConnection.ReleaseReadLog"/> releases them, so a migration can hand them to the new server.
    /// Memory grows with the log; the application bounds it by how often it snapshots.
    /// </summary>
    public bool RetainReadLog { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public TcpConfig Validate()
    {
        Require(MaxSegmentSize is >= 64 and <= 65495, nameof(MaxSegmentSize), "must be 64..65495 bytes");
        Require(SendBufferSize >= MaxSegmentSize, nameof(SendBufferSize), "must hold at least one MaxSegmentSize");
        Require(ReceiveBufferSize >= MaxSegmentSize, nameof(ReceiveBufferSize), "must hold at least one MaxSegmentSize");
        Require(WindowScaleShift is null or <= 14, nameof(WindowScaleShift), "must be 0..14 (RFC 7323 §2.3) or null");
        Require(InitialRto > TimeSpan.Zero, nameof(InitialRto), "must be positive");
        Require(MinRto > TimeSpan.Zero, nameof(MinRto), "must be positive");
        Require(MaxRto >= MinRto, nameof(MaxRto), "must be at least MinRto");
        Require(InitialRto >= MinRto && InitialRto <= MaxRto, nameof(InitialRto), "must lie within MinRto..MaxRto");
        Require(ClockGranularity >= TimeSpan.Zero, nameof(ClockGranularity), "must not be negative");
        Require(DelayedAckTimeout >= TimeSpan.Zero && DelayedAckTimeout < TimeSpan.FromMilliseconds(500), nameof(DelayedAckTimeout), "must be 0 up to 500 ms (RFC 9293 §3.8.6.3)");
        Require(MaximumSegmentLifetime >= TimeSpan.Zero, nameof(MaximumSegmentLifetime), "must not be negative");
        Require(ConnectTimeout > TimeSpan.Zero, nameof(ConnectTimeout), "must be positive");
        Require(MaxSynRetransmissions >= 0, nameof(MaxSynRetransmissions), "must not be negative");
        Require(MaxRetransmissions >= 1, nameof(MaxRetransmissions), "must be at least 1");
        Require(InitialWindowSegments >= 1, nameof(InitialWindowSegments), "must be at least 1");
        Require(BlackHoleTimeouts >= 1, nameof(BlackHoleTimeouts), "must be at least 1");
        Require(BaseSegmentSize is >= 64 and <= 65495, nameof(BaseSegmentSize), "must be 64..65495 bytes");
        Require(PathMtuRaiseInterval > TimeSpan.Zero, nameof(PathMtuRaiseInterval), "must be positive");
        Require(PathMtuSearchStep >= 1, nameof(PathMtuSearchStep), "must be at least 1");
        return this;
    }

    private static void Require(bool condition, string field, string rule)
    {
        if (!condition)
        {
            throw new ArgumentException($"TcpConfig.{field} {rule}", field);
        }
    }
}

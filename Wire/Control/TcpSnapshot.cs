namespace Mtcp.Wire.Control;

/// <summary>
/// A TCP state as coded on the control connection: the eleven states of RFC 9293 §3.3.2, numbered as the
/// BSD <c>t_state</c> values the thesis lists in 4.1.3.
/// </summary>
public enum TcpStateCode : byte
{
    Closed = 0,
    Listen = 1,
    SynSent = 2,
    SynReceived = 3,
    Established = 4,
    CloseWait = 5,
    FinWait1 = 6,
    Closing = 7,
    LastAck = 8,
    FinWait2 = 9,
    TimeWait = 10,
}

/// <summary>The connection options carried in <c>t_flags</c> of the TCP snapshot (thesis 4.2.2).</summary>
[Flags]
public enum TcpSnapshotFlags : uint
{
    None = 0,

    /// <summary>TF_NODELAY: Nagle's algorithm is off (set by the application).</summary>
    NoDelay = 0x1,

    /// <summary>TF_MIGRATE: the endpoint sends MTCP options (thesis 4.2.1).</summary>
    Migrate = 0x2,

    /// <summary>Window scaling was negotiated (RFC 7323 §2).</summary>
    WindowScaling = 0x4,

    /// <summary>Timestamps were negotiated (RFC 7323 §3).</summary>
    Timestamps = 0x8,

    /// <summary>SACK was negotiated (RFC 2018).</summary>
    SackPermitted = 0x10,
}

/// <summary>One entry of the state-transition log: the TCP state changed from <see cref="From"/> to <see cref="To"/>.</summary>
public readonly record struct TcpStateTransition(TcpStateCode From, TcpStateCode To);

/// <summary>
/// <c>t_snapshot</c> of thesis 4.2.2 (header field (i) of the state reply): the TCP endpoint at the moment
/// the application exported its state. The thesis's <c>t_state_transitions</c> log travels in the reply's
/// variable part (<see cref="StateReply.TStateTransitions"/>); the window scales are beyond the thesis.
/// </summary>
public readonly record struct TcpSnapshot
{
    /// <summary>Largest shift count (RFC 7323 §2.3).</summary>
    public const byte MaxWindowScale = 14;

    public TcpSnapshot(TcpStateCode tState, TcpSnapshotFlags tFlags, ushort tMaxseg, byte sndScale, byte rcvScale)
    {
        if (!IsDefined(tState))
        {
            throw new ArgumentOutOfRangeException(nameof(tState), tState, "not a TCP state");
        }

        if ((tFlags & ~AllFlags) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(tFlags), tFlags, "undefined TCP snapshot flags");
        }

        if (!AreScalesValid(tFlags, sndScale, rcvScale))
        {
            throw new ArgumentException($"window scales {sndScale}/{rcvScale} must be at most {MaxWindowScale}, and zero without window scaling");
        }

        TState = tState;
        TFlags = tFlags;
        TMaxseg = tMaxseg;
        SndScale = sndScale;
        RcvScale = rcvScale;
    }

    /// <summary><c>t_state</c>: the TCP state when the snapshot was taken.</summary>
    public TcpStateCode TState { get; }

    /// <summary><c>t_flags</c>: options set by the application or negotiated.</summary>
    public TcpSnapshotFlags TFlags { get; }

    /// <summary><c>t_maxseg</c>: the maximum segment size.</summary>
    public ushort TMaxseg { get; }

    /// <summary>Shift applied to the peer's advertised window (<c>snd_scale</c>).</summary>
    public byte SndScale { get; }

    /// <summary>Shift applied to our advertised window (<c>rcv_scale</c>).</summary>
    public byte RcvScale { get; }

    internal const TcpSnapshotFlags AllFlags =
        TcpSnapshotFlags.NoDelay | TcpSnapshotFlags.Migrate | TcpSnapshotFlags.WindowScaling | TcpSnapshotFlags.Timestamps | TcpSnapshotFlags.SackPermitted;

    internal static bool IsDefined(TcpStateCode state) => state <= TcpStateCode.TimeWait;

    internal static bool AreScalesValid(TcpSnapshotFlags flags, byte sndScale, byte rcvScale) =>
        (flags & TcpSnapshotFlags.WindowScaling) != 0
            ? sndScale <= MaxWindowScale && rcvScale <= MaxWindowScale
            : sndScale == 0 && rcvScale == 0;
}

/// <summary>The socket state bits of <c>so_state</c> that a migration carries.</summary>
[Flags]
public enum SocketStateFlags : ushort
{
    None = 0,

    /// <summary>SS_CANTSENDMORE: the application shut down its sending side.</summary>
    CantSendMore = 0x1,

    /// <summary>SS_CANTRCVMORE: the receiving side is shut down.</summary>
    CantRcvMore = 0x2,
}

/// <summary>The socket option bits of <c>so_options</c> that a migration carries.</summary>
[Flags]
public enum SocketOptionFlags : ushort
{
    None = 0,

    /// <summary>SO_KEEPALIVE.</summary>
    KeepAlive = 0x1,

    /// <summary>SO_LINGER: close waits up to <see cref="SocketSnapshot.SoLinger"/> seconds.</summary>
    Linger = 0x2,

    /// <summary>SO_MIGRATION_SUPPORT (thesis 4.2.1): the endpoint may migrate.</summary>
    MigrationSupport = 0x4,
}

/// <summary><c>so_snapshot</c> of thesis 4.2.2 (header field (j) of the state reply).</summary>
public readonly record struct SocketSnapshot
{
    public SocketSnapshot(SocketStateFlags soState, SocketOptionFlags soOptions, ushort soLinger)
    {
        if ((soState & ~AllStateFlags) != 0 || (soOptions & ~AllOptionFlags) != 0)
        {
            throw new ArgumentException($"undefined socket flags: state {soState}, options {soOptions}");
        }

        SoState = soState;
        SoOptions = soOptions;
        SoLinger = soLinger;
    }

    /// <summary><c>so_state</c>.</summary>
    public SocketStateFlags SoState { get; }

    /// <summary><c>so_options</c>.</summary>
    public SocketOptionFlags SoOptions { get; }

    /// <summary><c>so_linger</c>, in seconds.</summary>
    public ushort SoLinger { get; }

    internal const SocketStateFlags AllStateFlags = SocketStateFlags.CantSendMore | SocketStateFlags.CantRcvMore;

    internal const SocketOptionFlags AllOptionFlags = SocketOptionFlags.KeepAlive | SocketOptionFlags.Linger | SocketOptionFlags.MigrationSupport;
}

using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>
/// One TCP connection endpoint as a sans-IO state machine (RFC 9293). Inputs: <see cref="HandleSegment"/>,
/// <see cref="HandleTimeout"/> and the application calls, each given the current time. Outputs, polled in this
/// order after every input: <see cref="PollTransmit"/> until false, <see cref="PollEvent"/> until false, then
/// <see cref="PollTimeout"/> to arm the driver's single timer. Addresses and checksums are the driver's business;
/// ports come from the connection. Not thread-safe: one driver owns it.
/// </summary>
public sealed partial class TcpConnection
{
    /// <summary>MSS assumed when the peer's SYN carries no MSS option (RFC 9293 §3.7.1).</summary>
    private const int DefaultPeerMss = 536;

    /// <summary>Largest value of the 16-bit window field.</summary>
    private const int MaxWindowField = ushort.MaxValue;

    private readonly TcpConfig _config;
    private readonly SendBuffer _send;
    private readonly RttEstimator _rtt;
    private readonly CongestionControl _congestion;
    private readonly Queue<TcpEvent> _events = new(8);

    /// <summary>Created once the peer's ISN is known (its first byte is IRS + 1).</summary>
    private ReceiveBuffer? _receive;

    private TcpState _state;
    private SeqNumber _irs;

    // Send sequence space (RFC 9293 §3.3.1). Invariant: ISS <= SND.UNA <= SND.NXT <= SND.MAX.
    // SND.MAX is one past the highest sequence number ever sent; SND.NXT moves back to SND.UNA on a timeout
    // (go-back-N) and forward again as acknowledgments or new transmissions arrive.
    private SeqNumber _sndUna;
    private SeqNumber _sndNxt;
    private SeqNumber _sndMax;

    /// <summary>SND.WND in bytes, already scaled.</summary>
    private int _sndWnd;
    private SeqNumber _sndWl1;
    private SeqNumber _sndWl2;

    /// <summary>Largest window the peer ever offered; sender-side SWS avoidance (RFC 9293 §3.8.6.2.1).</summary>
    private int _maxSndWnd;

    /// <summary>Shift applied to the peer's window field (its offer), and to ours (our offer); 0 unless both sent WS.</summary>
    private int _sndWindowShift;
    private int _rcvWindowShift;
    private bool _windowScalingAgreed;

    private int _sendMss;

    /// <summary>Close was called: a FIN follows the last byte written, at sequence number <c>_send.End</c>.</summary>
    private bool _finQueued;

    /// <summary>The peer's FIN was accepted (RCV.NXT counts it).</summary>
    private bool _finReceived;

    /// <summary>A FIN that arrived ahead of a hole, waiting until RCV.NXT reaches it.</summary>
    private SeqNumber? _pendingPeerFin;

    // ACK scheduling (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2).
    private bool _ackNow;
    private int _unackedBytes;
    private Instant? _delayedAckAt;
    private int _lastAdvertisedWindow;

    /// <summary>
    /// The delayed ACK covers a short segment: the end of what the sender had (Linux's ICSK_ACK_PUSHED). Once the
    /// application has read everything, that ACK goes at once: a sender whose write filled its send buffer waits for it.
    /// </summary>
    private bool _shortSegmentAckDelayed;

    // Timers: each is a deadline or null; PollTimeout returns the earliest.
    private Instant? _retransmitAt;
    private int _consecutiveTimeouts;
    private int _timeoutsSinceHeard;
    private bool _handshakeTimedOut;
    private Instant? _persistAt;
    private int _persistBackoff;
    private Instant? _timeWaitUntil;
    private Instant? _connectDeadline;

    // One RTT measurement at a time (RFC 6298 §3 with Karn: never over retransmitted data).
    private bool _timing;
    private SeqNumber _timedSeq;
    private Instant _timedAt;

    private bool _fastRetransmitPending;
    private bool _probePending;

    // Keep-alive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): when the peer was last heard from, and probes since.
    private Instant _lastHeardAt;
    private Instant _peerHostHeardAt;
    private Instant _peerHostProbedAt;
    private Instant _lastKeepAliveAt;
    private int _unansweredKeepAlives;
    private bool _keepAlivePending;
    private bool _writableWanted;

    /// <summary>
    /// The application's last write did not fit the send buffer: the rest of it follows as soon as acknowledgments
    /// free room (Linux's MSG_MORE without the flag), so a short segment at the end of the queue is not its end.
    /// </summary>
    private bool _writeIncomplete;

    /// <summary>
    /// One past the last byte of the last short (sub-MSS) data segment sent: Linux's <c>snd_sml</c>, for Nagle with
    /// Minshall's refinement (at most one short segment unacknowledged).
    /// </summary>
    private SeqNumber _shortSegmentEnd;
    private bool _readableQueued;

    private bool _retainReadLogAtOpen;
    private bool _resetPending;
    private TcpSegmentRepr _reset;

    private TcpConnection(TcpConfig config, TcpState state, ushort localPort, ushort remotePort, SeqNumber iss)
    {
        _config = config.Validate();
        _state = state;
        LocalPort = localPort;
        RemotePort = remotePort;
        InitialSendSequence = iss;
        _sndUna = iss;
        _sndNxt = iss;
        _sndMax = iss;
        _shortSegmentEnd = iss;
        _send = new SendBuffer(config.SendBufferSize, iss + 1);
        _rtt = new RttEstimator(config.InitialRto, config.MinRto, config.MaxRto, config.ClockGranularity);
        _sendMss = Math.Min(config.MaxSegmentSize, DefaultPeerMss);
        _congestion = new CongestionControl(_sendMss, config.InitialWindowSegments, iss, ICongestionAvoidance.Create(config.CongestionControl));
        StartPathMtuSearchAt(_sendMss);
        _retainReadLogAtOpen = config.RetainReadLog;
    }

    public TcpState State => _state;

    public ushort LocalPort { get; }

    /// <summary>The peer's port; zero while listening.</summary>
    public ushort RemotePort { get; private set; }

    public TcpConfig Config => _config;

    public TcpConnectionStats Stats { get; } = new();

    public SeqNumber InitialSendSequence { get; }

    /// <summary>IRS, the peer's initial sequence number; meaningful once a SYN arrived.</summary>
    public SeqNumber InitialReceiveSequence => _irs;

    /// <summary>SND.UNA: oldest unacknowledged sequence number.</summary>
    public SeqNumber SendUnacknowledged => _sndUna;

    /// <summary>SND.NXT: next sequence number to send.</summary>
    public SeqNumber SendNext => _sndNxt;

    /// <summary>SND.MAX: one past the highest sequence number ever sent (a FIN included).</summary>
    public SeqNumber SendMax => _sndMax;

    /// <summary>RCV.NXT: next sequence number expected (counts a received FIN).</summary>
    public SeqNumber ReceiveNext => _receive is null ? _irs : _receive.Next + (_finReceived ? 1 : 0);

    /// <summary>SND.WND in bytes (scaled).</summary>
    public int SendWindow => _sndWnd;

    /// <summary>The send MSS in force (our setting bounded by the peer's announced MSS).</summary>
    public int SendMss => _sendMss;

    /// <summary>Shift we apply to the peer's window field (RFC 7323); 0 when scaling was not agreed.</summary>
    public int SendWindowShift => _sndWindowShift;

    /// <summary>Shift we apply to our own advertised window (RFC 7323); 0 when scaling was not agreed.</summary>
    public int ReceiveWindowShift => _rcvWindowShift;

    /// <summary>cwnd in bytes.</summary>
    public int CongestionWindow => _congestion.Window;

    /// <summary>ssthresh in bytes.</summary>
    public int SlowStartThreshold => _congestion.SlowStartThreshold;

    public bool InFastRecovery => _congestion.InFastRecovery;

    /// <summary>The RTO that the next retransmission timer will use, backoff included.</summary>
    public TimeSpan RetransmissionTimeout => _rtt.Rto;

    /// <summary>SRTT, or null before the first RTT sample.</summary>
    public TimeSpan? SmoothedRtt => _rtt.SmoothedRtt;

    /// <summary>Bytes the application can read now.</summary>
    public int BytesReadable => _receive?.Readable ?? 0;

    /// <summary>Room left in the send buffer.</summary>
    public int SendBufferFree => _finQueued ? 0 : _send.Free;

    /// <summary>Bytes written and not yet acknowledged.</summary>
    public int BytesUnacknowledged => _send.Length;

    /// <summary>True when the application may still write (RFC 9293 §3.10.2).</summary>
    public bool CanWrite => !_finQueued && _state is TcpState.SynSent or TcpState.SynReceived or TcpState.Established or TcpState.CloseWait;

    /// <summary>Opens a passive endpoint in LISTEN (RFC 9293 §3.10.1). One SYN turns it into SYN-RECEIVED.</summary>
    public static TcpConnection Listen(TcpConfig config, ushort localPort, SeqNumber iss)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new TcpConnection(config, TcpState.Listen, localPort, 0, iss);
    }

    /// <summary>Starts an active open (RFC 9293 §3.10.1): the SYN is the first segment <see cref="PollTransmit"/> returns.</summary>
    public static TcpConnection Connect(TcpConfig config, ushort localPort, ushort remotePort, SeqNumber iss, Instant now)
    {
        ArgumentNullException.ThrowIfNull(config);
        var connection = new TcpConnection(config, TcpState.SynSent, localPort, remotePort, iss);
        connection._connectDeadline = now + config.ConnectTimeout;
        return connection;
    }

    /// <summary>Queues bytes for sending (RFC 9293 §3.10.2); returns how many fit in the send buffer.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        ThrowIfMigratedAway();
        if (!CanWrite)
        {
            return 0;
        }

        var discarded = DiscardDuplicateWrite(ref data);
        var written = _send.Write(data);
        _writeIncomplete = written < data.Length;
        if (_writeIncomplete)
        {
            _writableWanted = true;
        }

        return discarded + written;
    }

    /// <summary>Reads in-order bytes (RFC 9293 §3.10.3); may open the window and schedule a window update.</summary>
    public int Read(Span<byte> destination)
    {
        ThrowIfMigratedAway();
        if (_receive is null)
        {
            return 0;
        }

        var count = _receive.Read(destination);
        _readableQueued = false;
        if (count > 0)
        {
            ScheduleWindowUpdateIfOpened();
            if (_shortSegmentAckDelayed && _receive.Readable == 0)
            {
                // The sender's last bytes are read: their delayed ACK would only hold the sender back now (a write
                // as large as its send buffer completes on it), so it goes at once, as Linux's tcp_cleanup_rbuf does.
                _ackNow = true;
            }
        }

        return count;
    }

    /// <summary>
    /// Graceful close (RFC 9293 §3.10.4): no more writes; a FIN follows the buffered bytes. Closing before the
    /// handshake ends deletes the connection.
    /// </summary>
    public void Close(Instant now)
    {
        switch (_state)
        {
            case TcpState.Listen:
            case TcpState.SynSent:
                EnterClosed(TcpEvent.Closed);
                break;
            case TcpState.SynReceived:
                // The FIN waits for ESTABLISHED; it is sent from FIN-WAIT-1 (RFC 9293 §3.10.4).
                _finQueued = true;
                break;
            case TcpState.Established:
                _finQueued = true;
                _state = TcpState.FinWait1;
                break;
            case TcpState.CloseWait:
                _finQueued = true;
                _state = TcpState.LastAck;
                break;
            default:
                break;
        }
    }

    /// <summary>Abort (RFC 9293 §3.10.5): a RST where the peer holds state, then CLOSED at once.</summary>
    public void Abort(Instant now) => Abort(TcpEvent.Closed);

    /// <summary>
    /// Gives up on a peer that stopped answering (RFC 9293 §3.8.3, threshold R2, decided by the caller): an abort
    /// that tells the application <see cref="TcpEvent.TimedOut"/>. The RST ends the connection at a peer that
    /// was only unreachable.
    /// </summary>
    public void GiveUp(Instant now) => Abort(TcpEvent.TimedOut);

    private void Abort(TcpEvent reason)
    {
        if (_state is TcpState.SynReceived or TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait)
        {
            QueueReset(_sndNxt, default, TcpFlags.Rst);
        }

        if (_state != TcpState.Closed)
        {
            EnterClosed(reason);
        }
    }

    /// <summary>Makes the next <see cref="PollTransmit"/> send an ACK even with nothing else to send (options ride on it).</summary>
    internal void AcknowledgeNow() => _ackNow = true;

    /// <summary>Returns the next event, if any.</summary>
    public bool PollEvent(out TcpEvent e)
    {
        if (_events.TryDequeue(out e))
        {
            if (e == TcpEvent.Readable)
            {
                _readableQueued = false;
            }

            return true;
        }

        return false;
    }

    /// <summary>
    /// Keep-alive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): when nothing was heard from the peer for this long and
    /// nothing is in flight, probe it, and probe again after each backed-off RTO (at most half this time apart) while it stays silent
    /// (<see cref="UnansweredKeepAlives"/>). Zero, the default: no probes, as RFC 1122 requires by default.
    /// </summary>
    public TimeSpan KeepAliveIdle { get; set; }

    /// <summary>
    /// The peer's host was heard from at <paramref name="at"/> on another connection (a segment that connection
    /// accepted): the keep-alive idle time counts from then as well, so that a host heard on one of many connections is
    /// not probed on each of them (keep-alive looks for a dead peer, RFC 1122 §4.2.3.6; a host heard is not dead). Only
    /// the first probe waits for it: once a probe of this connection goes unanswered, this connection's own answers count.
    /// </summary>
    public void PeerHostHeard(Instant at) => _peerHostHeardAt = Instant.Max(_peerHostHeardAt, at);

    /// <summary>
    /// Another connection sent the peer's host its first keep-alive probe since the host was last heard, at
    /// <paramref name="at"/>: while that probe's answer is awaited (one probe interval), this connection's first probe
    /// waits as well, and the answer defers it (<see cref="PeerHostHeard"/>). Without it, on a loaded machine, where
    /// answers come late, every connection coming due before the first answer probes. A probe left unanswered defers
    /// nothing further: each connection then probes the silent host on its own.
    /// </summary>
    public void PeerHostProbed(Instant at) => _peerHostProbedAt = Instant.Max(_peerHostProbedAt, at);

    /// <summary>Keep-alive probes sent since the peer was last heard from.</summary>
    public int UnansweredKeepAlives => _unansweredKeepAlives;

    /// <summary>Retransmission timeouts in a row for the same data, reset by an acknowledgment of new data.</summary>
    public int ConsecutiveTimeouts => _consecutiveTimeouts;

    /// <summary>
    /// Retransmission timeouts since the peer was last heard from (any segment that shows it alive, as keep-alive
    /// counts them): a peer that sends, or answers, while our data waits for its acknowledgment is slow, not silent.
    /// </summary>
    public int TimeoutsSinceHeard => _timeoutsSinceHeard;

    /// <summary>When the peer was last heard from: the last segment that showed it alive (see <see cref="TimeoutsSinceHeard"/>).</summary>
    public Instant LastHeardAt => _lastHeardAt;

    /// <summary>The earliest deadline at which <see cref="HandleTimeout"/> must be called, or null when none.</summary>
    public Instant? PollTimeout()
    {
        var earliest = Instant.Earliest(Instant.Earliest(Instant.Earliest(_retransmitAt, _persistAt), Instant.Earliest(_delayedAckAt, _timeWaitUntil)), _connectDeadline);
        return Instant.Earliest(Instant.Earliest(earliest, KeepAliveDue()), _lossTimerAt);
    }

    /// <summary>Fires every timer whose deadline is at or before <paramref name="now"/>.</summary>
    public void HandleTimeout(Instant now)
    {
        if (_timeWaitUntil is { } timeWait && timeWait <= now)
        {
            // RFC 9293 §3.10.8: TIME-WAIT timeout deletes the TCB.
            EnterClosed(TcpEvent.Closed);
            return;
        }

        if (_connectDeadline is { } deadline && deadline <= now)
        {
            EnterClosed(TcpEvent.TimedOut);
            return;
        }

        if (_retransmitAt is { } retransmit && retransmit <= now && !TailLossProbeDue(now))
        {
            OnRetransmissionTimeout(now);
            if (_state == TcpState.Closed)
            {
                return;
            }
        }

        if (_lossTimerAt is { } lossTimer && lossTimer <= now)
        {
            OnLossTimer(now);
        }

        if (_delayedAckAt is { } delayedAck && delayedAck <= now)
        {
            _delayedAckAt = null;
            _ackNow = true;
        }

        if (KeepAliveDue() is { } keepAlive && keepAlive <= now)
        {
            _keepAlivePending = true;
            _unansweredKeepAlives++;
            _lastKeepAliveAt = now;
        }

        if (_persistAt is { } persist && persist <= now)
        {
            // RFC 9293 §3.8.6.1: probe the zero window; back off like the RTO while the peer keeps it closed.
            _probePending = true;
            _persistAt = now + PersistInterval(++_persistBackoff);
        }
    }

    /// <summary>
    /// Builds the RST that answers a segment arriving where no connection exists (RFC 9293 §3.10.7.1, CLOSED):
    /// false for an incoming RST, which is never answered.
    /// </summary>
    public static bool TryMakeReset(in TcpSegmentRepr incoming, int payloadLength, out TcpSegmentRepr reset)
    {
        reset = default;
        if (incoming.Has(TcpFlags.Rst))
        {
            return false;
        }

        reset = incoming.Has(TcpFlags.Ack)
            ? new TcpSegmentRepr
            {
                SourcePort = incoming.DestinationPort,
                DestinationPort = incoming.SourcePort,
                SequenceNumber = incoming.AcknowledgmentNumber,
                Flags = TcpFlags.Rst,
            }
            : new TcpSegmentRepr
            {
                SourcePort = incoming.DestinationPort,
                DestinationPort = incoming.SourcePort,
                SequenceNumber = new SeqNumber(0),
                AcknowledgmentNumber = incoming.SequenceNumber + SegmentLength(incoming, payloadLength),
                Flags = TcpFlags.Rst | TcpFlags.Ack,
            };
        return true;
    }

    // ---- MTCP hooks (thesis §3.3.3, §4.2.2, fig. 4.10). Migration itself is built on these. ----

    /// <summary>
    /// Sequence number of the first byte of the read log (bytes read but retained). Once migration releases the log
    /// at each snapshot, this is the thesis's <c>rcv_seq_snapshot</c> (§4.1) and the log is its <c>read_log_mb</c>.
    /// </summary>
    public SeqNumber ReadLogStart => _receive?.RetainedStart ?? _irs + 1;

    /// <summary>Sequence number of the next byte the application will read.</summary>
    public SeqNumber ReadNext => _receive?.ReadNext ?? _irs + 1;

    /// <summary>Bytes in the read log.</summary>
    public int ReadLogLength => _receive?.ReadLogLength ?? 0;

    /// <summary>Copies the read log [ReadLogStart, ReadNext) without releasing it.</summary>
    public int CopyReadLog(Span<byte> destination) => _receive?.CopyReadLog(destination) ?? 0;

    /// <summary>Releases the read log up to <paramref name="upTo"/> (a later snapshot covers those bytes); may open the window.</summary>
    public void ReleaseReadLog(SeqNumber upTo)
    {
        if (_receive is null)
        {
            return;
        }

        _receive.ReleaseReadLog(upTo);
        ScheduleWindowUpdateIfOpened();
    }

    /// <summary>
    /// Copies the written-but-unacknowledged bytes in [<paramref name="from"/>, <paramref name="to"/>); both must
    /// lie within the send buffer, i.e. between SND.UNA and the last byte written (sequence numbers of data).
    /// </summary>
    public int CopyUnacknowledged(SeqNumber from, SeqNumber to, Span<byte> destination) => _send.CopyRange(from, to, destination);

    /// <summary>
    /// The unacknowledged bytes in [<paramref name="from"/>, <paramref name="to"/>) as at most two spans, without
    /// copying; valid until the next call into this connection. Write-buffer synchronisation (thesis fig. 3.9)
    /// transfers [SND.UNA, <c>snd_seq_snapshot</c>) this way.
    /// </summary>
    public void GetUnacknowledged(SeqNumber from, SeqNumber to, out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second) =>
        _send.GetRange(from, to, out first, out second);

    /// <summary>
    /// Received in-order bytes in [<paramref name="from"/>, <paramref name="to"/>) within [ReadLogStart, RCV.NXT):
    /// the read log and the unread bytes, i.e. the read-buffer state of thesis fig. 3.8. At most two spans, no copy;
    /// valid until the next call into this connection.
    /// </summary>
    public void GetReceived(SeqNumber from, SeqNumber to, out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        if (_receive is null)
        {
            if (from != to)
            {
                throw new ArgumentOutOfRangeException(nameof(from), "nothing has been received");
            }

            first = default;
            second = default;
            return;
        }

        _receive.GetRange(from, to, out first, out second);
    }

    /// <summary>The read log [ReadLogStart, ReadNext) as at most two spans, without copying; valid until the next call.</summary>
    public void GetReadLog(out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        if (_receive is null)
        {
            first = default;
            second = default;
            return;
        }

        _receive.GetReadLog(out first, out second);
    }

    /// <summary>
    /// Whether read bytes are retained as the read log (starts as <see cref="TcpConfig.RetainReadLog"/>). Turning it
    /// off releases the current log.
    /// </summary>
    public bool RetainReadLog
    {
        get => _receive?.RetainReadLog ?? _retainReadLogAtOpen;
        set
        {
            _retainReadLogAtOpen = value;
            if (_receive is not null)
            {
                _receive.RetainReadLog = value;
                ScheduleWindowUpdateIfOpened();
            }
        }
    }

    /// <summary>Sequence number one past the last byte written by the application.</summary>
    public SeqNumber WriteEnd => _send.End;

    /// <summary>Bytes of ring storage this connection holds now (send and receive): zero when idle or closed.</summary>
    public int BufferStorageBytes => _send.StorageLength + (_receive?.StorageLength ?? 0);

    private static int SegmentLength(in TcpSegmentRepr segment, int payloadLength) =>
        payloadLength + (segment.Has(TcpFlags.Syn) ? 1 : 0) + (segment.Has(TcpFlags.Fin) ? 1 : 0);

    /// <summary>The RTO doubled <paramref name="shift"/> times, capped at the configured maximum RTO.</summary>
    private TimeSpan PersistInterval(int shift)
    {
        var interval = TimeSpan.FromTicks(_rtt.Rto.Ticks << Math.Min(shift, 16));
        return interval > _config.MaxRto ? _config.MaxRto : interval;
    }

    /// <summary>
    /// When the next keep-alive probe is due: idle for <see cref="KeepAliveIdle"/> since the peer (or its host, on
    /// another connection: <see cref="PeerHostHeard"/>) was last heard from, then one backed-off RTO (capped) after each unanswered probe; null while data is in flight (the retransmission
    /// timer watches the peer then), the window is closed (the persist timer probes) or keep-alive is off.
    /// </summary>
    private Instant? KeepAliveDue()
    {
        if (KeepAliveIdle <= TimeSpan.Zero || _state is not (TcpState.Established or TcpState.CloseWait)
            || _sndUna != _sndMax || _retransmitAt is not null || _persistAt is not null)
        {
            return null;
        }

        if (_unansweredKeepAlives == 0)
        {
            var own = Instant.Max(_lastHeardAt, _lastKeepAliveAt);
            var due = own + KeepAliveIdle;
            if (_peerHostHeardAt > own)
            {
                // Connections deferred by one host heard would all come due together and probe it at once; each comes
                // due up to a quarter of the idle time early, spread by its port, so that the first answers defer the rest.
                var spread = TimeSpan.FromTicks(KeepAliveIdle.Ticks / 4 * ((LocalPort * 40503u) & 0xFFFF) / 0x10000);
                due = Instant.Max(own, _peerHostHeardAt - spread) + KeepAliveIdle;
            }

            var probeAwaitingAnswer = _peerHostProbedAt > own && _peerHostProbedAt > _peerHostHeardAt;
            return probeAwaitingAnswer ? Instant.Max(due, _peerHostProbedAt + KeepAliveRetryInterval(1)) : due;
        }

        return _lastKeepAliveAt + KeepAliveRetryInterval(_unansweredKeepAlives);
    }

    /// <summary>
    /// How long a keep-alive probe waits for its answer before the next: backed off like the RTO, but at most half the
    /// idle time apart, since a connection that only receives has no RTT sample and its initial RTO doubling would
    /// stretch the probes over many seconds.
    /// </summary>
    private TimeSpan KeepAliveRetryInterval(int unanswered)
    {
        var limit = KeepAliveIdle / 2 < _config.MaxRto ? KeepAliveIdle / 2 : _config.MaxRto;
        var backoff = _rtt.Rto;
        for (var probe = 1; probe < unanswered && backoff < limit; probe++)
        {
            backoff += backoff;
        }

        return backoff < limit ? backoff : limit;
    }

    private void EnterClosed(TcpEvent reason)
    {
        StopInClosed();
        if (reason != TcpEvent.Closed)
        {
            _events.Enqueue(reason);
        }

        _events.Enqueue(TcpEvent.Closed);
    }

    /// <summary>
    /// CLOSED, with every timer disarmed and nothing owed to the peer but an RST already queued: shared by a close or
    /// abort (<see cref="EnterClosed"/>) and a migration away, which differ only in what they tell the application.
    /// </summary>
    private void StopInClosed()
    {
        _state = TcpState.Closed;
        _retransmitAt = null;
        _persistAt = null;
        _delayedAckAt = null;
        _timeWaitUntil = null;
        _connectDeadline = null;
        _ackNow = false;
        _burstAckOwed = false;
        _burstAcks?.Clear();
        _probePending = false;
        _keepAlivePending = false;
        _fastRetransmitPending = false;
        ResetLossRecovery();

        // Nothing will be sent or retransmitted again: the send ring and every received byte but the unread ones go
        // back to the pool now, not when the endpoint is collected.
        _send.Clear();
        _receive?.DiscardAllButUnread();
    }

    private void EnterTimeWait(Instant now)
    {
        _state = TcpState.TimeWait;
        _retransmitAt = null;
        _persistAt = null;
        _timeWaitUntil = now + _config.TwoMsl;
    }

    private void QueueReset(SeqNumber seq, SeqNumber ack, TcpFlags flags)
    {
        _resetPending = true;
        _reset = new TcpSegmentRepr
        {
            SourcePort = LocalPort,
            DestinationPort = RemotePort,
            SequenceNumber = seq,
            AcknowledgmentNumber = ack,
            Flags = flags,
        };
    }

    private void ScheduleWindowUpdateIfOpened()
    {
        if (_receive is null || _state is not (TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2))
        {
            return;
        }

        // RFC 1122 §4.2.3.3 (receiver SWS avoidance): announce a larger window only once it grew by
        // min(half the buffer, one MSS). And only while the peer has at most half the buffer left to fill of the
        // window it knows: a sender with more room is not held back, and the ACKs its data draws carry the larger
        // window anyway, so a reader keeping up does not add a pure window update per read (Linux's tcp_cleanup_rbuf
        // makes the same trade).
        var threshold = Math.Min(_receive.Size / 2, _config.MaxSegmentSize);
        var peerRoomLeft = _lastAdvertisedWindow - (ReceiveNext - _lastAckSent);
        if (peerRoomLeft <= _receive.Size / 2 && AdvertisableWindow(ReceiveNext - AckToSend) - _lastAdvertisedWindow >= threshold)
        {
            _ackNow = true;
        }
    }

    /// <summary>The window we can announce now, in bytes, after rounding to our scale and the 16-bit field.</summary>
    /// <param name="unacknowledged">bytes received beyond the acknowledgment number sent with it (held on replication).</param>
    private int AdvertisableWindow(int unacknowledged = 0)
    {
        var window = (_receive?.Window ?? _config.ReceiveBufferSize) + unacknowledged;
        var cap = MaxWindowField << _rcvWindowShift;
        window = Math.Min(window, cap);
        return (window >> _rcvWindowShift) << _rcvWindowShift;
    }
}

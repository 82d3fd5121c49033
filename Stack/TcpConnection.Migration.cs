using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack;

/// <summary>
/// The MTCP side of one control block (thesis 3.3, 4.2): the server application's snapshot contract, the origin
/// server's packaging of a state reply, the destination server's reinstatement, and the accessors the client's
/// two-control-block socket (<see cref="MtcpClientConnection"/>) needs.
/// </summary>
public sealed partial class TcpConnection
{
    /// <summary>The TCP transitions a connection can make once synchronized (RFC 9293 figure 5), for the log of thesis 4.2.2.</summary>
    private static readonly (TcpState From, TcpState To)[] SynchronizedTransitions =
    [
        (TcpState.Established, TcpState.FinWait1),
        (TcpState.Established, TcpState.CloseWait),
        (TcpState.FinWait1, TcpState.FinWait2),
        (TcpState.FinWait1, TcpState.Closing),
        (TcpState.FinWait2, TcpState.TimeWait),
        (TcpState.Closing, TcpState.TimeWait),
        (TcpState.CloseWait, TcpState.LastAck),
    ];

    private ConnectionSnapshot? _snapshot;
    private SeqNumber _lastAckSent;
    private int _soSndBytesDups;
    private bool _migratedAway;

    /// <summary>Buddy replication: the client's bytes the buddy holds up to; null while ACKs are not gated.</summary>
    private SeqNumber? _replicatedUpTo;

    // Destination side (thesis 4.2.3, "once the state reply reaches S2").
    private bool _migrated;
    private ReadOnlyMemory<byte> _importedAppState;
    private StateReply? _reinstated;
    private bool _replayPeerFin;
    private bool _migrationHandshakeDone;

    /// <summary>The last snapshot exported (or reinstated after a migration); null before the first.</summary>
    public ConnectionSnapshot? LastSnapshot => _snapshot;

    /// <summary><c>last_ack_sent</c>: the acknowledgment number of the last segment we sent.</summary>
    public SeqNumber LastAckSent => _lastAckSent;

    /// <summary><c>so_snd_bytes_dups</c>: bytes the application will write again that the client already has; discarded.</summary>
    public int SoSndBytesDups => _soSndBytesDups;

    /// <summary>True once this endpoint handed its connection to another server (state ack received).</summary>
    public bool IsMigratedAway => _migratedAway;

    /// <summary>True for an endpoint reinstated from a state reply (a migrated connection).</summary>
    public bool IsMigrated => _migrated;

    /// <summary><c>orig_server_rcv_nxt</c>: the origin's <c>last_ack_sent</c>, the implicit ACK for the client's data.</summary>
    public SeqNumber? OrigServerRcvNxt => _reinstated is null ? null : OrigConnectionLastAckSent();

    /// <summary><c>orig_server_max_snd_seq</c>: the origin's <c>snd_max_seen</c>.</summary>
    public SeqNumber? OrigServerMaxSndSeq => _reinstated?.SndMaxSeen;

    /// <summary>The state transitions the origin made after the snapshot, replayed here (thesis 4.2.2).</summary>
    public ImmutableArray<TcpStateTransition> ReplayedTransitions => _reinstated?.TStateTransitions ?? [];

    /// <summary>True while a reinstated endpoint waits for the client's ACK (and β) to finish the migration handshake.</summary>
    public bool AwaitingMigrationHandshake => _reinstated is not null && !_migrationHandshakeDone;

    /// <summary>RCV.NXT for data: one past the last in-order byte, not counting a FIN.</summary>
    internal SeqNumber ReceiveDataNext => _receive?.Next ?? _irs + 1;

    /// <summary>Sequence number of the oldest unacknowledged data byte (SND.UNA for data).</summary>
    internal SeqNumber SendDataStart => _send.Start;

    internal bool FinQueued => _finQueued;

    internal bool FinAcknowledged => _finQueued && _sndUna == _send.End + 1;

    internal bool PeerFinReceived => _finReceived;

    /// <summary>
    /// Client side, at the switch: the old control block sends nothing again (its unacknowledged bytes moved to the new
    /// block), so its send ring goes back to the pool; its unread bytes stay readable.
    /// </summary>
    internal void DiscardUnacknowledged()
    {
        _send.Clear();
        ResetLossRecovery();
    }

    /// <summary>
    /// export_state (thesis 3.3.2, 4.2.1 TCP_APP_STATE): records a restart point. <c>rcv_seq_snapshot</c> is the read
    /// pointer, <c>snd_seq_snapshot</c> = <c>snd_una - so_snd_bytes_dups + so_snd.sb_cc</c> (thesis 4.2.3), and the read
    /// log is released up to the read pointer: the snapshot now covers those bytes (thesis fig. 3.7, t3).
    /// </summary>
    public ConnectionSnapshot ExportState(ReadOnlySpan<byte> appState)
    {
        ThrowIfMigratedAway();
        if (_receive is null || _state is TcpState.Closed or TcpState.Listen or TcpState.SynSent)
        {
            throw new InvalidOperationException($"no connection to snapshot in {_state}");
        }

        var rcvSeqSnapshot = _receive.ReadNext;
        ReleaseReadLog(rcvSeqSnapshot);
        _snapshot = new ConnectionSnapshot(appState.ToArray(), rcvSeqSnapshot, _send.End - _soSndBytesDups, TakeTcpSnapshot(), TakeSocketSnapshot());
        return _snapshot;
    }

    /// <summary>
    /// import_state (thesis 3.3.2): NEW for a fresh connection; MIGRATED with the origin's last snapshot for a
    /// reinstated one (an empty application state then means the origin never exported one: start from scratch).
    /// </summary>
    public ImportedState ImportState()
    {
        ThrowIfMigratedAway();
        return _migrated ? new ImportedState(ConnectionOrigin.Migrated, _importedAppState) : new ImportedState(ConnectionOrigin.New, ReadOnlyMemory<byte>.Empty);
    }

    /// <summary>
    /// Origin side (thesis 4.2.3, S1): packages the state reply for <paramref name="request"/>, or rejects it with
    /// INVALID_STATE when the connection is not in a state worth migrating. The endpoint itself is not changed: until
    /// the state ack it keeps behaving like any other endpoint. Looking up the Cid (CB_NOT_FOUND) and checking the
    /// authenticator are the host's business.
    /// </summary>
    public ControlMessage PackageState(StateRequest request) => PackageState(request, default);

    /// <summary>As <see cref="PackageState(StateRequest)"/>, the reply carrying <paramref name="migrationCredential"/> to the next holder.</summary>
    public ControlMessage PackageState(StateRequest request, ReadOnlyMemory<byte> migrationCredential)
    {
        ArgumentNullException.ThrowIfNull(request);
        return TryPackageState(request.RequestId, request.NewEndpointCid, request.ClientRcvNxt, migrationCredential, throughReceived: false, out var reply, out var refusal)
            ? reply
            : new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.InvalidState, refusal);
    }

    /// <summary>
    /// Buddy replication (beyond the thesis, its eager state transfer): the state reply this connection would answer a
    /// state request with now, named <paramref name="cid"/>, for the buddy to keep. Unlike a migration's, its read
    /// log runs to RCV.NXT, past the bytes acknowledged, since the client's bytes are acknowledged only once the buddy
    /// holds them (<see cref="AcknowledgeReplicatedUpTo"/>); the client's rcv_nxt is taken as SND.UNA, and β corrects
    /// it when the replica is reinstated. Null when the connection is in no state to migrate.
    /// </summary>
    public StateReply? PackageReplica(ConnectionId cid, ReadOnlyMemory<byte> migrationCredential) =>
        TryPackageState(0, cid, _send.Start, migrationCredential, throughReceived: true, out var reply, out _) ? reply : null;

    private bool TryPackageState(
        ulong requestId,
        ConnectionId newEndpointCid,
        SeqNumber requestClientRcvNxt,
        ReadOnlyMemory<byte> migrationCredential,
        bool throughReceived,
        [NotNullWhen(true)] out StateReply? reply,
        out string refusal)
    {
        reply = null;

        // Thesis 4.2.3 step 3: before ESTABLISHED nothing was exchanged; LAST_ACK and TIME_WAIT have nothing left to
        // carry; the states that still wait for a FIN are valid because the FIN is part of the sequence space.
        if (_migratedAway || _receive is null || _state is not (TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait or TcpState.Closing))
        {
            refusal = $"connection in {_state}";
            return false;
        }

        if (!_config.RetainReadLog)
        {
            refusal = "endpoint keeps no read log (migration support off)";
            return false;
        }

        var snapshot = _snapshot ?? InitialSnapshot();
        var transitions = TransitionsSince(FromCode(snapshot.TSnapshot.TState));
        if (transitions is null)
        {
            refusal = $"no transition path from {snapshot.TSnapshot.TState} to {_state}";
            return false;
        }

        // Write buffer (step 4 (a)-(d), figs 3.9, 3.10, 4.9): the client's rcv_nxt is an implicit ACK via S2.
        var sndUna = _send.Start;
        var clientRcvNxt = SeqNumber.Min(SeqNumber.Max(requestClientRcvNxt, sndUna), _send.End);
        var sndMaxSeen = SeqNumber.Max(clientRcvNxt, sndUna);
        var sndSeqSnapshot = snapshot.SndSeqSnapshot;
        byte[] writeBufferState = [];
        uint sndBytesDiscard = 0;
        if (sndMaxSeen < sndSeqSnapshot)
        {
            writeBufferState = new byte[sndSeqSnapshot - sndMaxSeen];
            _send.CopyRange(sndMaxSeen, sndSeqSnapshot, writeBufferState);
        }
        else
        {
            sndBytesDiscard = (uint)(sndMaxSeen - sndSeqSnapshot);
        }

        // Read buffer (step 4, fig. 4.10): the log since the snapshot plus the acknowledged unread bytes, up to
        // last_ack_sent. Once the client's FIN is in, everything before it was received and the implicit ACK covers
        // it all (the client stops retransmitting to S1 anyway), so the range runs to the FIN.
        var rcvSeqSnapshot = snapshot.RcvSeqSnapshot;
        var rcvEnd = _finReceived || throughReceived ? _receive.Next : SeqNumber.Min(_lastAckSent, _receive.Next);
        rcvEnd = SeqNumber.Max(rcvEnd, rcvSeqSnapshot);
        var readBufferState = new byte[rcvEnd - rcvSeqSnapshot];
        _receive.CopyRange(rcvSeqSnapshot, rcvEnd, readBufferState);

        reply = new StateReply(
            requestId,
            newEndpointCid,
            rcvEnd,
            sndBytesDiscard,
            sndMaxSeen,
            snapshot.TSnapshot,
            snapshot.SoSnapshot,
            snapshot.AppState,
            writeBufferState,
            readBufferState,
            transitions.Value,
            migrationCredential);
        refusal = string.Empty;
        return true;
    }

    /// <summary>
    /// Buddy replication: the client's bytes up to <paramref name="point"/> (and its FIN, when the point lies past it)
    /// are held by the buddy, so they may be acknowledged. The first call starts ack gating: from then on the
    /// acknowledgment number sent is RCV.NXT capped at the replicated point, never below what was already
    /// acknowledged, while the window's right edge stays where RCV.NXT puts it, so the client keeps sending. Points
    /// only move forward.
    /// </summary>
    public void AcknowledgeReplicatedUpTo(SeqNumber point)
    {
        if (_replicatedUpTo is { } held && point <= held)
        {
            return;
        }

        _replicatedUpTo = point;
        if (AckToSend != _lastAckSent)
        {
            _ackNow = true;
        }
    }

    /// <summary>Buddy replication ends (no buddy left, replication off): every byte received is acknowledged again.</summary>
    public void StopAckGating()
    {
        if (_replicatedUpTo is null)
        {
            return;
        }

        _replicatedUpTo = null;
        if (ReceiveNext != _lastAckSent)
        {
            _ackNow = true;
        }
    }

    /// <summary>Whether ACKs are gated on replication, and the point the buddy holds the client's bytes up to.</summary>
    public SeqNumber? ReplicatedUpTo => _replicatedUpTo;

    /// <summary>The end of the client's bytes received in order (RCV.NXT without a FIN): what a buddy is to hold.</summary>
    public SeqNumber ReceivedDataEnd => _receive?.Next ?? _irs + 1;

    /// <summary>Copies the client's received bytes [<paramref name="from"/>, <paramref name="to"/>): read log, unread or both.</summary>
    public void CopyReceived(SeqNumber from, SeqNumber to, Span<byte> destination)
    {
        if (_receive is null)
        {
            throw new InvalidOperationException("nothing received before the handshake");
        }

        _receive.CopyRange(from, to, destination);
    }

    /// <summary>
    /// The acknowledgment number to send: RCV.NXT, or while ACKs are gated on replication the replicated point when it
    /// lies below, but never below the last one sent (acknowledgments do not go back). LAST-ACK and TIME-WAIT are not
    /// gated: a connection there has nothing left to migrate (thesis 4.2.3 step 3), so its replica is released and
    /// the point would never reach the client's FIN, which the client would retransmit unanswered until it took this
    /// live server for a silent one.
    /// </summary>
    private SeqNumber AckToSend => _replicatedUpTo is { } replicated && replicated < ReceiveNext && _state is not (TcpState.LastAck or TcpState.TimeWait)
        ? SeqNumber.Max(replicated, _lastAckSent)
        : ReceiveNext;

    /// <summary>
    /// Origin side, on the state ack (thesis 4.2.3): stop acknowledging and close without a FIN or RST, so the client
    /// is not disturbed. The application learns of it through <see cref="TcpEvent.MigratedAway"/> and EMIGRATED.
    /// </summary>
    public void CompleteMigrationAway()
    {
        if (_migratedAway)
        {
            return;
        }

        _migratedAway = true;
        StopInClosed();

        // Unlike a close, not even a queued RST goes out: the client, on another server now, must not be disturbed.
        _resetPending = false;
        _events.Enqueue(TcpEvent.MigratedAway);
    }

    /// <summary>
    /// Destination side (thesis 4.2.3, "once the state reply reaches S2", step 2-3): in SYN-RECEIVED, before the SYN is
    /// answered, puts the read-buffer state in front of the client's first byte (so the application reads it first),
    /// the write-buffer state at the head of the send buffer, and keeps <c>so_snd_bytes_dups</c>,
    /// <c>orig_server_rcv_nxt</c>, <c>orig_server_max_snd_seq</c>, the application state and the transition log.
    /// </summary>
    public void ReinstateState(StateReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        if (_state != TcpState.SynReceived || _reinstated is not null || _send.Length != 0)
        {
            throw new InvalidOperationException($"a state reply is reinstated once, in SYN-RECEIVED before any write (now {_state})");
        }

        if (reply.SndStateLength > _send.Capacity)
        {
            throw new ArgumentException("the state reply does not fit this endpoint's buffers", nameof(reply));
        }

        // The reinstated bytes take the sequence numbers just before the client's first byte on this connection.
        // They come on top of the configured buffer: the application only starts reading them once the handshake is
        // done, and a window they had filled could leave the client unable to complete it.
        var readStart = _irs + 1 - reply.RcvStateLength;
        _receive = new ReceiveBuffer(_config.ReceiveBufferSize + reply.RcvStateLength, readStart, _config.RetainReadLog);
        _receive.Write(readStart, reply.ReadBufferState.Span, out _);
        _send.Write(reply.WriteBufferState.Span);
        _soSndBytesDups = checked((int)reply.SndBytesDiscard);
        _importedAppState = reply.AppState;
        _replayPeerFin = PeerFinIn(reply);
        _reinstated = reply;
        _migrated = true;
    }

    /// <summary>
    /// The origin's <c>last_ack_sent</c> for the orig-connection-info option on our SYN+ACK. When the transition log
    /// says the client's FIN reached the origin, it counts the FIN too, so the client's implicit ACK covers it.
    /// </summary>
    public SeqNumber OrigConnectionLastAckSent() =>
        _reinstated is { } reply ? reply.LastAckSent + (_replayPeerFin ? 1 : 0) : throw new InvalidOperationException("not a reinstated endpoint");

    /// <summary>
    /// Destination side, on the client's ACK of our SYN+ACK (thesis 4.2.3, last step): β bytes at the head of the
    /// transferred write-buffer state are already at the client, so they go (any excess adds to
    /// <c>so_snd_bytes_dups</c>); the logged transitions are replayed before any FIN from the client is accepted; and
    /// the reinstated snapshot becomes this endpoint's restart point, in its own sequence space.
    /// </summary>
    public void CompleteMigrationHandshake(uint beta)
    {
        if (_reinstated is not { } reply || _migrationHandshakeDone || _state is TcpState.SynReceived or TcpState.Closed)
        {
            throw new InvalidOperationException($"no migration handshake to complete in {_state}");
        }

        _migrationHandshakeDone = true;
        var dropped = _send.DiscardFront((int)Math.Min(beta, int.MaxValue));
        _soSndBytesDups = checked(_soSndBytesDups + (int)(beta - (uint)dropped));

        // Replay (thesis 4.2.2): the client's FIN was taken at the origin, so it counts as received here. Our own
        // active close is replayed by the application itself, which re-executes from the snapshot and closes at the
        // same point of the stream; a FIN placed now would precede the bytes it rewrites.
        if (_replayPeerFin && !_finReceived)
        {
            _finReceived = true;
            _events.Enqueue(TcpEvent.PeerClosed);
            if (_state == TcpState.Established)
            {
                _state = TcpState.CloseWait;
            }
        }

        // The application shut down its sending side before its last snapshot (so_state SS_CANTSENDMORE, a half-close):
        // resumed from there it never closes again, so the FIN goes out here, after the write-buffer state, and the
        // endpoint resumes in FIN-WAIT-1 (LAST-ACK once the client's FIN is in too). A close after the snapshot is the
        // application's to replay. The restart point then records that state, the one the transitions of the next
        // migration start from: the origin's FIN-WAIT-2 or CLOSING has no path back to FIN-WAIT-1.
        var tSnapshot = reply.TSnapshot;
        if ((reply.SoSnapshot.SoState & SocketStateFlags.CantSendMore) != 0 && !_finQueued)
        {
            _finQueued = true;
            _state = _state == TcpState.CloseWait ? TcpState.LastAck : TcpState.FinWait1;
            tSnapshot = new TcpSnapshot(ToCode(_state), tSnapshot.TFlags, tSnapshot.TMaxseg, tSnapshot.SndScale, tSnapshot.RcvScale);
        }

        _snapshot = new ConnectionSnapshot(_importedAppState, _receive!.ReadNext, _send.End - _soSndBytesDups, tSnapshot, reply.SoSnapshot);
        if (!_readableQueued && _receive.Readable > 0)
        {
            _readableQueued = true;
            _events.Enqueue(TcpEvent.Readable);
        }
    }

    /// <summary>
    /// Client side, at the switch (thesis 4.2.3 step 3): the implicit ACK covered the client's FIN, so this new control
    /// block starts with its FIN sent and acknowledged (FIN-WAIT-2, or TIME-WAIT if the peer's FIN is in too).
    /// </summary>
    internal void AdoptAcknowledgedFin(Instant now)
    {
        if (_state != TcpState.Established || _send.Length != 0)
        {
            throw new InvalidOperationException($"an acknowledged FIN is adopted right after the handshake, with nothing to send (now {_state})");
        }

        _finQueued = true;
        _sndNxt = _send.End + 1;
        _sndMax = _sndNxt;
        _sndUna = _sndNxt;
        _retransmitAt = null;
        if (_finReceived)
        {
            EnterTimeWait(now);
        }
        else
        {
            _state = TcpState.FinWait2;
        }
    }

    private static bool PeerFinIn(StateReply reply) =>
        reply.TSnapshot.TState is TcpStateCode.CloseWait or TcpStateCode.Closing or TcpStateCode.LastAck or TcpStateCode.TimeWait
        || reply.TStateTransitions.Any(t => t.To is TcpStateCode.CloseWait or TcpStateCode.Closing || (t.From == TcpStateCode.FinWait2 && t.To == TcpStateCode.TimeWait));

    private void ThrowIfMigratedAway()
    {
        if (_migratedAway)
        {
            throw new ConnectionMigratedException();
        }
    }

    /// <summary>so_snd_bytes_dups (thesis 4.2.3): the resumed application's first writes that the client already has are dropped.</summary>
    private int DiscardDuplicateWrite(ref ReadOnlySpan<byte> data)
    {
        if (_soSndBytesDups == 0 || data.IsEmpty)
        {
            return 0;
        }

        var count = Math.Min(_soSndBytesDups, data.Length);
        _soSndBytesDups -= count;
        data = data[count..];
        return count;
    }

    /// <summary>The restart point of an application that never exported one: the start of both streams.</summary>
    private ConnectionSnapshot InitialSnapshot() =>
        new(ReadOnlyMemory<byte>.Empty, _irs + 1, InitialSendSequence + 1, TakeTcpSnapshot(TcpState.Established), TakeSocketSnapshot());

    /// <summary>
    /// The log of thesis 4.2.2 from the snapshot's state to the current one. The synchronized part of the TCP state
    /// graph has one path between any two states it connects, so the log is that path.
    /// </summary>
    private ImmutableArray<TcpStateTransition>? TransitionsSince(TcpState from)
    {
        if (from == _state)
        {
            return [];
        }

        var previous = new Dictionary<TcpState, TcpState>();
        var frontier = new Queue<TcpState>([from]);
        while (frontier.TryDequeue(out var state) && state != _state)
        {
            foreach (var (edgeFrom, edgeTo) in SynchronizedTransitions)
            {
                if (edgeFrom == state && edgeTo != from && previous.TryAdd(edgeTo, state))
                {
                    frontier.Enqueue(edgeTo);
                }
            }
        }

        if (!previous.ContainsKey(_state))
        {
            return null;
        }

        var path = new List<TcpStateTransition>();
        for (var state = _state; state != from; state = previous[state])
        {
            path.Add(new TcpStateTransition(ToCode(previous[state]), ToCode(state)));
        }

        path.Reverse();
        return [.. path];
    }

    private TcpSnapshot TakeTcpSnapshot(TcpState? state = null)
    {
        var flags = TcpSnapshotFlags.Migrate | (_config.Nagle ? TcpSnapshotFlags.None : TcpSnapshotFlags.NoDelay);
        if (_windowScalingAgreed)
        {
            flags |= TcpSnapshotFlags.WindowScaling;
        }

        if (_sackAgreed)
        {
            flags |= TcpSnapshotFlags.SackPermitted;
        }

        return new TcpSnapshot(
            ToCode(state ?? _state),
            flags,
            (ushort)_sendMss,
            _windowScalingAgreed ? (byte)_sndWindowShift : (byte)0,
            _windowScalingAgreed ? (byte)_rcvWindowShift : (byte)0);
    }

    private SocketSnapshot TakeSocketSnapshot() => new(
        (_finQueued ? SocketStateFlags.CantSendMore : SocketStateFlags.None) | (_finReceived ? SocketStateFlags.CantRcvMore : SocketStateFlags.None),
        SocketOptionFlags.MigrationSupport,
        0);

    internal static TcpStateCode ToCode(TcpState state) => state switch
    {
        TcpState.Closed => TcpStateCode.Closed,
        TcpState.Listen => TcpStateCode.Listen,
        TcpState.SynSent => TcpStateCode.SynSent,
        TcpState.SynReceived => TcpStateCode.SynReceived,
        TcpState.Established => TcpStateCode.Established,
        TcpState.FinWait1 => TcpStateCode.FinWait1,
        TcpState.FinWait2 => TcpStateCode.FinWait2,
        TcpState.CloseWait => TcpStateCode.CloseWait,
        TcpState.Closing => TcpStateCode.Closing,
        TcpState.LastAck => TcpStateCode.LastAck,
        _ => TcpStateCode.TimeWait,
    };

    internal static TcpState FromCode(TcpStateCode code) => code switch
    {
        TcpStateCode.Closed => TcpState.Closed,
        TcpStateCode.Listen => TcpState.Listen,
        TcpStateCode.SynSent => TcpState.SynSent,
        TcpStateCode.SynReceived => TcpState.SynReceived,
        TcpStateCode.Established => TcpState.Established,
        TcpStateCode.FinWait1 => TcpState.FinWait1,
        TcpStateCode.FinWait2 => TcpState.FinWait2,
        TcpStateCode.CloseWait => TcpState.CloseWait,
        TcpStateCode.Closing => TcpState.Closing,
        TcpStateCode.LastAck => TcpState.LastAck,
        _ => TcpState.TimeWait,
    };
}

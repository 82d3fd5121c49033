using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// The serving node's side of buddy replication for one connection (beyond the thesis: its eager state transfer,
/// DESIGN "Fault and trust model"), sans-IO. It keeps a buddy node holding what a state reply would carry now
/// (thesis 4.2.2-4.2.3: the last snapshot with its TCP state, the transition log, the credential, and the read log
/// since), so that the buddy can answer the client's special SYN if this node dies:
/// <list type="bullet">
/// <item>the whole state, packaged by <see cref="TcpConnection.PackageReplica"/> (the state reply's own encoding, cut
/// into <see cref="ReplicaState"/> pieces that each fit one control frame), when the buddy holds none yet, the TCP
/// state or the credential changed, or a new snapshot is due by the <see cref="ReplicaStateSchedule"/> (the buddy's
/// older snapshot and the read log since serve as well, only with a longer replay); one whole state unacknowledged at
/// a time, later changes wait for its ack and go in the next;</item>
/// <item>otherwise only the client's bytes received since, as <see cref="ReplicaReadLog"/>s.</item>
/// </list>
/// Pipelined and batched: each <see cref="Update"/> sends whatever is new, in as few messages as fit, without waiting
/// for earlier acks, while fewer than <c>readLogsInFlight</c> read logs are unacknowledged; bytes that come while that
/// many are in flight wait and go together, in one message of up to <c>maxPiece</c>, when an ack frees the pipeline
/// (every message crosses Akka.Remote and its sealing both ways with a cost of its own, so an upload that sent one
/// per burst of segments paid it for every 64 KiB). Waiting bytes are copied out of the connection as they come: the
/// application's next export releases the read log up to its snapshot, which the buddy does not hold yet. The buddy acknowledges each update, an ack covers every update
/// up to its own, and the connection acknowledges the client's bytes the acked updates cover
/// (<see cref="TcpConnection.AcknowledgeReplicatedUpTo"/>), about one control round trip after they came.
/// <para>
/// Never silently lost: an update can be lost on its way (a replication channel that breaks mid-write, a control
/// connection manager that drops what goes to a peer it marks lost) or refused by a buddy it does not continue, and
/// until it is acknowledged the client's bytes it carries stay unacknowledged, the client retransmitting them for
/// nothing. So the oldest update unacknowledged for longer than the ack timeout (<see cref="AckDeadline"/>,
/// <see cref="HandleAckTimeout"/>) makes the whole state go again, as a buddy's NeedsState does.
/// </para>
/// </summary>
public sealed class ConnectionReplicator
{
    private readonly ConnectionId _cid;
    private readonly int _maxPiece;
    private readonly int _readLogsInFlight;
    private readonly ReplicaStateSchedule _schedule;
    private readonly TimeSpan _ackTimeout;
    private readonly Queue<ControlMessage> _outbox = new();

    /// <summary>
    /// Updates sent and not yet acknowledged, with the client's sequence number each covers, whether it is a read log and
    /// when it was sent.
    /// </summary>
    private readonly Queue<(ulong Update, SeqNumber Covers, bool ReadLog, Instant SentAt)> _unacknowledged = new();

    /// <summary>The read logs among <see cref="_unacknowledged"/>.</summary>
    private int _readLogsUnacknowledged;

    private ulong _nextUpdate = 1;

    /// <summary>Acks of updates numbered below this answer a buddy's earlier state, not the one being sent.</summary>
    private ulong _restartedAt = 1;
    private uint _generation;
    private bool _stateSent;
    private bool _released;

    /// <summary>The update that ends the whole state in flight; null when none is unacknowledged.</summary>
    private ulong? _stateInFlight;

    private ConnectionSnapshot? _sentSnapshot;
    private TcpState _sentTcpState;
    private byte[] _sentCredential = [];

    /// <summary>The encoded length of the last whole state sent.</summary>
    private long _sentStateLength;

    /// <summary>The client's bytes sent to the buddy end here.</summary>
    private SeqNumber _sentUpTo;

    /// <summary>
    /// The client's bytes from <see cref="_sentUpTo"/> on, copied out of the connection, waiting for the pipeline to free:
    /// each buffer holds up to one read log (<c>maxPiece</c>) and is filled in place as bytes come, so that the read log
    /// it becomes is the one copy of its bytes before sealing.
    /// </summary>
    private readonly Queue<WaitingReadLog> _waiting = new();

    /// <summary>The last of <see cref="_waiting"/>, which the next bytes fill while it has room.</summary>
    private WaitingReadLog? _waitingTail;
    private int _waitingLength;

    /// <param name="cid">the connection, as this server names it.</param>
    /// <param name="maxPiece">most state or read-log bytes in one message, so that each sealed message fits one control frame.</param>
    /// <param name="readLogsInFlight">most read logs unacknowledged at once; the client's bytes that come meanwhile wait for an ack and go together.</param>
    /// <param name="schedule">when a new application snapshot goes to the buddy as a whole state.</param>
    /// <param name="ackTimeout">how long the oldest update may wait for its ack before the whole state goes again.</param>
    public ConnectionReplicator(ConnectionId cid, int maxPiece, int readLogsInFlight, ReplicaStateSchedule schedule, TimeSpan ackTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPiece);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(readLogsInFlight);
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ackTimeout, TimeSpan.Zero);
        _cid = cid;
        _maxPiece = maxPiece;
        _readLogsInFlight = readLogsInFlight;
        _schedule = schedule;
        _ackTimeout = ackTimeout;
    }

    /// <summary>Updates sent and not yet acknowledged.</summary>
    public int Unacknowledged => _unacknowledged.Count;

    /// <summary>Whole states sent so far (to every buddy).</summary>
    public uint StatesSent => _generation;

    /// <summary>The client's bytes sent as read logs so far (to every buddy).</summary>
    public long ReadLogBytesSent { get; private set; }

    /// <summary>Times the whole state went again because an update's ack did not come within the ack timeout.</summary>
    public int AckTimeouts { get; private set; }

    /// <summary>
    /// When the oldest unacknowledged update has waited the ack timeout (the driver's timer; <see cref="HandleAckTimeout"/>
    /// then); null while nothing is unacknowledged.
    /// </summary>
    public Instant? AckDeadline => _unacknowledged.TryPeek(out var oldest) ? oldest.SentAt + _ackTimeout : null;

    /// <summary>
    /// The driver's timer for <see cref="AckDeadline"/> fired: when the oldest update is still unacknowledged at its
    /// deadline, it or its ack was lost (or the buddy refused it and its NeedsState was lost), and the next
    /// <see cref="Update"/> sends the whole state, acks of what went before ignored. True when it restarted.
    /// </summary>
    public bool HandleAckTimeout(Instant now)
    {
        if (AckDeadline is not { } deadline || now < deadline)
        {
            return false;
        }

        AckTimeouts++;
        Restart();
        return true;
    }

    /// <summary>
    /// A new buddy, or one that lost what it held: the next <see cref="Update"/> sends the whole state, and acks of
    /// what was sent before are ignored. The client's bytes stay acknowledged only up to what the old buddy held.
    /// </summary>
    public void Restart()
    {
        _outbox.Clear();
        _unacknowledged.Clear();
        _readLogsUnacknowledged = 0;
        ClearWaiting();
        _stateSent = false;
        _stateInFlight = null;
        _released = false;
        _restartedAt = _nextUpdate;
    }

    /// <summary>
    /// Queues for the buddy what changed in <paramref name="connection"/> since the last call, sent at <paramref name="now"/>;
    /// <paramref name="credential"/> is the connection's migration credential as a state reply carries it. Nothing while
    /// the connection is in no state to migrate (before ESTABLISHED, after it closed or migrated away).
    /// </summary>
    public void Update(Instant now, TcpConnection connection, ReadOnlySpan<byte> credential)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (_released)
        {
            return;
        }

        var changed = !_stateSent
            || connection.State != _sentTcpState
            || !credential.SequenceEqual(_sentCredential)
            || SnapshotDue(connection.LastSnapshot);
        if (changed && _stateInFlight is null)
        {
            SendState(now, connection, credential);
            return;
        }

        if (!_stateSent)
        {
            return;
        }

        var end = connection.ReceivedDataEnd;
        var from = _sentUpTo + _waitingLength;
        while (from < end && _waiting.Count == 0 && _readLogsUnacknowledged < _readLogsInFlight)
        {
            // The pipeline has room: the bytes go as they are, copied once, in a buffer of their own length.
            var length = Math.Min(end - from, _maxPiece);
            var bytes = new byte[length];
            connection.CopyReceived(from, from + length, bytes);
            SendReadLog(now, bytes);
            from += length;
        }

        while (from < end)
        {
            // The pipeline is full: the bytes wait in buffers of up to one read log, filled in place as more come.
            if (_waitingTail is not { } tail || tail.Length == _maxPiece)
            {
                tail = _waitingTail = new WaitingReadLog(new byte[WaitingCapacity(end - from)]);
                _waiting.Enqueue(tail);
            }
            else if (tail.Length == tail.Buffer.Length)
            {
                tail.Grow(WaitingCapacity(tail.Length + (end - from)));
            }

            var length = Math.Min(end - from, tail.Buffer.Length - tail.Length);
            connection.CopyReceived(from, from + length, tail.Buffer.AsSpan(tail.Length, length));
            tail.Length += length;
            _waitingLength += length;
            from += length;
        }

        while (_waiting.Count > 0 && _readLogsUnacknowledged < _readLogsInFlight)
        {
            var waiting = _waiting.Dequeue();
            if (ReferenceEquals(waiting, _waitingTail))
            {
                _waitingTail = null;
            }

            _waitingLength -= waiting.Length;
            SendReadLog(now, waiting.Buffer.AsMemory(0, waiting.Length));
        }
    }

    private void SendReadLog(Instant now, ReadOnlyMemory<byte> bytes)
    {
        var update = _nextUpdate++;
        _outbox.Enqueue(new ReplicaReadLog(update, _cid, _generation, _sentUpTo, bytes));
        _sentUpTo += bytes.Length;
        ReadLogBytesSent += bytes.Length;
        _unacknowledged.Enqueue((update, _sentUpTo, true, now));
        _readLogsUnacknowledged++;
    }

    /// <summary>
    /// A waiting buffer's size for <paramref name="bytes"/> to wait: one read log's when they come in bulk (a quarter of
    /// one or more at once, as an upload's segments do), so that they are copied once; else their own size, at least
    /// twice what the buffer held, so that a few small requests waiting do not each take a read log's memory, and the
    /// bytes of a growing buffer are copied again at most about once on average.
    /// </summary>
    private int WaitingCapacity(int bytes) =>
        bytes >= _maxPiece / 4 ? _maxPiece : Math.Min(_maxPiece, Math.Max(bytes, 2 * (_waitingTail?.Length ?? 0)));

    private void ClearWaiting()
    {
        _waiting.Clear();
        _waitingTail = null;
        _waitingLength = 0;
    }

    /// <summary>
    /// The buddy's answer. Held: the client's bytes the acknowledged updates cover may now be acknowledged (the
    /// connection's ACK moves); NeedsState: the whole state goes again on the next <see cref="Update"/>.
    /// </summary>
    public void HandleAck(ReplicaAck ack, TcpConnection connection)
    {
        ArgumentNullException.ThrowIfNull(ack);
        ArgumentNullException.ThrowIfNull(connection);
        // An ack naming an update not made yet (forged, or a confused buddy) would cover bytes the buddy never got.
        if (ack.Cid != _cid || ack.RequestId < _restartedAt || ack.RequestId >= _nextUpdate)
        {
            return;
        }

        if (ack.Status == ReplicaAckStatus.NeedsState)
        {
            Restart();
            return;
        }

        SeqNumber? covered = null;
        while (_unacknowledged.TryPeek(out var sent) && sent.Update <= ack.RequestId)
        {
            _unacknowledged.Dequeue();
            covered = sent.Covers;
            if (sent.ReadLog)
            {
                _readLogsUnacknowledged--;
            }
        }

        if (_stateInFlight <= ack.RequestId)
        {
            _stateInFlight = null;
        }

        if (covered is { } point)
        {
            connection.AcknowledgeReplicatedUpTo(point);
        }
    }

    /// <summary>The connection ended or left this node: the buddy may forget it (once).</summary>
    public void Release()
    {
        if (_released || !_stateSent)
        {
            _released = true;
            return;
        }

        Restart();
        _released = true;
        _outbox.Enqueue(new ReplicaRelease(_nextUpdate++, _cid));
    }

    /// <summary>
    /// Whether <paramref name="snapshot"/>, the connection's last, is to replace the buddy's: the first one the
    /// application exported always is (the buddy then knows what the application keeps); a later one once the replay it
    /// saves is due by the schedule.
    /// </summary>
    private bool SnapshotDue(ConnectionSnapshot? snapshot)
    {
        if (ReferenceEquals(snapshot, _sentSnapshot))
        {
            return false;
        }

        if (snapshot is null || _sentSnapshot is null)
        {
            return true;
        }

        long progress = (snapshot.RcvSeqSnapshot - _sentSnapshot.RcvSeqSnapshot) + (snapshot.SndSeqSnapshot - _sentSnapshot.SndSeqSnapshot);
        return _schedule.IsDue(progress, _sentStateLength);
    }

    /// <summary>The next message for the buddy, in order.</summary>
    public bool PollOutgoing(out ControlMessage message) => _outbox.TryDequeue(out message!);

    private void SendState(Instant now, TcpConnection connection, ReadOnlySpan<byte> credential)
    {
        var state = connection.PackageReplica(_cid, credential.ToArray());
        if (state is null)
        {
            return;
        }

        _generation++;
        var encoded = state.ToArray();
        var total = (uint)encoded.Length;
        _sentStateLength = encoded.Length;
        ulong update = 0;
        for (var offset = 0; offset < encoded.Length; offset += _maxPiece)
        {
            update = _nextUpdate++;
            var length = Math.Min(_maxPiece, encoded.Length - offset);
            _outbox.Enqueue(new ReplicaState(update, _cid, _generation, total, (uint)offset, encoded.AsMemory(offset, length)));
        }

        // The state's read log runs to RCV.NXT's data; a FIN received counts too, as the transition log carries it.
        _unacknowledged.Enqueue((update, connection.ReceiveNext, false, now));
        _stateInFlight = update;
        _stateSent = true;
        _sentSnapshot = connection.LastSnapshot;
        _sentTcpState = connection.State;
        _sentCredential = credential.ToArray();

        // The state's read log runs to RCV.NXT: it holds every byte that waited.
        _sentUpTo = state.LastAckSent;
        ClearWaiting();
    }

    /// <summary>A read log's buffer while its bytes wait for the pipeline: <see cref="Length"/> of its bytes are filled.</summary>
    private sealed class WaitingReadLog(byte[] buffer)
    {
        public byte[] Buffer { get; private set; } = buffer;

        public int Length { get; set; }

        /// <summary>Moves the bytes filled into a buffer of <paramref name="capacity"/> bytes.</summary>
        public void Grow(int capacity)
        {
            var grown = new byte[capacity];
            Buffer.AsSpan(0, Length).CopyTo(grown);
            Buffer = grown;
        }
    }
}

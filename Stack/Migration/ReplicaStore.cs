using System.Diagnostics.CodeAnalysis;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// The buddy's side of buddy replication, sans-IO: the replicas of the connections other nodes serve, each the state
/// reply its server would answer a state request with now (<see cref="ConnectionReplicator"/> sends them), keyed by
/// Cid and remembering which node sent them (<typeparamref name="TOrigin"/>). When that node dies, a replica answers
/// the client's special SYN as the origin would have (<see cref="AnswerStateRequest"/>).
/// </summary>
/// <typeparam name="TOrigin">how the driver names the node a replica came from.</typeparam>
public sealed class ReplicaStore<TOrigin>
    where TOrigin : notnull
{
    private readonly Dictionary<ConnectionId, Replica> _replicas = [];
    private readonly int _maxStateLength;

    /// <param name="maxStateLength">largest whole state accepted (<c>mtcp.control.max-state-reply-size</c>); a larger one is refused.</param>
    public ReplicaStore(int maxStateLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxStateLength);
        _maxStateLength = maxStateLength;
    }

    /// <summary>Connections replicated here.</summary>
    public int Count => _replicas.Count;

    /// <summary>
    /// Applies an update from <paramref name="origin"/>: <see cref="ReplicaState"/>, <see cref="ReplicaReadLog"/> or
    /// <see cref="ReplicaRelease"/>. Returns the ack to send back: Held once a whole state or a read log is in,
    /// NeedsState when one cannot be applied (a piece or bytes missing, another generation, a state too large, or
    /// one that does not decode); null for a piece that does not end a state, and for a release.
    /// </summary>
    public ReplicaAck? Apply(TOrigin origin, ControlMessage update)
    {
        ArgumentNullException.ThrowIfNull(update);
        switch (update)
        {
            case ReplicaState piece:
                return ApplyPiece(origin, piece);
            case ReplicaReadLog readLog:
                return ApplyReadLog(origin, readLog);
            case ReplicaRelease release:
                if (_replicas.TryGetValue(release.Cid, out var released) && EqualityComparer<TOrigin>.Default.Equals(released.Origin, origin))
                {
                    _replicas.Remove(release.Cid);
                }

                return null;
            default:
                throw new ArgumentException($"{update.GetType().Name} is no replica update", nameof(update));
        }
    }

    /// <summary>The nodes replicas came from.</summary>
    public IReadOnlyList<TOrigin> Origins => [.. _replicas.Values.Select(replica => replica.Origin).Distinct()];

    /// <summary>The connections <paramref name="origin"/> replicated here whose whole state is in.</summary>
    public IReadOnlyList<ConnectionId> HeldFrom(TOrigin origin) =>
        [.. _replicas.Where(pair => pair.Value.State is not null && EqualityComparer<TOrigin>.Default.Equals(pair.Value.Origin, origin)).Select(pair => pair.Key)];

    /// <summary>The state reply held for <paramref name="cid"/> now, its read log to the last byte replicated, and the node it came from.</summary>
    public bool TryGetState(ConnectionId cid, [NotNullWhen(true)] out StateReply? state, [NotNullWhen(true)] out TOrigin? origin)
    {
        state = null;
        origin = default;
        if (!_replicas.TryGetValue(cid, out var replica) || replica.State is null)
        {
            return false;
        }

        state = replica.Compose(replica.State.RequestId, cid, replica.State.MigrationCredential);
        origin = replica.Origin;
        return true;
    }

    /// <summary>Forgets the replica of <paramref name="cid"/> (taken over, or its origin is gone for good).</summary>
    public bool Remove(ConnectionId cid) => _replicas.Remove(cid);

    /// <summary>
    /// Takeover: the answer the dead origin would have given <paramref name="request"/> (thesis 4.2.3 at S1), from the
    /// replica of its Cid. The special SYN's MIGRATED_CONN authenticator is checked under the connection's secret,
    /// recomputed from the replicated credential, and the attempt is consumed in the replica; the reply carries the
    /// credential onward. No replica: CB_NOT_FOUND; an authenticator that does not verify: AUTH_FAILED. The reply's
    /// snd_max_seen is the one replicated, at most the client's rcv_nxt: β at the handshake drops what the client
    /// already has, exactly as in a planned migration.
    /// </summary>
    public ControlMessage AnswerStateRequest(StateRequest request, IMigrationAuthenticator authenticator, out MigratedConnectionCheck check)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(authenticator);
        check = MigratedConnectionCheck.Forged;
        if (!_replicas.TryGetValue(request.MigratingCid, out var replica) || replica.State is not { } state)
        {
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.CbNotFound, $"no replica of {request.MigratingCid}");
        }

        if (!ConnectionCredential.TryRead(state.MigrationCredential.Span, out var held))
        {
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.InvalidState, "the replica carries no credential");
        }

        check = authenticator.VerifyStateRequest(request, held.Credential, held.SecretCid, out var updated);
        if (check != MigratedConnectionCheck.Accepted)
        {
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.AuthFailed, $"authenticator did not verify ({check})");
        }

        var consumed = (held with { Credential = updated }).ToBytes();
        replica.State = replica.Compose(state.RequestId, state.NewEndpointCid, consumed);
        replica.ReadLog.Clear();
        replica.ReadLogLength = 0;
        return replica.Compose(request.RequestId, request.NewEndpointCid, consumed);
    }

    /// <summary>
    /// Takeover: an authenticated MIGRATE_TRIGGER (thesis 3.2.1) asking the client of <paramref name="cid"/> to migrate
    /// to <paramref name="self"/>, this node's service endpoint, which sends it. The buddy signs it as the connection's
    /// holder would: the connection's secret is recomputed from the replicated credential under the cluster key, for
    /// its current epoch. False when no whole state of <paramref name="cid"/> is held or its credential is unusable.
    /// </summary>
    public bool TryCreateTakeoverTrigger(ConnectionId cid, ServerEndpoint self, IMigrationAuthenticator authenticator, out TcpSegmentRepr segment)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        segment = default;
        if (!_replicas.TryGetValue(cid, out var replica) || replica.State is not { } state
            || !ConnectionCredential.TryRead(state.MigrationCredential.Span, out var held)
            || !held.TryDeriveSecret(authenticator, out var secret))
        {
            return false;
        }

        var trigger = new ConnectionAuthenticator(secret).CreateTrigger(cid, self, held.Credential.Epoch, self);
        segment = ServerMigration.TriggerSegment(cid, self, trigger);
        return true;
    }

    /// <summary>The node <paramref name="cid"/>'s replica came from; false when none is held.</summary>
    public bool TryGetOrigin(ConnectionId cid, [NotNullWhen(true)] out TOrigin? origin)
    {
        origin = default;
        if (!_replicas.TryGetValue(cid, out var replica))
        {
            return false;
        }

        origin = replica.Origin;
        return true;
    }

    private ReplicaAck? ApplyPiece(TOrigin origin, ReplicaState piece)
    {
        var replica = ReplicaFor(piece.Cid, origin);
        if (piece.Offset == 0)
        {
            if (piece.TotalLength > _maxStateLength)
            {
                replica.Assembling = null;
                return new ReplicaAck(piece.RequestId, piece.Cid, ReplicaAckStatus.NeedsState);
            }

            replica.Assembling = new Assembly(piece.Generation, new byte[piece.TotalLength]);
        }

        if (replica.Assembling is not { } assembly || assembly.Generation != piece.Generation || assembly.Filled != piece.Offset || assembly.Bytes.Length != piece.TotalLength)
        {
            replica.Assembling = null;
            return new ReplicaAck(piece.RequestId, piece.Cid, ReplicaAckStatus.NeedsState);
        }

        piece.Piece.Span.CopyTo(assembly.Bytes.AsSpan((int)piece.Offset));
        assembly.Filled += (uint)piece.Piece.Length;
        if (!piece.IsLast)
        {
            return null;
        }

        replica.Assembling = null;
        if (!StateReply.TryDecode(assembly.Bytes, out var state, out _))
        {
            return new ReplicaAck(piece.RequestId, piece.Cid, ReplicaAckStatus.NeedsState);
        }

        replica.State = state;
        replica.Generation = piece.Generation;
        replica.ReadLog.Clear();
        replica.ReadLogLength = 0;
        replica.End = state.LastAckSent;
        return new ReplicaAck(piece.RequestId, piece.Cid, ReplicaAckStatus.Held);
    }

    private ReplicaAck ApplyReadLog(TOrigin origin, ReplicaReadLog readLog)
    {
        if (!_replicas.TryGetValue(readLog.Cid, out var replica)
            || !EqualityComparer<TOrigin>.Default.Equals(replica.Origin, origin)
            || replica.State is null
            || replica.Generation != readLog.Generation
            || replica.End != readLog.From
            || replica.ReadLogLength + (long)readLog.Bytes.Length + replica.State.GetEncodedLength() > _maxStateLength)
        {
            return new ReplicaAck(readLog.RequestId, readLog.Cid, ReplicaAckStatus.NeedsState);
        }

        replica.ReadLog.Add(readLog.Bytes);
        replica.ReadLogLength += readLog.Bytes.Length;
        replica.End = readLog.End;
        return new ReplicaAck(readLog.RequestId, readLog.Cid, ReplicaAckStatus.Held);
    }

    private Replica ReplicaFor(ConnectionId cid, TOrigin origin)
    {
        if (!_replicas.TryGetValue(cid, out var replica) || !EqualityComparer<TOrigin>.Default.Equals(replica.Origin, origin))
        {
            // A connection that moved (or a Cid reused) now replicates from another node: what the old one sent is stale.
            replica = new Replica(origin);
            _replicas[cid] = replica;
        }

        return replica;
    }

    private sealed class Assembly(uint generation, byte[] bytes)
    {
        public uint Generation { get; } = generation;

        public byte[] Bytes { get; } = bytes;

        public uint Filled { get; set; }
    }

    private sealed class Replica(TOrigin origin)
    {
        public TOrigin Origin { get; } = origin;

        public Assembly? Assembling { get; set; }

        /// <summary>The last whole state, with the read log as it came with it.</summary>
        public StateReply? State { get; set; }

        public uint Generation { get; set; }

        /// <summary>The client's bytes replicated after <see cref="State"/>, in order.</summary>
        public List<ReadOnlyMemory<byte>> ReadLog { get; } = [];

        public long ReadLogLength { get; set; }

        /// <summary>The end of the client's bytes held.</summary>
        public SeqNumber End { get; set; }

        /// <summary>The state with the read log appended since, as a state reply named <paramref name="cid"/>.</summary>
        public StateReply Compose(ulong requestId, ConnectionId cid, ReadOnlyMemory<byte> credential)
        {
            var state = State!;
            var readBuffer = new byte[state.ReadBufferState.Length + ReadLogLength];
            state.ReadBufferState.Span.CopyTo(readBuffer);
            var at = state.ReadBufferState.Length;
            foreach (var bytes in ReadLog)
            {
                bytes.Span.CopyTo(readBuffer.AsSpan(at));
                at += bytes.Length;
            }

            return new StateReply(
                requestId,
                cid,
                End,
                state.SndBytesDiscard,
                state.SndMaxSeen,
                state.TSnapshot,
                state.SoSnapshot,
                state.AppState,
                state.WriteBufferState,
                readBuffer,
                state.TStateTransitions,
                credential);
        }
    }
}

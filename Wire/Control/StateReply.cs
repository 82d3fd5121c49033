using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Mtcp.Wire.Control;

/// <summary>
/// The state reply of thesis 4.2.3: S1 packs the migrating connection's state for S2. The header carries
/// fields (a)-(j) exactly as the thesis lists them (step 5); the three state components and the
/// state-transition log follow. The lengths (c), (d), (e) are those of the byte payloads, so they cannot
/// disagree with them in a constructed message; the decoder checks them against the frame. Beyond the
/// thesis, the reply carries the connection's migration credential, opaque to this codec.
/// </summary>
public sealed record StateReply : ControlMessage
{
    public const string SerializerManifest = "SRP";

    /// <summary>Body bytes before the variable part, after the connection id.</summary>
    internal const int FixedFieldsLength = 24 + 12 + 6;

    /// <summary>
    /// Longest <see cref="MigrationCredential"/>: room for the 17-byte credential with the connection's first
    /// Cid beside it (38 bytes for IPv6), so the next holder can recompute the secret; a decoder rejects a
    /// longer one before reading it.
    /// </summary>
    public const int MaxMigrationCredentialLength = 64;

    public StateReply(
        ulong requestId,
        ConnectionId newEndpointCid,
        SeqNumber lastAckSent,
        uint sndBytesDiscard,
        SeqNumber sndMaxSeen,
        TcpSnapshot tSnapshot,
        SocketSnapshot soSnapshot,
        ReadOnlyMemory<byte> appState,
        ReadOnlyMemory<byte> writeBufferState,
        ReadOnlyMemory<byte> readBufferState,
        ImmutableArray<TcpStateTransition> tStateTransitions,
        ReadOnlyMemory<byte> migrationCredential = default)
        : base(requestId)
    {
        if (migrationCredential.Length > MaxMigrationCredentialLength)
        {
            throw new ArgumentException(
                $"migration credential is {migrationCredential.Length} bytes, at most {MaxMigrationCredentialLength}", nameof(migrationCredential));
        }

        NewEndpointCid = ControlWriter.RequireEncodable(newEndpointCid, nameof(newEndpointCid));
        tStateTransitions = tStateTransitions.IsDefault ? [] : tStateTransitions;
        var error = Validate(sndBytesDiscard, writeBufferState.Length, tSnapshot.TState, tStateTransitions.AsSpan());
        if (error != ControlWireError.None)
        {
            throw new ArgumentException($"inconsistent state reply: {error}");
        }

        var bodyLength = (long)ControlWriter.ConnectionIdLength(newEndpointCid) + FixedFieldsLength
            + appState.Length + writeBufferState.Length + readBufferState.Length + (2L * tStateTransitions.Length)
            + migrationCredential.Length;
        if (bodyLength > ControlFrameHeader.MaxBodyLength || tStateTransitions.Length > ushort.MaxValue)
        {
            throw new ArgumentException($"state reply of {bodyLength} bytes and {tStateTransitions.Length} transitions does not fit one frame");
        }

        LastAckSent = lastAckSent;
        SndBytesDiscard = sndBytesDiscard;
        SndMaxSeen = sndMaxSeen;
        TSnapshot = tSnapshot;
        SoSnapshot = soSnapshot;
        AppState = appState;
        WriteBufferState = writeBufferState;
        ReadBufferState = readBufferState;
        TStateTransitions = tStateTransitions;
        MigrationCredential = migrationCredential;
    }

    /// <summary>(b) The key of the requesting endpoint: S2's connection id for the migrating connection.</summary>
    public ConnectionId NewEndpointCid { get; }

    /// <summary>(c) <c>app_state_length</c>.</summary>
    public int AppStateLength => AppState.Length;

    /// <summary>(d) <c>snd_state_length</c> = <c>snd_seq_snapshot - snd_max_seen</c> when positive, else 0.</summary>
    public int SndStateLength => WriteBufferState.Length;

    /// <summary>(e) <c>rcv_state_length</c> = <c>last_ack_sent - rcv_seq_snapshot</c> when positive, else 0.</summary>
    public int RcvStateLength => ReadBufferState.Length;

    /// <summary>
    /// (f) The greater of <c>rcv_seq_snapshot</c> and S1's <c>last_ack_sent</c>: the implicit ACK of the
    /// client's data that S2 stores as <c>orig_server_rcv_nxt</c>.
    /// </summary>
    public SeqNumber LastAckSent { get; }

    /// <summary>(g) <c>snd_bytes_discard</c>: bytes the resumed application rewrites that the client already has; S2 keeps it in <c>so_snd_bytes_dups</c>.</summary>
    public uint SndBytesDiscard { get; }

    /// <summary>(h) <c>snd_max_seen</c> = max(client's <c>rcv_nxt</c>, S1's <c>snd_una</c>); S2 stores it as <c>orig_server_max_snd_seq</c>.</summary>
    public SeqNumber SndMaxSeen { get; }

    /// <summary>(i) <c>t_snapshot</c>.</summary>
    public TcpSnapshot TSnapshot { get; }

    /// <summary>(j) <c>so_snapshot</c>.</summary>
    public SocketSnapshot SoSnapshot { get; }

    /// <summary><c>app_state</c>: the application state snapshot last exported at S1.</summary>
    public ReadOnlyMemory<byte> AppState { get; }

    /// <summary>Write-buffer state: the unacknowledged bytes [<c>snd_max_seen</c>, <c>snd_seq_snapshot</c>) (thesis figs 3.9, 4.9).</summary>
    public ReadOnlyMemory<byte> WriteBufferState { get; }

    /// <summary>
    /// Read-buffer state: the bytes [<c>rcv_seq_snapshot</c>, <c>last_ack_sent</c>), i.e. the read log since
    /// the snapshot followed by the acknowledged unread bytes (thesis figs 3.8, 4.10).
    /// </summary>
    public ReadOnlyMemory<byte> ReadBufferState { get; }

    /// <summary><c>t_state_transitions</c>: the TCP state transitions since the snapshot, oldest first, to be replayed at S2 (thesis 4.2.2).</summary>
    public ImmutableArray<TcpStateTransition> TStateTransitions { get; }

    /// <summary>
    /// What S2 needs to authenticate the connection's later migrations (key generation, ISNs, epoch, next
    /// attempt: public material, see the threat model), as bytes this codec does not interpret; empty when
    /// S1 does not authenticate migrations. At most <see cref="MaxMigrationCredentialLength"/> bytes.
    /// </summary>
    public ReadOnlyMemory<byte> MigrationCredential { get; }

    /// <summary><c>snd_seq_snapshot</c>, recovered from (d), (g), (h) by the rule of thesis 4.2.3 step 4(d).</summary>
    public SeqNumber SndSeqSnapshot => SndMaxSeen + SndStateLength - (int)SndBytesDiscard;

    /// <summary><c>rcv_seq_snapshot</c>, recovered from (e), (f) by the rule of thesis 4.2.3 step 4 (read buffer, (a)).</summary>
    public SeqNumber RcvSeqSnapshot => LastAckSent - RcvStateLength;

    /// <summary>The same state answering request <paramref name="requestId"/> of <paramref name="newEndpointCid"/>, carrying <paramref name="migrationCredential"/>.</summary>
    public StateReply ForRequest(ulong requestId, ConnectionId newEndpointCid, ReadOnlyMemory<byte> migrationCredential) =>
        new(requestId, newEndpointCid, LastAckSent, SndBytesDiscard, SndMaxSeen, TSnapshot, SoSnapshot, AppState, WriteBufferState, ReadBufferState, TStateTransitions, migrationCredential);

    public override ControlMessageType MessageType => ControlMessageType.StateReply;

    public override string Manifest => SerializerManifest;

    public bool Equals(StateReply? other) =>
        base.Equals(other)
        && NewEndpointCid == other.NewEndpointCid
        && LastAckSent == other.LastAckSent
        && SndBytesDiscard == other.SndBytesDiscard
        && SndMaxSeen == other.SndMaxSeen
        && TSnapshot == other.TSnapshot
        && SoSnapshot == other.SoSnapshot
        && AppState.Span.SequenceEqual(other.AppState.Span)
        && WriteBufferState.Span.SequenceEqual(other.WriteBufferState.Span)
        && ReadBufferState.Span.SequenceEqual(other.ReadBufferState.Span)
        && TStateTransitions.AsSpan().SequenceEqual(other.TStateTransitions.AsSpan())
        && MigrationCredential.Span.SequenceEqual(other.MigrationCredential.Span);

    public override int GetHashCode() =>
        HashCode.Combine(RequestId, NewEndpointCid, LastAckSent, SndMaxSeen, TSnapshot, AppState.Length, WriteBufferState.Length, ReadBufferState.Length);

    private protected override int GetBodyLength() =>
        ControlWriter.ConnectionIdLength(NewEndpointCid) + FixedFieldsLength
        + AppState.Length + WriteBufferState.Length + ReadBufferState.Length + (2 * TStateTransitions.Length)
        + MigrationCredential.Length;

    /// <summary>
    /// <code>
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------------------------------------------------------+
    /// |         (b) NewEndpointCid (13 or 37 bytes) ...               |
    /// +---------------------------------------------------------------+
    /// |                    (c) AppStateLength                         |
    /// +---------------------------------------------------------------+
    /// |                    (d) SndStateLength                         |
    /// +---------------------------------------------------------------+
    /// |                    (e) RcvStateLength                         |
    /// +---------------------------------------------------------------+
    /// |                    (f) LastAckSent                            |
    /// +---------------------------------------------------------------+
    /// |                    (g) SndBytesDiscard                        |
    /// +---------------------------------------------------------------+
    /// |                    (h) SndMaxSeen                             |
    /// +---------------+---------------+---------------+---------------+
    /// | (i) TState    |   SndScale    |   RcvScale    | CredentialLen |
    /// +---------------+---------------+---------------+---------------+
    /// |                        (i) TFlags                             |
    /// +-------------------------------+-------------------------------+
    /// |        (i) TMaxseg            |     (i) TransitionCount       |
    /// +-------------------------------+-------------------------------+
    /// |        (j) SoState            |        (j) SoOptions          |
    /// +-------------------------------+-------------------------------+
    /// |        (j) SoLinger           |
    /// +-------------------------------+-------------------------------+
    /// |                 AppState (AppStateLength bytes) ...           |
    /// +---------------------------------------------------------------+
    /// |         WriteBufferState (SndStateLength bytes) ...           |
    /// +---------------------------------------------------------------+
    /// |          ReadBufferState (RcvStateLength bytes) ...           |
    /// +---------------+---------------+-------------------------------+
    /// | From (state)  |  To (state)   |  ... TransitionCount times    |
    /// +---------------+---------------+-------------------------------+
    /// |     MigrationCredential (CredentialLen &lt;= 64 bytes) ...      |
    /// +---------------------------------------------------------------+
    /// </code>
    /// (a), the tag naming the request, is the frame header's type and RequestId. CredentialLen takes the
    /// byte that padded the (i) row, so the offsets of every other field are those of the layout without it.
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(NewEndpointCid);
        writer.WriteUInt32((uint)AppState.Length);
        writer.WriteUInt32((uint)WriteBufferState.Length);
        writer.WriteUInt32((uint)ReadBufferState.Length);
        writer.WriteUInt32(LastAckSent.Value);
        writer.WriteUInt32(SndBytesDiscard);
        writer.WriteUInt32(SndMaxSeen.Value);
        writer.WriteByte((byte)TSnapshot.TState);
        writer.WriteByte(TSnapshot.SndScale);
        writer.WriteByte(TSnapshot.RcvScale);
        writer.WriteByte((byte)MigrationCredential.Length);
        writer.WriteUInt32((uint)TSnapshot.TFlags);
        writer.WriteUInt16(TSnapshot.TMaxseg);
        writer.WriteUInt16((ushort)TStateTransitions.Length);
        writer.WriteUInt16((ushort)SoSnapshot.SoState);
        writer.WriteUInt16((ushort)SoSnapshot.SoOptions);
        writer.WriteUInt16(SoSnapshot.SoLinger);
        writer.WriteBytes(AppState.Span);
        writer.WriteBytes(WriteBufferState.Span);
        writer.WriteBytes(ReadBufferState.Span);
        foreach (var transition in TStateTransitions)
        {
            writer.WriteByte((byte)transition.From);
            writer.WriteByte((byte)transition.To);
        }

        writer.WriteBytes(MigrationCredential.Span);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out StateReply? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.StateReply, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var newEndpointCid, out error))
        {
            return false;
        }

        if (reader.Remaining < FixedFieldsLength)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        reader.TryReadUInt32(out var appStateLength);
        reader.TryReadUInt32(out var sndStateLength);
        reader.TryReadUInt32(out var rcvStateLength);
        reader.TryReadSeqNumber(out var lastAckSent);
        reader.TryReadUInt32(out var sndBytesDiscard);
        reader.TryReadSeqNumber(out var sndMaxSeen);
        reader.TryReadByte(out var tState);
        reader.TryReadByte(out var sndScale);
        reader.TryReadByte(out var rcvScale);
        reader.TryReadByte(out var credentialLength);
        reader.TryReadUInt32(out var tFlags);
        reader.TryReadUInt16(out var tMaxseg);
        reader.TryReadUInt16(out var transitionCount);
        reader.TryReadUInt16(out var soState);
        reader.TryReadUInt16(out var soOptions);
        reader.TryReadUInt16(out var soLinger);

        if (!TryValidateSnapshots(tState, sndScale, rcvScale, tFlags, soState, soOptions, out error))
        {
            return false;
        }

        if (credentialLength > MaxMigrationCredentialLength)
        {
            error = ControlWireError.MigrationCredentialTooLong;
            return false;
        }

        // Each length is checked against what is left before it is used, in 64-bit arithmetic, so no
        // combination of 32-bit lengths can wrap into a plausible total.
        var payloadLength = (ulong)appStateLength + sndStateLength + rcvStateLength + (2UL * transitionCount) + credentialLength;
        if (payloadLength > (ulong)reader.Remaining)
        {
            error = ControlWireError.LengthExceedsPayload;
            return false;
        }

        if (payloadLength < (ulong)reader.Remaining)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        reader.TryReadBytes(appStateLength + sndStateLength + rcvStateLength, out var stateBytes);
        reader.TryReadBytes(2u * transitionCount, out var transitionBytes);
        reader.TryReadBytes(credentialLength, out var credentialBytes);

        var transitions = new TcpStateTransition[transitionCount];
        for (var i = 0; i < transitionBytes.Length; i += 2)
        {
            var from = (TcpStateCode)transitionBytes[i];
            var to = (TcpStateCode)transitionBytes[i + 1];
            if (!TcpSnapshot.IsDefined(from) || !TcpSnapshot.IsDefined(to))
            {
                error = ControlWireError.BadTcpState;
                return false;
            }

            transitions[i / 2] = new TcpStateTransition(from, to);
        }

        error = Validate(sndBytesDiscard, (int)sndStateLength, (TcpStateCode)tState, transitions);
        if (error != ControlWireError.None)
        {
            return false;
        }

        // One copy for all three components: the decoded message owns its bytes and the frame buffer can be reused.
        var state = stateBytes.ToArray().AsMemory();
        message = new StateReply(
            header.RequestId,
            newEndpointCid,
            lastAckSent,
            sndBytesDiscard,
            sndMaxSeen,
            new TcpSnapshot((TcpStateCode)tState, (TcpSnapshotFlags)tFlags, tMaxseg, sndScale, rcvScale),
            new SocketSnapshot((SocketStateFlags)soState, (SocketOptionFlags)soOptions, soLinger),
            state[..(int)appStateLength],
            state.Slice((int)appStateLength, (int)sndStateLength),
            state[(int)(appStateLength + sndStateLength)..],
            ImmutableCollectionsMarshal.AsImmutableArray(transitions),
            credentialBytes.IsEmpty ? ReadOnlyMemory<byte>.Empty : credentialBytes.ToArray());
        return true;
    }

    private static bool TryValidateSnapshots(
        byte tState, byte sndScale, byte rcvScale, uint tFlags, ushort soState, ushort soOptions, out ControlWireError error)
    {
        error = ControlWireError.None;
        if (!TcpSnapshot.IsDefined((TcpStateCode)tState))
        {
            error = ControlWireError.BadTcpState;
        }
        else if ((tFlags & ~(uint)TcpSnapshot.AllFlags) != 0)
        {
            error = ControlWireError.UnknownTcpFlags;
        }
        else if (!TcpSnapshot.AreScalesValid((TcpSnapshotFlags)tFlags, sndScale, rcvScale))
        {
            error = ControlWireError.BadWindowScale;
        }
        else if ((soState & ~(uint)SocketSnapshot.AllStateFlags) != 0 || (soOptions & ~(uint)SocketSnapshot.AllOptionFlags) != 0)
        {
            error = ControlWireError.UnknownSocketFlags;
        }

        return error == ControlWireError.None;
    }

    /// <summary>The cross-field rules shared by the constructor and the decoder.</summary>
    private static ControlWireError Validate(uint sndBytesDiscard, int sndStateLength, TcpStateCode tState, ReadOnlySpan<TcpStateTransition> transitions)
    {
        if (sndBytesDiscard > int.MaxValue)
        {
            return ControlWireError.DiscardTooLarge;
        }

        // Thesis 4.2.3 step 4(d): either S2 gets write-buffer bytes to send, or it discards duplicates; never both.
        if (sndBytesDiscard != 0 && sndStateLength != 0)
        {
            return ControlWireError.SndStateConflict;
        }

        if (!TcpSnapshot.IsDefined(tState))
        {
            return ControlWireError.BadTcpState;
        }

        // The log starts at the snapshot's t_state and each transition starts where the previous one ended.
        var current = tState;
        foreach (var transition in transitions)
        {
            if (!TcpSnapshot.IsDefined(transition.From) || !TcpSnapshot.IsDefined(transition.To))
            {
                return ControlWireError.BadTcpState;
            }

            if (transition.From != current || transition.To == transition.From)
            {
                return ControlWireError.BadTransitionChain;
            }

            current = transition.To;
        }

        return ControlWireError.None;
    }
}

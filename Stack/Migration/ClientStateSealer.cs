using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>What <see cref="ClientStateSealer.Update"/> did.</summary>
public enum ClientStateOutcome
{
    /// <summary>Nothing changed since the last state sealed: nothing to send.</summary>
    Unchanged,

    /// <summary>A new state is sealed: send it to the client now, before any ACK of the bytes it covers.</summary>
    Sealed,

    /// <summary>The state would exceed the configured maximum: not sealed; the client keeps the one it holds.</summary>
    TooLarge,

    /// <summary>The connection is in no state to migrate (before ESTABLISHED, after it closed or migrated away).</summary>
    NotMigratable,
}

/// <summary>
/// The serving node's side of client-stored state (<c>mtcp.migration.replication = client</c>; thesis 3.2's third
/// mode, docs/failover.md) for one connection, sans-IO: whenever the application's snapshot, the TCP state, the
/// credential or the client's bytes received change, it seals what a buddy would hold (the state reply of
/// <see cref="TcpConnection.PackageReplica"/>: snapshot, TCP state, transition log, credential, and the read log to
/// RCV.NXT) for the client to keep. The driver sends each blob before the segments of the same input, so the blob
/// covering a client byte leaves ahead of the ACK of that byte.
/// </summary>
public sealed class ClientStateSealer
{
    private readonly ConnectionId _cid;
    private readonly int _maxLength;
    private readonly Action<Span<byte>> _nonceSource;

    private ConnectionSnapshot? _sealedSnapshot;
    private TcpState _sealedTcpState;
    private byte[] _sealedCredential = [];
    private SeqNumber _sealedReceivedEnd;
    private bool _any;
    private ulong _sequence;

    /// <param name="cid">the connection, as this server names it (the blob is bound to it).</param>
    /// <param name="maxLength">largest blob sent (<c>mtcp.migration.client-state.max-size</c>).</param>
    /// <param name="nonceSource">fills a fresh AEAD nonce; never the same twice under one key (the driver's random source).</param>
    public ClientStateSealer(ConnectionId cid, int maxLength, Action<Span<byte>> nonceSource)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, ClientStateBlob.Overhead);
        ArgumentNullException.ThrowIfNull(nonceSource);
        _cid = cid;
        _maxLength = maxLength;
        _nonceSource = nonceSource;
    }

    /// <summary>States sealed so far; the last one's sequence number.</summary>
    public ulong Sealed => _sequence;

    /// <summary>
    /// A lower bound of the packaged state's length: the application's snapshot, the output written before it and not
    /// yet acknowledged (the write-buffer state), and the client's bytes since it (the read log).
    /// </summary>
    private static long LeastStateLength(TcpConnection connection)
    {
        if (connection.LastSnapshot is not { } snapshot)
        {
            return 0;
        }

        return snapshot.AppState.Length
            + Math.Max(0, snapshot.SndSeqSnapshot - connection.SendUnacknowledged)
            + Math.Max(0, connection.ReceivedDataEnd - snapshot.RcvSeqSnapshot);
    }

    /// <summary>
    /// The header of the segment carrying a blob to the client of <paramref name="cid"/>: CLIENT_STATE, outside the
    /// sequence space, numbered at SND.MAX and acknowledging RCV.NXT, which the client checks (RFC 5961's test for a RST).
    /// </summary>
    public static TcpSegmentRepr Segment(ConnectionId cid, TcpConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return new TcpSegmentRepr
        {
            SourcePort = cid.ServerPort,
            DestinationPort = cid.ClientPort,
            SequenceNumber = connection.SendMax,
            AcknowledgmentNumber = connection.ReceiveNext,
            Flags = TcpFlags.Ack,
            Options = new TcpOptions { ClientState = true },
        };
    }

    /// <summary>
    /// Seals the state of <paramref name="connection"/> if it changed since the last call; <paramref name="blob"/> is
    /// the bytes to send on <see cref="ClientStateOutcome.Sealed"/>, and the length it would have had on
    /// <see cref="ClientStateOutcome.TooLarge"/> is in <paramref name="length"/>.
    /// </summary>
    public ClientStateOutcome Update(TcpConnection connection, ReadOnlySpan<byte> credential, IMigrationAuthenticator authenticator, out byte[]? blob, out int length)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(authenticator);
        blob = null;
        length = 0;
        var changed = !_any
            || !ReferenceEquals(connection.LastSnapshot, _sealedSnapshot)
            || connection.State != _sealedTcpState
            || connection.ReceivedDataEnd != _sealedReceivedEnd
            || !credential.SequenceEqual(_sealedCredential);
        if (!changed)
        {
            return ClientStateOutcome.Unchanged;
        }

        // What was looked at is remembered even when it does not fit: the next attempt waits for the next change.
        var sealedBefore = _any;
        _any = true;
        _sealedSnapshot = connection.LastSnapshot;
        _sealedTcpState = connection.State;
        _sealedReceivedEnd = connection.ReceivedDataEnd;
        _sealedCredential = credential.ToArray();

        // The write-buffer state and the read log alone already exceed the bound: not worth packaging (a download's
        // output in flight before each snapshot is the common case, and packaging copies it).
        length = (int)Math.Min(int.MaxValue, ClientStateBlob.Overhead + LeastStateLength(connection));
        if (length > _maxLength)
        {
            return ClientStateOutcome.TooLarge;
        }

        var state = connection.PackageReplica(_cid, credential.ToArray());
        if (state is null)
        {
            _any = sealedBefore;
            return ClientStateOutcome.NotMigratable;
        }

        length = ClientStateBlob.Overhead + state.GetEncodedLength();
        if (length > _maxLength)
        {
            return ClientStateOutcome.TooLarge;
        }

        Span<byte> nonce = stackalloc byte[ClientStateBlob.NonceLength];
        _nonceSource(nonce);
        blob = ClientStateSealing.Seal(authenticator, _cid, ++_sequence, state.LastAckSent, state, nonce);
        return ClientStateOutcome.Sealed;
    }
}

/// <summary>
/// A node's side of client-stored state, sans-IO and thread-safe (one per node, used by every listener): answers the
/// state request of a special SYN that presents a sealed state, exactly as the dead origin (or a buddy's replica)
/// would have (thesis 4.2.3 at S1). It remembers, for the connections it answered recently, the newest state presented
/// and its credential with the attempts consumed, so that an older state replayed after a newer one is refused, and
/// the same state presented again needs a fresh MIGRATED_CONN attempt.
/// </summary>
public sealed class ClientStateOpener
{
    /// <summary>Connections remembered; the oldest is forgotten beyond this.</summary>
    public const int RememberedConnections = 4096;

    private readonly int _maxLength;
    private readonly Lock _lock = new();
    private readonly Dictionary<ConnectionId, (ulong Sequence, ConnectionCredential Credential)> _newest = [];
    private readonly Queue<ConnectionId> _order = new();

    /// <param name="maxLength">largest blob opened (<c>mtcp.migration.client-state.max-size</c>).</param>
    public ClientStateOpener(int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, ClientStateBlob.Overhead);
        _maxLength = maxLength;
    }

    /// <summary>
    /// The state reply for <paramref name="request"/> from <paramref name="blob"/>, named as the request asks and
    /// carrying the credential with this attempt consumed; null with <paramref name="refusal"/> when the blob does not
    /// open for the request's Cid, is older than one presented here before, or the special SYN's authenticator does not
    /// verify under its credential. A refusal changes nothing.
    /// </summary>
    public StateReply? Answer(StateRequest request, ReadOnlySpan<byte> blob, IMigrationAuthenticator authenticator, out ClientStateRefusal refusal)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(authenticator);
        if (!ClientStateSealing.TryOpen(authenticator, blob, request.MigratingCid, _maxLength, out var header, out var state, out refusal))
        {
            return null;
        }

        if (!ConnectionCredential.TryRead(state.MigrationCredential.Span, out var sealedCredential))
        {
            refusal = ClientStateRefusal.NotAState;
            return null;
        }

        lock (_lock)
        {
            var held = sealedCredential;
            if (_newest.TryGetValue(request.MigratingCid, out var newest))
            {
                if (header.Sequence < newest.Sequence)
                {
                    refusal = ClientStateRefusal.Stale;
                    return null;
                }

                if (header.Sequence == newest.Sequence)
                {
                    held = newest.Credential;
                }
            }

            if (authenticator.VerifyStateRequest(request, held.Credential, held.SecretCid, out var updated) != MigratedConnectionCheck.Accepted)
            {
                refusal = ClientStateRefusal.AuthenticatorFailed;
                return null;
            }

            var consumed = held with { Credential = updated };
            Remember(request.MigratingCid, header.Sequence, consumed);
            return state.ForRequest(request.RequestId, request.NewEndpointCid, consumed.ToBytes());
        }
    }

    private void Remember(ConnectionId cid, ulong sequence, ConnectionCredential credential)
    {
        if (!_newest.ContainsKey(cid))
        {
            _order.Enqueue(cid);
            if (_order.Count > RememberedConnections)
            {
                _newest.Remove(_order.Dequeue());
            }
        }

        _newest[cid] = (sequence, credential);
    }
}

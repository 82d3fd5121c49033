using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// One server endpoint's part in the per-connection authentication of migrations (docs/threat-model.md), sans-IO:
/// the <see cref="ConnectionCredential"/> issued at the origin or adopted from a state reply, the secret the origin's
/// SYN+ACK gives the client, and the alternate servers owed to the client when the secret left no room for them on
/// the SYN+ACK. <see cref="MtcpServerHost"/> keeps one per endpoint, the actor runtime one per endpoint actor; the
/// rules are <see cref="ServerMigration"/>'s. The cluster keys come with each call: key rotation replaces them while
/// connections live.
/// </summary>
public sealed class ServerEndpointAuthentication
{
    /// <summary>The connection's authentication state while it is held here; null until issued or adopted.</summary>
    private ConnectionCredential? _credential;

    /// <summary>
    /// <see cref="CredentialBytes"/> encoded once per credential: a buddy is sent it with every update, and encoding it
    /// per segment was a tenth of a node's allocation in an echo.
    /// </summary>
    private (ConnectionCredential Credential, byte[] Bytes)? _encodedCredential;

    /// <summary>At the origin: the secret its SYN+ACK (and any retransmission of it) gives the client.</summary>
    private MigrationSecret? _issuedSecret;

    /// <summary>The SYN+ACK had no room for every alternate server beside the secret: TCP_MIGRATE follows on later segments.</summary>
    private bool _alternatesOwed;

    /// <summary>Sequence number of the first data segment that carried the owed TCP_MIGRATE; every later one carries it too.</summary>
    private SeqNumber? _alternatesCarriedFrom;

    /// <summary>True while the segments after the handshake still carry the alternates the SYN+ACK had no room for.</summary>
    public bool AlternatesOwed => _alternatesOwed;

    /// <summary>
    /// The connection's first Cid (the one its credential was issued under at the origin), which stays its name across
    /// hops while the current Cid changes with every client port; null until issued or adopted.
    /// </summary>
    public ConnectionId? FirstCid => _credential?.SecretCid;

    /// <summary>
    /// The credential's epoch (migrations the connection completed before it came here): which incarnation of the
    /// connection this endpoint is; null until issued or adopted.
    /// </summary>
    public uint? Epoch => _credential?.Credential.Epoch;

    /// <summary>The connection's credential as a state reply carries it (what a buddy replicates); empty until issued or adopted.</summary>
    public ReadOnlyMemory<byte> CredentialBytes
    {
        get
        {
            if (_credential is not { } held)
            {
                return ReadOnlyMemory<byte>.Empty;
            }

            if (_encodedCredential is not { } encoded || encoded.Credential != held)
            {
                encoded = (held, held.ToBytes());
                _encodedCredential = encoded;
            }

            return encoded.Bytes;
        }
    }

    /// <summary>At the origin, when the connection's first SYN is accepted: issues the credential and the secret for the SYN+ACK.</summary>
    public void Issue(IMigrationAuthenticator authenticator, ConnectionId cid, SeqNumber clientIsn, SeqNumber serverIsn)
    {
        _credential = ServerMigration.IssueCredential(authenticator, cid, clientIsn, serverIsn, out var secret);
        _issuedSecret = secret;
    }

    /// <summary>At the destination, on the state reply: false when it carries no credential this server can use (refuse the special SYN).</summary>
    public bool TryAdopt(IMigrationAuthenticator authenticator, StateReply reply)
    {
        if (!ServerMigration.TryAdoptCredential(reply, authenticator, out var credential))
        {
            return false;
        }

        _credential = credential;
        return true;
    }

    /// <summary>
    /// At the server holding the connection: the answer to a state request for <paramref name="endpoint"/> (null:
    /// none under its Cid, CB_NOT_FOUND), the MIGRATED_CONN authenticator checked under the connection's secret, the
    /// accepted attempt consumed before the state is packaged. <paramref name="check"/> is the verdict behind an
    /// AUTH_FAILED answer (forged or replayed), for the caller to count.
    /// </summary>
    public ControlMessage Answer(IMigrationAuthenticator authenticator, TcpConnection? endpoint, ServerEndpoint service, StateRequest request, out MigratedConnectionCheck check) =>
        ServerMigration.AnswerStateRequest(endpoint, service, request, authenticator, ref _credential, out check);

    /// <summary>
    /// A MIGRATE_TRIGGER (thesis 3.2.1) from <paramref name="sender"/> under the connection's secret for its current
    /// epoch, endorsing <paramref name="destination"/> when one is named; false when no credential is held here.
    /// </summary>
    public bool TryCreateTrigger(IMigrationAuthenticator authenticator, ConnectionId cid, ServerEndpoint sender, ServerEndpoint? destination, out TcpSegmentRepr segment)
    {
        segment = default;
        if (!TryGetSecret(authenticator, out var held, out var secret))
        {
            return false;
        }

        var trigger = new ConnectionAuthenticator(secret).CreateTrigger(cid, sender, held.Credential.Epoch, destination);
        segment = ServerMigration.TriggerSegment(cid, sender, trigger);
        return true;
    }

    /// <summary>
    /// The connection's trigger key for its current epoch: what an authorised third party needs to trigger its
    /// migration until the next one, and nothing more. False when no credential is held here.
    /// </summary>
    public bool TryDeriveTriggerKey(IMigrationAuthenticator authenticator, ConnectionId cid, out TriggerKey key)
    {
        key = default;
        if (!TryGetSecret(authenticator, out var held, out var secret))
        {
            return false;
        }

        key = new ConnectionAuthenticator(secret).DeriveTriggerKey(cid, held.Credential.Epoch);
        return true;
    }

    /// <summary>
    /// The MTCP options of an outgoing segment carrying <paramref name="payloadLength"/> bytes: on the SYN+ACK, the
    /// secret (origin), orig-connection-info (a migrated endpoint) and the alternates that fit; after it, the
    /// alternates owed. The debt's end is counted from the first data segment that carried them: data is
    /// retransmitted until acknowledged, so an acknowledgment beyond it proves the client got TCP_MIGRATE, whereas a
    /// pure ACK may be lost and is never sent again. A RST ends the connection and carries nothing.
    /// </summary>
    public TcpSegmentRepr Decorate(TcpSegmentRepr header, int payloadLength, MtcpOrigConnectionInfo? origInfo, IReadOnlyList<ServerEndpoint> alternates)
    {
        if (header.Has(TcpFlags.Syn | TcpFlags.Ack))
        {
            var options = ServerMigration.SynAckOptions(header.Options, origInfo, alternates, _issuedSecret, out var dropped);
            _alternatesOwed = dropped > 0;
            return header with { Options = options };
        }

        if (!_alternatesOwed || header.Has(TcpFlags.Rst))
        {
            return header;
        }

        if (payloadLength > 0)
        {
            _alternatesCarriedFrom ??= header.SequenceNumber;
        }

        return header with { Options = ServerMigration.AlternatesAfterHandshake(header.Options, alternates, out _) };
    }

    /// <summary>An incoming segment: an acknowledgment beyond the first data segment that carried the owed alternates ends the debt.</summary>
    public void OnInbound(in TcpSegmentRepr segment)
    {
        if (_alternatesCarriedFrom is { } carried && segment.Has(TcpFlags.Ack) && segment.AcknowledgmentNumber > carried)
        {
            _alternatesOwed = false;
            _alternatesCarriedFrom = null;
        }
    }

    private bool TryGetSecret(IMigrationAuthenticator authenticator, out ConnectionCredential held, out MigrationSecret secret)
    {
        held = default;
        secret = default;
        return _credential is { } credential && (held = credential).TryDeriveSecret(authenticator, out secret);
    }
}

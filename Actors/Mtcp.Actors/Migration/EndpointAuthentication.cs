using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors;

/// <summary>
/// A server endpoint's part in the per-connection authentication of migrations (docs/threat-model.md), as the
/// endpoint actor holds it: the <see cref="ConnectionCredential"/> issued at the origin or adopted from a state reply,
/// the secret the origin's SYN+ACK gives the client, and the alternate servers owed to the client when the secret
/// left no room for them on the SYN+ACK. The rules are <see cref="ServerMigration"/>'s, shared with the sans-IO host.
/// </summary>
internal sealed class EndpointAuthentication(IMigrationAuthenticator authenticator)
{
    /// <summary>The connection's authentication state while it is held here; null until issued or adopted.</summary>
    private ConnectionCredential? _credential;

    /// <summary>At the origin: the secret its SYN+ACK (and any retransmission of it) gives the client.</summary>
    private MigrationSecret? _issuedSecret;

    /// <summary>The SYN+ACK had no room for every alternate server beside the secret: TCP_MIGRATE follows on later segments.</summary>
    private bool _alternatesOwed;

    /// <summary>Sequence number of the first segment that carried the owed TCP_MIGRATE; every later one carries it too.</summary>
    private SeqNumber? _alternatesCarriedFrom;

    /// <summary>At the origin, when the connection's first SYN is accepted: issues the credential and the secret for the SYN+ACK.</summary>
    public void Issue(ConnectionId cid, SeqNumber clientIsn, SeqNumber serverIsn)
    {
        _credential = ServerMigration.IssueCredential(authenticator, cid, clientIsn, serverIsn, out var secret);
        _issuedSecret = secret;
    }

    /// <summary>At the destination, on the state reply: false when it carries no credential this server can use (refuse the special SYN).</summary>
    public bool TryAdopt(StateReply reply)
    {
        if (!ServerMigration.TryAdoptCredential(reply, authenticator, out var credential))
        {
            return false;
        }

        _credential = credential;
        return true;
    }

    /// <summary>
    /// At the server holding the connection: the answer to a state request, the MIGRATED_CONN authenticator checked
    /// under the connection's secret, the accepted attempt consumed before the state is packaged. A forged or
    /// replayed one is AUTH_FAILED and counted in <c>mtcp.migration.auth_failed</c>, tagged with the check's verdict.
    /// </summary>
    public ControlMessage Answer(TcpConnection endpoint, ServerEndpoint service, StateRequest request)
    {
        var answer = ServerMigration.AnswerStateRequest(endpoint, service, request, authenticator, ref _credential, out var check);
        if (answer is StateReject { Reason: StateRejectReason.AuthFailed })
        {
            MigrationMetrics.AuthFailed.Add(1, new KeyValuePair<string, object?>("check", check.ToString()));
        }

        return answer;
    }

    /// <summary>A MIGRATE_TRIGGER (thesis 3.2.1) under the connection's secret for its current epoch; false when it holds none.</summary>
    public bool TryCreateTrigger(ConnectionId cid, ServerEndpoint sender, ServerEndpoint? destination, out TcpSegmentRepr segment)
    {
        segment = default;
        if (_credential is not { } held || !held.TryDeriveSecret(authenticator, out var secret))
        {
            return false;
        }

        var trigger = new ConnectionAuthenticator(secret).CreateTrigger(cid, sender, held.Credential.Epoch, destination);
        segment = ServerMigration.TriggerSegment(cid, sender, trigger);
        return true;
    }

    /// <summary>
    /// The MTCP options of an outgoing segment: on the SYN+ACK, the secret (origin), orig-connection-info (a migrated
    /// endpoint) and the alternates that fit; after it, the alternates owed, until the client acknowledged a byte sent
    /// while every segment carried them.
    /// </summary>
    public TcpSegmentRepr Decorate(TcpSegmentRepr header, MtcpOrigConnectionInfo? origInfo, IReadOnlyList<ServerEndpoint> alternates)
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

        _alternatesCarriedFrom ??= header.SequenceNumber;
        return header with { Options = ServerMigration.AlternatesAfterHandshake(header.Options, alternates, out _) };
    }

    /// <summary>An incoming segment: an acknowledgment beyond the first segment that carried the owed alternates ends the debt.</summary>
    public void OnInbound(in TcpSegmentRepr segment)
    {
        if (_alternatesCarriedFrom is { } carried && segment.Has(TcpFlags.Ack) && segment.AcknowledgmentNumber > carried)
        {
            _alternatesOwed = false;
            _alternatesCarriedFrom = null;
        }
    }
}

using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors;

/// <summary>
/// A server endpoint actor's <see cref="ServerEndpointAuthentication"/> (the rules, shared with the sans-IO host)
/// bound to this node's cluster keys, with forged and replayed state requests counted in
/// <c>mtcp.migration.auth_failed</c>.
/// </summary>
internal sealed class EndpointAuthentication(IMigrationAuthenticator authenticator)
{
    private readonly ServerEndpointAuthentication _state = new();

    /// <inheritdoc cref="ServerEndpointAuthentication.Issue"/>
    public void Issue(ConnectionId cid, SeqNumber clientIsn, SeqNumber serverIsn) => _state.Issue(authenticator, cid, clientIsn, serverIsn);

    /// <inheritdoc cref="ServerEndpointAuthentication.TryAdopt"/>
    public bool TryAdopt(StateReply reply) => _state.TryAdopt(authenticator, reply);

    /// <summary>
    /// As <see cref="ServerEndpointAuthentication.Answer"/>; an AUTH_FAILED answer is counted in
    /// <c>mtcp.migration.auth_failed</c>, tagged with the check's verdict.
    /// </summary>
    public ControlMessage Answer(TcpConnection endpoint, ServerEndpoint service, StateRequest request)
    {
        var answer = _state.Answer(authenticator, endpoint, service, request, out var check);
        if (answer is StateReject { Reason: StateRejectReason.AuthFailed })
        {
            MigrationMetrics.AuthFailed.Add(1, new KeyValuePair<string, object?>("check", check.ToString()));
        }

        return answer;
    }

    /// <inheritdoc cref="ServerEndpointAuthentication.TryCreateTrigger"/>
    public bool TryCreateTrigger(ConnectionId cid, ServerEndpoint sender, ServerEndpoint? destination, out TcpSegmentRepr segment) =>
        _state.TryCreateTrigger(authenticator, cid, sender, destination, out segment);

    /// <inheritdoc cref="ServerEndpointAuthentication.TryDeriveTriggerKey"/>
    public bool TryDeriveTriggerKey(ConnectionId cid, out TriggerKey key) => _state.TryDeriveTriggerKey(authenticator, cid, out key);

    /// <inheritdoc cref="ServerEndpointAuthentication.Decorate"/>
    public TcpSegmentRepr Decorate(TcpSegmentRepr header, int payloadLength, MtcpOrigConnectionInfo? origInfo, IReadOnlyList<ServerEndpoint> alternates) =>
        _state.Decorate(header, payloadLength, origInfo, alternates);

    /// <inheritdoc cref="ServerEndpointAuthentication.OnInbound"/>
    public void OnInbound(in TcpSegmentRepr segment) => _state.OnInbound(segment);
}

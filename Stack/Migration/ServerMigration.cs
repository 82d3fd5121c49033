using System.Buffers.Binary;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// The decisions of a server endpoint's part in a migration (thesis 4.2.3), without the bookkeeping of who holds
/// which endpoint: <see cref="MtcpServerHost"/> (all endpoints of a port in one object) and the actor runtime (one
/// actor per endpoint) both call these, so the rules live in one place.
/// </summary>
public static class ServerMigration
{
    /// <summary>
    /// Origin side (S1): the answer to <paramref name="request"/> for the endpoint found under its Cid
    /// (<paramref name="endpoint"/> null: none). No endpoint, or one closed or migrated away, is CB_NOT_FOUND. The
    /// MIGRATED_CONN authenticator is checked under the connection's own secret (docs/threat-model.md), recomputed from
    /// <paramref name="credential"/>; one that does not verify, or an attempt number already spent
    /// (<see cref="MigratedConnectionCheck.Replayed"/>), is AUTH_FAILED; otherwise the endpoint packages its state or
    /// rejects it (INVALID_STATE). An accepted attempt is consumed in <paramref name="credential"/> before the state is
    /// packaged, so that the caller stores it even when the reply is lost or rejected; the reply carries it onward.
    /// </summary>
    public static ControlMessage AnswerStateRequest(
        TcpConnection? endpoint,
        ServerEndpoint service,
        StateRequest request,
        IMigrationAuthenticator authenticator,
        ref ConnectionCredential? credential,
        out MigratedConnectionCheck check)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(authenticator);
        check = MigratedConnectionCheck.Forged;
        var cid = request.MigratingCid;
        if (endpoint is null || cid.ServerAddress != service.Address || cid.ServerPort != service.Port || endpoint.IsMigratedAway || endpoint.State == TcpState.Closed)
        {
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.CbNotFound, $"no connection {cid}");
        }

        if (credential is not { } held)
        {
            // Only an endpoint still waiting for its own state reply has none: it holds no state to give yet.
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.InvalidState, $"connection in {endpoint.State}, not yet reinstated");
        }

        check = authenticator.VerifyStateRequest(request, held.Credential, held.SecretCid, out var updated);
        if (check != MigratedConnectionCheck.Accepted)
        {
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.AuthFailed, $"authenticator did not verify ({check})");
        }

        var consumed = held with { Credential = updated };
        credential = consumed;
        return endpoint.PackageState(request, consumed.ToBytes());
    }

    /// <summary>
    /// Origin side, when the connection's first SYN is accepted: the credential to keep with the endpoint and the
    /// secret its SYN+ACK gives the client (<see cref="SynAckOptions"/>).
    /// </summary>
    public static ConnectionCredential IssueCredential(IMigrationAuthenticator authenticator, ConnectionId cid, SeqNumber clientIsn, SeqNumber serverIsn, out MigrationSecret secret)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        return new ConnectionCredential(cid, authenticator.IssueCredential(cid, clientIsn, serverIsn, out secret));
    }

    /// <summary>
    /// Destination side, on the state reply, before reinstating it: the credential the origin handed on, with the
    /// epoch moved on for the migration now completing. False (refuse the special SYN) when the reply carries none,
    /// a malformed one, or one whose key generation this server no longer holds: it could not authenticate the
    /// connection's next migration.
    /// </summary>
    public static bool TryAdoptCredential(StateReply reply, IMigrationAuthenticator authenticator, out ConnectionCredential credential)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(authenticator);
        if (!ConnectionCredential.TryRead(reply.MigrationCredential.Span, out var received) || !received.TryDeriveSecret(authenticator, out _))
        {
            credential = default;
            return false;
        }

        credential = received.AfterMigration();
        return true;
    }

    /// <summary>
    /// Destination side (S2): the state request for a special SYN from <paramref name="clientAddress"/> carrying
    /// <paramref name="migrated"/>, for the new endpoint <paramref name="newEndpointCid"/>. The request goes to the
    /// control connection of the server named by <see cref="StateRequest.MigratingCid"/>.
    /// </summary>
    public static StateRequest BuildStateRequest(ulong requestId, MtcpMigratedConnection migrated, ConnectionId newEndpointCid)
    {
        var migratingCid = migrated.ToConnectionId(newEndpointCid.ClientAddress, newEndpointCid.ClientPort, newEndpointCid.ServerAddress);
        var authenticator = new byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(authenticator, migrated.Authenticator);
        return new StateRequest(requestId, migratingCid, newEndpointCid, migrated.RcvNxt, authenticator);
    }

    /// <summary>
    /// Destination side, on the state reply: reinstates it (thesis 4.2.3, S2 steps 2-3) and returns the
    /// orig-connection-info the SYN+ACK carries to the client.
    /// </summary>
    /// <exception cref="ArgumentException">the reply does not fit the endpoint; refuse the special SYN.</exception>
    public static MtcpOrigConnectionInfo Reinstate(TcpConnection endpoint, StateReply reply)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(reply);
        endpoint.ReinstateState(reply);
        return new MtcpOrigConnectionInfo(endpoint.OrigConnectionLastAckSent(), reply.SndMaxSeen);
    }

    /// <summary>
    /// Destination side, after <paramref name="segment"/> was handled by an endpoint that was in SYN-RECEIVED
    /// (<paramref name="wasSynReceived"/>): true once the handshake is done, the migration's last step (β from the
    /// client's ACK, thesis 4.2.3) applied if the endpoint is a reinstated one; the connection may then be accepted.
    /// </summary>
    public static bool CompleteHandshake(TcpConnection endpoint, bool wasSynReceived, in TcpSegmentRepr segment)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!wasSynReceived || endpoint.State is TcpState.SynReceived or TcpState.Closed)
        {
            return false;
        }

        if (endpoint.AwaitingMigrationHandshake)
        {
            endpoint.CompleteMigrationHandshake(segment.Options.Beta ?? 0);
        }

        return true;
    }

    /// <summary>
    /// The options of a server's SYN+ACK: orig-connection-info for a migrated endpoint, TCP_MIGRATE with the
    /// alternates, and, on the origin's SYN+ACK, the migration secret (<paramref name="secret"/>). The secret is never
    /// what is dropped for lack of option space; <paramref name="droppedAlternates"/> alternate servers did not fit and
    /// are owed to the client in TCP_MIGRATE on the first segments after the handshake (<see cref="AlternatesAfterHandshake"/>).
    /// </summary>
    public static TcpOptions SynAckOptions(TcpOptions options, MtcpOrigConnectionInfo? origInfo, IReadOnlyList<ServerEndpoint> alternateServers, MigrationSecret? secret, out int droppedAlternates)
    {
        ArgumentNullException.ThrowIfNull(alternateServers);
        options = origInfo is { } info ? options with { OrigConnectionInfo = info } : options;
        if (secret is { } issued)
        {
            Span<byte> bytes = stackalloc byte[MigrationSecret.Length];
            issued.WriteTo(bytes);
            return options.WithMigrationSecret(MtcpMigrationSecret.FromBytes(bytes), alternateServers, out droppedAlternates);
        }

        droppedAlternates = 0;
        return alternateServers.Count == 0 ? options : options.WithAlternateServers(alternateServers, out droppedAlternates);
    }

    /// <summary>
    /// TCP_MIGRATE for a segment after the handshake, when the SYN+ACK could not carry every alternate server beside
    /// the migration secret: as many as fit beside the segment's own options.
    /// </summary>
    public static TcpOptions AlternatesAfterHandshake(TcpOptions options, IReadOnlyList<ServerEndpoint> alternateServers, out int dropped) =>
        options.WithAlternateServers(alternateServers, out dropped);

    /// <summary>The segment that carries <paramref name="trigger"/> from <paramref name="sender"/> to the client of <paramref name="cid"/>: a SYN to the client's port.</summary>
    public static TcpSegmentRepr TriggerSegment(ConnectionId cid, ServerEndpoint sender, MtcpMigrateTrigger trigger) => new()
    {
        SourcePort = sender.Port,
        DestinationPort = cid.ClientPort,
        Flags = TcpFlags.Syn,
        Options = new TcpOptions { MigrateTrigger = trigger },
    };

    /// <summary>
    /// A MIGRATE_TRIGGER for <paramref name="cid"/> from a third party <paramref name="sender"/> holding the trigger key
    /// the connection's holder issued for its current epoch: the client chooses the destination (naming one would need
    /// the holder's Auth_dest endorsement), and the key dies with the next migration.
    /// </summary>
    public static TcpSegmentRepr ThirdPartyTriggerSegment(ConnectionId cid, ServerEndpoint sender, TriggerKey key) =>
        TriggerSegment(cid, sender, new TriggerAuthenticator(key).CreateTrigger(cid, sender, destination: null, authDest: 0));
}

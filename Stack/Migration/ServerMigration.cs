using System.Buffers.Binary;
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
    /// (<paramref name="endpoint"/> null: none). No endpoint, or one closed or migrated away, is CB_NOT_FOUND; an
    /// authenticator that does not verify is AUTH_FAILED; otherwise the endpoint packages its state or rejects it
    /// (INVALID_STATE).
    /// </summary>
    public static ControlMessage AnswerStateRequest(TcpConnection? endpoint, ServerEndpoint service, StateRequest request, IMigrationTags tags)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(tags);
        var cid = request.MigratingCid;
        if (endpoint is null || cid.ServerAddress != service.Address || cid.ServerPort != service.Port || endpoint.IsMigratedAway || endpoint.State == TcpState.Closed)
        {
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.CbNotFound, $"no connection {cid}");
        }

        if (request.Authenticator.Length != sizeof(ulong)
            || !tags.VerifyMigratedConnection(cid, request.NewEndpointCid, request.ClientRcvNxt, BinaryPrimitives.ReadUInt64BigEndian(request.Authenticator.Span)))
        {
            return new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.AuthFailed, "authenticator did not verify");
        }

        return endpoint.PackageState(request);
    }

    /// <summary>
    /// Destination side (S2): the state request for a special SYN from <paramref name="clientAddress"/> carrying
    /// <paramref name="migrated"/>, for the new endpoint <paramref name="newEndpointCid"/>. The request goes to the
    /// control connection of the server named by <see cref="StateRequest.MigratingCid"/>.
    /// </summary>
    public static StateRequest BuildStateRequest(ulong requestId, MtcpMigratedConnection migrated, ConnectionId newEndpointCid)
    {
        var migratingCid = migrated.ToConnectionId(newEndpointCid.ClientAddress, newEndpointCid.ClientPort);
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
    /// A MIGRATE_TRIGGER (thesis 3.2.1) for <paramref name="cid"/>, sent by the server at <paramref name="sender"/> to the
    /// client's port, asking it to migrate to <paramref name="destination"/> (null: the client chooses among the
    /// alternates). The Cid's server end is carried when it is not the sender.
    /// </summary>
    public static TcpSegmentRepr BuildTrigger(ConnectionId cid, ServerEndpoint sender, ServerEndpoint? destination, IMigrationTags tags)
    {
        ArgumentNullException.ThrowIfNull(tags);
        var origin = new ServerEndpoint(cid.ServerAddress, cid.ServerPort);
        var trigger = new MtcpMigrateTrigger(
            tags.ComputeTrigger(cid, destination),
            origin == sender ? null : origin,
            destination is { } d ? new MtcpTriggerDestination(d == sender ? null : d, 0) : null);
        return new TcpSegmentRepr
        {
            SourcePort = sender.Port,
            DestinationPort = cid.ClientPort,
            Flags = TcpFlags.Syn,
            Options = new TcpOptions { MigrateTrigger = trigger },
        };
    }

    /// <summary>The options of a server's SYN+ACK: orig-connection-info for a migrated endpoint, TCP_MIGRATE with the alternates.</summary>
    public static TcpOptions SynAckOptions(TcpOptions options, MtcpOrigConnectionInfo? origInfo, IReadOnlyList<ServerEndpoint> alternateServers)
    {
        ArgumentNullException.ThrowIfNull(alternateServers);
        if (origInfo is { } info)
        {
            options = options with { OrigConnectionInfo = info };
        }

        return alternateServers.Count == 0 ? options : options.WithAlternateServers(alternateServers, out _);
    }
}

using Mtcp.Wire;

namespace Mtcp.Stack.Migration;

/// <summary>
/// The 64-bit tags that tie MTCP's migration messages to one connection (thesis 3.2.1: <c>Auth_trig</c>, and the
/// authenticator of TCP_MIGRATED_CONN), as the migration mechanism consumes them: four operations, keys and their
/// derivation being the implementation's business. One key for every connection and no attempt numbers, so it does
/// not reject replays: <see cref="MtcpServerHost"/> and <see cref="MtcpClientConnection.Connect(TcpConfig, IpAddress, ushort, ServerEndpoint, SeqNumber, Instant)"/>
/// use the per-connection-secret scheme of <c>Authentication/</c> instead; this seam remains for the actor runtime.
/// </summary>
public interface IMigrationTags
{
    /// <summary>
    /// The authenticator a client puts in TCP_MIGRATED_CONN to move connection <paramref name="cid"/> to the endpoint
    /// <paramref name="newEndpointCid"/>; binding the latter stops a captured SYN from being redirected elsewhere.
    /// </summary>
    ulong ComputeMigratedConnection(ConnectionId cid, ConnectionId newEndpointCid, SeqNumber rcvNxt);

    /// <summary>Checked by the origin server, on the forwarded state request, before it hands out any state of <paramref name="cid"/>.</summary>
    bool VerifyMigratedConnection(ConnectionId cid, ConnectionId newEndpointCid, SeqNumber rcvNxt, ulong authenticator);

    /// <summary><c>Auth_trig</c> of a MIGRATE_TRIGGER for <paramref name="cid"/>, naming <paramref name="destination"/> (null: none).</summary>
    ulong ComputeTrigger(ConnectionId cid, ServerEndpoint? destination);

    /// <summary>Checked by the client; a trigger that does not verify is ignored and counted.</summary>
    bool VerifyTrigger(ConnectionId cid, ServerEndpoint? destination, ulong authenticator);
}

using Mtcp.Wire;

namespace Mtcp.Stack.Migration;

/// <summary>
/// Computes and checks the 64-bit authenticators that tie MTCP's migration messages to one connection
/// (thesis 3.2.1: <c>Auth_trig</c>, <c>Auth_dest</c>, and the authenticator of TCP_MIGRATED_CONN). The mechanism
/// only needs these four operations; how keys are held and derived is the implementation's business.
/// </summary>
public interface IMigrationAuthenticator
{
    /// <summary>The authenticator a client puts in TCP_MIGRATED_CONN to move connection <paramref name="cid"/>.</summary>
    ulong ComputeMigratedConnection(ConnectionId cid, SeqNumber rcvNxt);

    /// <summary>Checked by the origin server before it hands out any state of <paramref name="cid"/>.</summary>
    bool VerifyMigratedConnection(ConnectionId cid, SeqNumber rcvNxt, ulong authenticator);

    /// <summary><c>Auth_trig</c> of a MIGRATE_TRIGGER for <paramref name="cid"/>, naming <paramref name="destination"/> (null: none).</summary>
    ulong ComputeTrigger(ConnectionId cid, ServerEndpoint? destination);

    /// <summary>Checked by the client; a trigger that does not verify is ignored and counted.</summary>
    bool VerifyTrigger(ConnectionId cid, ServerEndpoint? destination, ulong authenticator);
}

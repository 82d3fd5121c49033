using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// What a cooperating server needs that depends on the cluster key: issuing a connection's migration
/// secret at setup, recomputing it where the connection moves, checking a forwarded MIGRATED_CONN
/// authenticator, and authenticating control messages. The per-connection tags themselves are in
/// <see cref="ConnectionAuthenticator"/>, which the client uses too.
/// </summary>
public interface IMigrationAuthenticator
{
    /// <summary>Bytes of a control-message MAC.</summary>
    int ControlMacLength { get; }

    /// <summary>
    /// At the origin server, when the connection's SYN arrives: the credential to keep with the connection,
    /// and the secret to send to the client on the SYN+ACK. Uses the current cluster key.
    /// </summary>
    MigrationCredential IssueCredential(ConnectionId cid, SeqNumber clientIsn, SeqNumber serverIsn, out MigrationSecret secret);

    /// <summary>The connection's secret; false when the credential's key generation is neither the current nor the previous key.</summary>
    bool TryDeriveSecret(in MigrationCredential credential, ConnectionId cid, out MigrationSecret secret);

    /// <summary>
    /// At the server holding the connection, on a state request: checks the forwarded MIGRATED_CONN
    /// authenticator. On <see cref="MigratedConnectionCheck.Accepted"/> <paramref name="updated"/> has the attempt
    /// consumed and must replace the stored credential before the state reply is sent; otherwise it is unchanged.
    /// </summary>
    MigratedConnectionCheck VerifyStateRequest(StateRequest request, in MigrationCredential credential, out MigrationCredential updated);

    /// <summary>
    /// As <see cref="VerifyStateRequest(StateRequest, in MigrationCredential, out MigrationCredential)"/> for a
    /// connection that may have migrated: the secret is derived under <paramref name="secretCid"/>, the Cid the
    /// origin issued it for, while the request names the connection's current Cid.
    /// </summary>
    MigratedConnectionCheck VerifyStateRequest(StateRequest request, in MigrationCredential credential, ConnectionId secretCid, out MigrationCredential updated);

    /// <summary>
    /// MACs an encoded control frame sent from <paramref name="sender"/> to <paramref name="receiver"/> (node
    /// identities, at most 255 bytes each, e.g. UTF-8 of their remoting addresses) with the current key.
    /// </summary>
    void SignControlMessage(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, Span<byte> mac);

    /// <summary>True when <paramref name="mac"/> is the MAC of the frame under the current or the previous key.</summary>
    bool VerifyControlMessage(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, ReadOnlySpan<byte> mac);

    /// <summary>
    /// Writes into <paramref name="key"/> (<see cref="ClusterKey.Length"/> bytes) the key that seals client-stored
    /// state under the current cluster key, and returns that key's generation.
    /// </summary>
    byte DeriveClientStateKey(Span<byte> key);

    /// <summary>As <see cref="DeriveClientStateKey"/> under the key of <paramref name="generation"/>; false when neither the current nor the previous key has it.</summary>
    bool TryDeriveClientStateKey(byte generation, Span<byte> key);
}

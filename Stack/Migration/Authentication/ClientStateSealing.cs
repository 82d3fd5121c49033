using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>Why a presented client-stored state was not used; each is logged once and changes nothing.</summary>
public enum ClientStateRefusal
{
    /// <summary>Shorter than a header and a tag, longer than the configured maximum, or of another version.</summary>
    Malformed,

    /// <summary>Sealed under a cluster key no longer (or never) held here.</summary>
    UnknownKeyGeneration,

    /// <summary>The tag does not verify: forged, altered, or sealed for another connection (the Cid is associated data).</summary>
    BadTag,

    /// <summary>It opened, but holds no state reply: a sealing node's bug, not an attack.</summary>
    NotAState,

    /// <summary>A newer state of the same connection was presented here before: an old one replayed.</summary>
    Stale,

    /// <summary>The special SYN's MIGRATED_CONN authenticator does not verify under the state's credential.</summary>
    AuthenticatorFailed,
}

/// <summary>
/// Client-stored state (beyond the thesis, its third mode of 3.2; docs/failover.md): the serving node seals what a buddy
/// would hold, the state reply of <see cref="TcpConnection.PackageReplica"/>, with AES-GCM under a key derived from the
/// cluster key (<see cref="IMigrationAuthenticator.DeriveClientStateKey"/>). The blob's clear header and the
/// connection's Cid are associated data: the client can read which state is newer and which of its bytes it covers,
/// and can neither read the state nor alter it, nor present it for another connection.
/// </summary>
public static class ClientStateSealing
{
    /// <summary>
    /// The blob for <paramref name="state"/>, the state of <paramref name="cid"/> numbered <paramref name="sequence"/>,
    /// covering the client's bytes up to <paramref name="covers"/>; <paramref name="nonce"/> must never repeat under one
    /// key (the driver draws it at random).
    /// </summary>
    public static byte[] Seal(IMigrationAuthenticator authenticator, ConnectionId cid, ulong sequence, SeqNumber covers, StateReply state, ReadOnlySpan<byte> nonce)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        ArgumentNullException.ThrowIfNull(state);
        Span<byte> key = stackalloc byte[ClusterKey.Length];
        var generation = authenticator.DeriveClientStateKey(key);
        var plaintext = state.ToArray();
        var blob = new byte[ClientStateBlob.Overhead + plaintext.Length];
        new ClientStateBlob(generation, sequence, covers).WriteHeader(blob, nonce);
        Span<byte> associated = stackalloc byte[MacInput.MaxLength];
        var associatedLength = AssociatedData(blob.AsSpan(0, ClientStateBlob.HeaderLength), cid, associated);
        using var aes = new AesGcm(key, ClientStateBlob.TagLength);
        aes.Encrypt(
            nonce,
            plaintext,
            blob.AsSpan(ClientStateBlob.HeaderLength, plaintext.Length),
            blob.AsSpan(ClientStateBlob.HeaderLength + plaintext.Length),
            associated[..associatedLength]);
        CryptographicOperations.ZeroMemory(key);
        return blob;
    }

    /// <summary>
    /// Opens a blob presented for <paramref name="cid"/>: the state reply it holds, or why not. Nothing is decoded
    /// before the tag verifies.
    /// </summary>
    public static bool TryOpen(
        IMigrationAuthenticator authenticator,
        ReadOnlySpan<byte> blob,
        ConnectionId cid,
        int maxLength,
        out ClientStateBlob header,
        [NotNullWhen(true)] out StateReply? state,
        out ClientStateRefusal refusal)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        state = null;
        refusal = ClientStateRefusal.Malformed;
        if (blob.Length > maxLength || !ClientStateBlob.TryReadHeader(blob, out header))
        {
            header = default;
            return false;
        }

        Span<byte> key = stackalloc byte[ClusterKey.Length];
        if (!authenticator.TryDeriveClientStateKey(header.KeyGeneration, key))
        {
            refusal = ClientStateRefusal.UnknownKeyGeneration;
            return false;
        }

        Span<byte> associated = stackalloc byte[MacInput.MaxLength];
        var associatedLength = AssociatedData(blob[..ClientStateBlob.HeaderLength], cid, associated);
        var ciphertext = blob[ClientStateBlob.HeaderLength..^ClientStateBlob.TagLength];
        var plaintext = new byte[ciphertext.Length];
        try
        {
            using var aes = new AesGcm(key, ClientStateBlob.TagLength);
            aes.Decrypt(ClientStateBlob.NonceOf(blob), ciphertext, blob[^ClientStateBlob.TagLength..], plaintext, associated[..associatedLength]);
        }
        catch (AuthenticationTagMismatchException)
        {
            refusal = ClientStateRefusal.BadTag;
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }

        if (!StateReply.TryDecode(plaintext, out state, out _))
        {
            refusal = ClientStateRefusal.NotAState;
            return false;
        }

        return true;
    }

    /// <summary><c>"MTCP1 client state\0" | header | Cid</c>: the blob is bound to its connection.</summary>
    private static int AssociatedData(ReadOnlySpan<byte> header, ConnectionId cid, Span<byte> destination)
    {
        var input = new MacInput(destination, MacLabel.ClientState);
        input.WriteBytes(header);
        input.WriteConnectionId(cid);
        return input.Written.Length;
    }
}

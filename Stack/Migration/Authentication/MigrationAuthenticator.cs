using System.Security.Cryptography;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// The cluster-key side of migration authentication (see docs/threat-model.md). Thread-safe: one instance per
/// server, whose keys change at a rotation (<see cref="UseOptions"/>) without a restart; each operation reads the keys
/// in force once, so it sees either the old or the new ones, never a mix.
/// </summary>
public sealed class MigrationAuthenticator : IMigrationAuthenticator
{
    /// <summary>128 bits: control messages have no option-space limit, so the MAC is not cut to 64.</summary>
    public const int ControlMacBytes = 16;

    private MigrationAuthenticatorOptions _options;

    public MigrationAuthenticator(MigrationAuthenticatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>A single cluster key of generation 0, e.g. a fixed key in a test.</summary>
    public static MigrationAuthenticator FromKey(ReadOnlySpan<byte> clusterKey) =>
        new(new MigrationAuthenticatorOptions(new ClusterKey(0, clusterKey)));

    /// <summary>Under the one cluster key derived from <paramref name="serviceKey"/> (<see cref="ClusterKey.FromServiceKey"/>).</summary>
    /// <param name="serviceKey">at least 16 bytes of secret shared by the service's servers.</param>
    public static MigrationAuthenticator FromServiceKey(ReadOnlySpan<byte> serviceKey) =>
        new(new MigrationAuthenticatorOptions(ClusterKey.FromServiceKey(serviceKey)));

    /// <summary>The keys in force.</summary>
    public MigrationAuthenticatorOptions Options => Volatile.Read(ref _options);

    /// <summary>
    /// Puts other keys in force, for a rotation (the two phases of <see cref="MigrationAuthenticatorOptions"/>). A
    /// connection whose secret was derived from a key no longer in force can no longer migrate; control messages and
    /// announcements signed under it no longer verify.
    /// </summary>
    public void UseOptions(MigrationAuthenticatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Volatile.Write(ref _options, options);
    }

    public int ControlMacLength => ControlMacBytes;

    public MigrationCredential IssueCredential(ConnectionId cid, SeqNumber clientIsn, SeqNumber serverIsn, out MigrationSecret secret)
    {
        var key = Options.CurrentKey;
        secret = DeriveSecret(key, cid, clientIsn, serverIsn);
        return new MigrationCredential(key.Generation, clientIsn, serverIsn, Epoch: 0, NextAttempt: 0);
    }

    public bool TryDeriveSecret(in MigrationCredential credential, ConnectionId cid, out MigrationSecret secret)
    {
        var options = Options;
        var key = credential.KeyGeneration == options.CurrentKey.Generation ? options.CurrentKey
            : credential.KeyGeneration == options.PreviousKey?.Generation ? options.PreviousKey
            : null;
        if (key is null)
        {
            secret = default;
            return false;
        }

        secret = DeriveSecret(key, cid, credential.ClientIsn, credential.ServerIsn);
        return true;
    }

    public MigratedConnectionCheck VerifyStateRequest(StateRequest request, in MigrationCredential credential, out MigrationCredential updated)
    {
        ArgumentNullException.ThrowIfNull(request);
        return VerifyStateRequest(request, credential, request.MigratingCid, out updated);
    }

    public MigratedConnectionCheck VerifyStateRequest(StateRequest request, in MigrationCredential credential, ConnectionId secretCid, out MigrationCredential updated)
    {
        ArgumentNullException.ThrowIfNull(request);
        updated = credential;
        if (!TryDeriveSecret(credential, secretCid, out var secret))
        {
            return MigratedConnectionCheck.UnknownKeyGeneration;
        }

        var check = new ConnectionAuthenticator(secret).VerifyStateRequest(request, credential.NextAttempt, Options.AttemptWindow, out var attempt);
        if (check == MigratedConnectionCheck.Accepted)
        {
            updated = credential.ConsumeAttempt(attempt);
        }

        return check;
    }

    public void SignControlMessage(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, Span<byte> mac)
    {
        if (mac.Length != ControlMacBytes)
        {
            throw new ArgumentException($"a control MAC is {ControlMacBytes} bytes, got {mac.Length}", nameof(mac));
        }

        ControlMac(Options.CurrentKey, frame, sender, receiver, mac);
    }

    public bool VerifyControlMessage(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, ReadOnlySpan<byte> mac)
    {
        if (mac.Length != ControlMacBytes)
        {
            return false;
        }

        var options = Options;
        Span<byte> expected = stackalloc byte[ControlMacBytes];
        ControlMac(options.CurrentKey, frame, sender, receiver, expected);
        if (CryptographicOperations.FixedTimeEquals(expected, mac))
        {
            return true;
        }

        if (options.PreviousKey is not { } previous)
        {
            return false;
        }

        ControlMac(previous, frame, sender, receiver, expected);
        return CryptographicOperations.FixedTimeEquals(expected, mac);
    }

    public byte DeriveClientStateKey(Span<byte> key)
    {
        var current = Options.CurrentKey;
        ClientStateKey(current, key);
        return current.Generation;
    }

    public bool TryDeriveClientStateKey(byte generation, Span<byte> key)
    {
        var options = Options;
        var clusterKey = generation == options.CurrentKey.Generation ? options.CurrentKey
            : generation == options.PreviousKey?.Generation ? options.PreviousKey
            : null;
        if (clusterKey is null)
        {
            return false;
        }

        ClientStateKey(clusterKey, key);
        return true;
    }

    /// <summary>
    /// <c>HMAC(cluster key, "MTCP1 client state key\0")</c>: an AEAD key of its own, so that no sealed state can ever be
    /// taken for a MAC or a secret under the cluster key.
    /// </summary>
    private static void ClientStateKey(ClusterKey clusterKey, Span<byte> key)
    {
        if (key.Length != ClusterKey.Length)
        {
            throw new ArgumentException($"a client state key is {ClusterKey.Length} bytes, got {key.Length}", nameof(key));
        }

        MacInput.Hmac(clusterKey.Key, MacLabel.ClientStateKey, key);
    }

    /// <summary>
    /// <c>HMAC(cluster key, "MTCP1 migration secret\0" | Cid | client ISN | server ISN)</c>, first 16 bytes.
    /// Both ISNs make each incarnation of a 4-tuple get its own secret; the cluster key makes it unknowable
    /// to anyone who has not seen the SYN+ACK, even one who learns the ISNs later.
    /// </summary>
    private static MigrationSecret DeriveSecret(ClusterKey key, ConnectionId cid, SeqNumber clientIsn, SeqNumber serverIsn)
    {
        Span<byte> buffer = stackalloc byte[MacInput.MaxLength];
        var input = new MacInput(buffer, MacLabel.MigrationSecret);
        input.WriteConnectionId(cid);
        input.WriteUInt32(clientIsn.Value);
        input.WriteUInt32(serverIsn.Value);
        Span<byte> secret = stackalloc byte[MigrationSecret.Length];
        MacInput.Hmac(key.Key, input.Written, secret);
        return MigrationSecret.FromBytes(secret);
    }

    /// <summary>
    /// <c>HMAC(control key, "MTCP1 control message\0" | len | sender | len | receiver | SHA-256(frame))</c>, first
    /// 16 bytes. Hashing the frame first keeps the MAC input on the stack whatever the frame size (a state reply
    /// can be megabytes); SHA-256's collision resistance makes this as strong as MACing the frame itself.
    /// Binding both identities stops a message from being replayed on another pair's association or reflected
    /// back to its sender.
    /// </summary>
    private static void ControlMac(ClusterKey key, ReadOnlySpan<byte> frame, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, Span<byte> mac)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(frame, digest);
        Span<byte> buffer = stackalloc byte[MacInput.MaxLength];
        var input = new MacInput(buffer, MacLabel.ControlMessage);
        input.WriteShortBytes(sender);
        input.WriteShortBytes(receiver);
        input.WriteBytes(digest);
        MacInput.Hmac(key.ControlKey, input.Written, mac);
    }
}

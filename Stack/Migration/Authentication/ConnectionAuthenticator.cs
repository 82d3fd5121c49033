using System.Buffers.Binary;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// The authenticators of one connection, computed from its <see cref="MigrationSecret"/>: what the client,
/// the server holding the connection and a server that recomputed the secret use. Pure functions of their
/// arguments (no clock, no randomness); tags are HMAC-SHA256 truncated to 64 bits, compared in fixed time.
/// </summary>
public readonly struct ConnectionAuthenticator
{
    private readonly MigrationSecret _secret;

    public ConnectionAuthenticator(MigrationSecret secret)
    {
        if (secret.IsZero)
        {
            throw new ArgumentException("the all-zero migration secret is what an unset secret looks like", nameof(secret));
        }

        _secret = secret;
    }

    /// <summary>
    /// The MIGRATED_CONN authenticator the client puts on its special SYN to the new server:
    /// <c>HMAC(secret, "MTCP1 MIGRATED_CONN\0" | migrating Cid | new endpoint Cid | rcv_nxt | attempt)</c>.
    /// Binding the new endpoint's Cid stops a captured SYN from being redirected to another server; binding
    /// <paramref name="clientRcvNxt"/> stops it from being altered to make the origin prune unsent data
    /// (thesis 4.2.3 (a)); the attempt number makes every special SYN single-use.
    /// </summary>
    public ulong MigratedConnection(ConnectionId migratingCid, ConnectionId newEndpointCid, SeqNumber clientRcvNxt, uint attempt)
    {
        Span<byte> key = stackalloc byte[MigrationSecret.Length];
        WriteKey(key);
        Span<byte> buffer = stackalloc byte[MacInput.MaxLength];
        var input = new MacInput(buffer, MacLabel.MigratedConnection);
        input.WriteConnectionId(migratingCid);
        input.WriteConnectionId(newEndpointCid);
        input.WriteUInt32(clientRcvNxt.Value);
        input.WriteUInt32(attempt);
        return MacInput.Hmac64(key, input.Written);
    }

    /// <summary>
    /// Checks a MIGRATED_CONN authenticator at the server holding the connection. Attempt numbers from
    /// <paramref name="nextAttempt"/> to <paramref name="nextAttempt"/> + <paramref name="window"/> - 1 are
    /// <see cref="MigratedConnectionCheck.Accepted"/> (the caller then consumes <paramref name="attempt"/>);
    /// the <paramref name="window"/> numbers before it are recognised as <see cref="MigratedConnectionCheck.Replayed"/>.
    /// </summary>
    public MigratedConnectionCheck VerifyMigratedConnection(
        ConnectionId migratingCid,
        ConnectionId newEndpointCid,
        SeqNumber clientRcvNxt,
        ulong authenticator,
        uint nextAttempt,
        int window,
        out uint attempt)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        for (var step = 0u; step < (uint)window && nextAttempt + step >= nextAttempt; step++)
        {
            if (TagComparison.FixedTimeEquals(MigratedConnection(migratingCid, newEndpointCid, clientRcvNxt, nextAttempt + step), authenticator))
            {
                attempt = nextAttempt + step;
                return MigratedConnectionCheck.Accepted;
            }
        }

        attempt = 0;
        for (var step = 1u; step <= (uint)window && step <= nextAttempt; step++)
        {
            if (TagComparison.FixedTimeEquals(MigratedConnection(migratingCid, newEndpointCid, clientRcvNxt, nextAttempt - step), authenticator))
            {
                return MigratedConnectionCheck.Replayed;
            }
        }

        return MigratedConnectionCheck.Forged;
    }

    /// <summary>Checks the authenticator a new server forwarded in its state request (beyond the thesis, 4.2.3).</summary>
    public MigratedConnectionCheck VerifyStateRequest(StateRequest request, uint nextAttempt, int window, out uint attempt)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Authenticator.Length != MtcpOption.AuthenticatorLength)
        {
            attempt = 0;
            return MigratedConnectionCheck.Malformed;
        }

        var authenticator = BinaryPrimitives.ReadUInt64BigEndian(request.Authenticator.Span);
        return VerifyMigratedConnection(request.MigratingCid, request.NewEndpointCid, request.ClientRcvNxt, authenticator, nextAttempt, window, out attempt);
    }

    /// <summary>
    /// The key that signs this connection's triggers during <paramref name="epoch"/>:
    /// <c>HMAC(secret, "MTCP1 trigger key\0" | Cid | epoch)</c>, first 16 bytes.
    /// </summary>
    public TriggerKey DeriveTriggerKey(ConnectionId cid, uint epoch)
    {
        Span<byte> key = stackalloc byte[MigrationSecret.Length];
        WriteKey(key);
        Span<byte> buffer = stackalloc byte[MacInput.MaxLength];
        var input = new MacInput(buffer, MacLabel.TriggerKey);
        input.WriteConnectionId(cid);
        input.WriteUInt32(epoch);
        Span<byte> derived = stackalloc byte[TriggerKey.Length];
        MacInput.Hmac(key, input.Written, derived);
        return TriggerKey.FromBytes(derived);
    }

    /// <summary>
    /// Auth_dest (thesis 3.2.1): <c>HMAC(secret, "MTCP1 Auth_dest\0" | Cid | epoch | destination)</c>. Only a
    /// holder of the secret (the client, or a cooperating server that holds the connection or can recompute
    /// its secret from the cluster key) can make it, so a third party holding only a <see cref="TriggerKey"/>
    /// can send the client to servers the cluster endorsed and nowhere else.
    /// </summary>
    public ulong AuthDest(ConnectionId cid, uint epoch, ServerEndpoint destination)
    {
        Span<byte> key = stackalloc byte[MigrationSecret.Length];
        WriteKey(key);
        Span<byte> buffer = stackalloc byte[MacInput.MaxLength];
        var input = new MacInput(buffer, MacLabel.AuthDest);
        input.WriteConnectionId(cid);
        input.WriteUInt32(epoch);
        input.WriteEndpoint(destination);
        return MacInput.Hmac64(key, input.Written);
    }

    public bool VerifyAuthDest(ConnectionId cid, uint epoch, ServerEndpoint destination, ulong authDest) =>
        TagComparison.FixedTimeEquals(AuthDest(cid, epoch, destination), authDest);

    /// <summary>
    /// A MIGRATE_TRIGGER for this connection from <paramref name="sender"/> (the trigger segment's source),
    /// asking the client to migrate to <paramref name="destination"/>, or to a server of its choice when null.
    /// The origin is left implied when the sender is the Cid's server, and the destination when it is the sender.
    /// </summary>
    public MtcpMigrateTrigger CreateTrigger(ConnectionId cid, ServerEndpoint sender, uint epoch, ServerEndpoint? destination)
    {
        var authDest = destination is { } target ? AuthDest(cid, epoch, target) : 0;
        return new TriggerAuthenticator(DeriveTriggerKey(cid, epoch)).CreateTrigger(cid, sender, destination, authDest);
    }

    /// <summary>
    /// Checks a MIGRATE_TRIGGER received by the client on connection <paramref name="cid"/> from
    /// <paramref name="sender"/>, during <paramref name="epoch"/>. A replay within the epoch asks again for
    /// the migration it asked for; once that migration completes the epoch moves on and the trigger is dead.
    /// </summary>
    public TriggerCheck VerifyTrigger(MtcpMigrateTrigger trigger, ConnectionId cid, ServerEndpoint sender, uint epoch)
    {
        var destination = trigger.Destination is { } target ? target.Server ?? sender : (ServerEndpoint?)null;
        var authDest = trigger.Destination?.AuthDest ?? 0;
        var expected = new TriggerAuthenticator(DeriveTriggerKey(cid, epoch)).AuthTrig(cid, destination, authDest);
        if (!TagComparison.FixedTimeEquals(expected, trigger.AuthTrig))
        {
            return TriggerCheck.BadAuthTrig;
        }

        return destination is { } server && !VerifyAuthDest(cid, epoch, server, authDest) ? TriggerCheck.BadAuthDest : TriggerCheck.Accepted;
    }

    /// <summary>A <c>default</c> instance has no secret; MACs under a known all-zero key would be forgeable.</summary>
    private void WriteKey(Span<byte> key)
    {
        if (_secret.IsZero)
        {
            throw new InvalidOperationException("ConnectionAuthenticator used without a migration secret");
        }

        _secret.WriteTo(key);
    }
}

/// <summary>
/// Signs triggers with a <see cref="TriggerKey"/>: what an authorised third party holds. It can
/// ask the client to migrate, to a server of the client's choice or to a destination a cooperating server
/// endorsed with Auth_dest, and cannot make MIGRATED_CONN authenticators.
/// </summary>
public readonly struct TriggerAuthenticator
{
    private readonly TriggerKey _key;

    public TriggerAuthenticator(TriggerKey key)
    {
        if (key.IsZero)
        {
            throw new ArgumentException("the all-zero trigger key is what an unset key looks like", nameof(key));
        }

        _key = key;
    }

    /// <summary>
    /// Auth_trig (thesis 3.2.1): <c>HMAC(trigger key, "MTCP1 Auth_trig\0" | Cid | 0)</c> without a destination,
    /// <c>HMAC(trigger key, "MTCP1 Auth_trig\0" | Cid | 1 | destination | Auth_dest)</c> with one. The
    /// destination is the resolved one (the sender when the option leaves it implied), so a trigger replayed
    /// from another source address names another destination and fails.
    /// </summary>
    public ulong AuthTrig(ConnectionId cid, ServerEndpoint? destination, ulong authDest)
    {
        if (_key.IsZero)
        {
            throw new InvalidOperationException("TriggerAuthenticator used without a trigger key");
        }

        Span<byte> key = stackalloc byte[TriggerKey.Length];
        _key.WriteTo(key);
        Span<byte> buffer = stackalloc byte[MacInput.MaxLength];
        var input = new MacInput(buffer, MacLabel.AuthTrig);
        input.WriteConnectionId(cid);
        if (destination is { } server)
        {
            input.WriteByte(1);
            input.WriteEndpoint(server);
            input.WriteUInt64(authDest);
        }
        else
        {
            input.WriteByte(0);
        }

        return MacInput.Hmac64(key, input.Written);
    }

    /// <summary>A trigger from <paramref name="sender"/>; <paramref name="authDest"/> is the endorsement of <paramref name="destination"/>.</summary>
    public MtcpMigrateTrigger CreateTrigger(ConnectionId cid, ServerEndpoint sender, ServerEndpoint? destination, ulong authDest)
    {
        var origin = new ServerEndpoint(cid.ServerAddress, cid.ServerPort);
        MtcpTriggerDestination? target = destination is { } server
            ? new MtcpTriggerDestination(server == sender ? null : server, authDest)
            : null;
        return new MtcpMigrateTrigger(AuthTrig(cid, destination, authDest), origin == sender ? null : origin, target);
    }
}

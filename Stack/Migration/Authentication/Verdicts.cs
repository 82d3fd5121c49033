namespace Mtcp.Stack.Migration.Authentication;

/// <summary>Outcome of checking a MIGRATED_CONN authenticator; anything but <see cref="Accepted"/> is answered with AUTH_FAILED.</summary>
public enum MigratedConnectionCheck
{
    /// <summary>Valid for an attempt number not yet spent; the attempt is returned and must be consumed.</summary>
    Accepted,

    /// <summary>Valid for an attempt number already spent: a special SYN seen before and replayed.</summary>
    Replayed,

    /// <summary>Valid for no attempt number near the expected one: forged, altered, or under another secret.</summary>
    Forged,

    /// <summary>The state request carried an authenticator that is not 8 bytes.</summary>
    Malformed,

    /// <summary>The connection's secret came from a cluster key no longer held (rotated out twice since setup).</summary>
    UnknownKeyGeneration,
}

/// <summary>Outcome of checking a MIGRATE_TRIGGER at the client.</summary>
public enum TriggerCheck
{
    Accepted,

    /// <summary>Auth_trig does not verify under this connection's trigger key for the current epoch: ignore and count.</summary>
    BadAuthTrig,

    /// <summary>Auth_trig verified but Auth_dest does not: the named destination is not endorsed by a cooperating server.</summary>
    BadAuthDest,
}

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// The cluster keys in force and the replay window for MIGRATED_CONN attempts. A hitless rotation has two
/// phases: every server first gets the new key as <see cref="PreviousKey"/> (accepted, not used), then every
/// server makes it <see cref="CurrentKey"/> and keeps the old one as <see cref="PreviousKey"/>; at each step
/// any two servers accept what the other derives or signs.
/// </summary>
public sealed record MigrationAuthenticatorOptions
{
    public const int DefaultAttemptWindow = 8;

    public MigrationAuthenticatorOptions(ClusterKey currentKey, ClusterKey? previousKey = null, int attemptWindow = DefaultAttemptWindow)
    {
        ArgumentNullException.ThrowIfNull(currentKey);
        if (previousKey is not null && previousKey.Generation == currentKey.Generation)
        {
            throw new ArgumentException($"current and previous cluster keys share generation {currentKey.Generation}", nameof(previousKey));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(attemptWindow, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(attemptWindow, 64);
        CurrentKey = currentKey;
        PreviousKey = previousKey;
        AttemptWindow = attemptWindow;
    }

    /// <summary>Derives new connections' secrets and signs control messages.</summary>
    public ClusterKey CurrentKey { get; }

    /// <summary>Still accepted: connections set up under it keep migrating, control messages signed with it verify.</summary>
    public ClusterKey? PreviousKey { get; }

    /// <summary>
    /// How many attempt numbers past the next expected one a MIGRATED_CONN authenticator may use: the
    /// client counts every attempt, including those whose special SYN never reached the destination,
    /// so the verifier must look a little ahead. Each step costs one HMAC per forged request.
    /// </summary>
    public int AttemptWindow { get; }
}

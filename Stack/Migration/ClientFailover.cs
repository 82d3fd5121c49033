namespace Mtcp.Stack.Migration;

/// <summary>
/// How a migrating client notices that its server stopped answering and moves the connection on its own (the
/// client-side backup of failover; DESIGN's fault model: a crashed node must cost no connection, two faults may reset
/// it within a bounded time but never hang it). A client with data in flight counts retransmission timeouts; a quiet
/// one probes its server after <see cref="ProbeInterval"/> (keep-alive, RFC 9293 §3.8.4) and counts unanswered probes.
/// After <see cref="SilentAfter"/> of either, it migrates to its alternate servers in turn, skipping one that does not
/// answer the special SYN within <see cref="SpecialSynTimeout"/>; if none has taken the connection over
/// <see cref="GiveUpAfter"/> after the server fell silent, the connection is aborted and the application told it
/// timed out.
/// </summary>
public sealed record ClientFailover
{
    /// <summary>No probes, no failover: the connection waits for its server as plain TCP does.</summary>
    public static ClientFailover Off { get; } = new() { ProbeInterval = TimeSpan.Zero, SilentAfter = 0 };

    /// <summary>Quiet time after which the client probes its server; zero: never probe a quiet connection.</summary>
    public required TimeSpan ProbeInterval { get; init; }

    /// <summary>Unanswered retransmission timeouts or probes in a row that make the server silent; zero: failover off.</summary>
    public required int SilentAfter { get; init; }

    /// <summary>How long a failover destination has to answer the special SYN before the next alternate is tried.</summary>
    public TimeSpan SpecialSynTimeout { get; init; }

    /// <summary>From the server falling silent to the abort, when no alternate took the connection over.</summary>
    public TimeSpan GiveUpAfter { get; init; }

    /// <summary>
    /// How long a planned migration (the application's, a policy's, an operator's, or one a server's MIGRATE_TRIGGER
    /// asked for) waits for its destination's SYN+ACK before it fails and the connection goes on with its current
    /// server; zero: the TCP connect timeout. Not a failover setting, but read with them: a migrating client's timers.
    /// </summary>
    public TimeSpan DestinationTimeout { get; init; }

    public bool Enabled => SilentAfter > 0;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public ClientFailover Validate()
    {
        Require(ProbeInterval >= TimeSpan.Zero, nameof(ProbeInterval), "must not be negative");
        Require(SilentAfter >= 0, nameof(SilentAfter), "must not be negative");
        Require(DestinationTimeout >= TimeSpan.Zero, nameof(DestinationTimeout), "must not be negative");
        Require(!Enabled || SpecialSynTimeout > TimeSpan.Zero, nameof(SpecialSynTimeout), "must be positive");
        Require(!Enabled || GiveUpAfter >= SpecialSynTimeout, nameof(GiveUpAfter), "must be at least the special SYN timeout");
        return this;
    }

    private static void Require(bool condition, string field, string rule)
    {
        if (!condition)
        {
            throw new ArgumentException($"{field} {rule}", field);
        }
    }
}

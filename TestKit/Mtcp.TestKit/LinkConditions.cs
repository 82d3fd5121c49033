namespace Mtcp.TestKit;

/// <summary>
/// Impairments applied to every packet a link carries: by <see cref="SimNetwork"/> in virtual time and by
/// <see cref="LossyPacketTransport"/> in real time. Probabilities are 0..1.
/// </summary>
public sealed record LinkConditions
{
    public static LinkConditions Perfect { get; } = new();

    /// <summary>One-way propagation delay.</summary>
    public TimeSpan Latency { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Uniform extra delay 0..Jitter added to every packet (reorders packets closer than this).</summary>
    public TimeSpan Jitter { get; init; }

    /// <summary>Probability that a packet is dropped.</summary>
    public double LossRate { get; init; }

    /// <summary>Probability that a packet is delivered twice (the copy gets its own delay).</summary>
    public double DuplicateRate { get; init; }

    /// <summary>Probability that a packet is held back by up to <see cref="ReorderDelay"/>, overtaken by later ones.</summary>
    public double ReorderRate { get; init; }

    public TimeSpan ReorderDelay { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Largest IP packet carried, in bytes (<see cref="SimPacket.HeaderOverhead"/> plus payload); larger ones are dropped.</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>Per-sender serialization rate in bytes per second, or null for unlimited.</summary>
    public long? BandwidthBytesPerSecond { get; init; }

    /// <summary>
    /// Probability that a packet finding its link open starts a blackhole period (a route flap, a failover): that
    /// packet and every packet sent on the link for <see cref="BlackholeDuration"/> after it are dropped. At 0, the
    /// default, nothing is drawn for it, so seeds of runs without blackholes replay as before.
    /// </summary>
    public double BlackholeRate { get; init; }

    public TimeSpan BlackholeDuration { get; init; } = TimeSpan.FromMilliseconds(200);
}

using Akka.Actor;
using Akka.Configuration;

using static Mtcp.Actors.Api.HoconValues;

namespace Mtcp.Policies;

/// <summary>How the client policy picks a destination among a connection's alternate servers.</summary>
public enum DestinationChoice
{
    /// <summary>The next alternate after the last one chosen, skipping the current server.</summary>
    RoundRobin,

    /// <summary>The alternate with the highest throughput remembered from an earlier visit; unvisited ones first.</summary>
    BestKnown,
}

/// <summary>What a node counts as its own load.</summary>
public enum LoadSource
{
    /// <summary>Number of connections this node serves (thesis 6.2.3: each connection is an atomic unit of load).</summary>
    Connections,

    /// <summary>Bytes per second served, over the last evaluation interval.</summary>
    BytesPerSecond,

    /// <summary>The last figure the application reported with <see cref="ApplicationLoad"/>.</summary>
    Application,

    /// <summary>
    /// Share of the machine's processors this process used between the last two
    /// <see cref="ProcessorTimeSample"/>s, from 0 to 1 (the server actor samples its own process at each evaluation).
    /// </summary>
    Cpu,
}

/// <summary>
/// The whole <c>mtcp.policies</c> section (HOCON/mtcp-reference.conf documents every key), read once and
/// validated by <see cref="Create(Config)"/>, which names the first bad key.
/// </summary>
public sealed record PolicySettings(ClientPolicySettings Client, ServerPolicySettings Server)
{
    public const string Root = "mtcp.policies";

    public static PolicySettings Create(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        return Create(system.Settings.Config);
    }

    public static PolicySettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new PolicySettings(ClientPolicySettings.Create(config), ServerPolicySettings.Create(config));
    }
}

/// <summary>Guard rails of one side (<c>mtcp.policies.client.guard</c> or <c>mtcp.policies.server.guard</c>).</summary>
public sealed record GuardSettings(TimeSpan HoldDown, double MigrationsPerSecond, int Burst, TimeSpan PingPongWindow)
{
    internal static GuardSettings Create(Config config, string prefix) => new(
        Duration(config, $"{prefix}.hold-down", allowZero: true),
        Number(config, $"{prefix}.migrations-per-second", 0, double.PositiveInfinity, minExclusive: true),
        Integer(config, $"{prefix}.burst", 1, int.MaxValue),
        Duration(config, $"{prefix}.ping-pong-window", allowZero: true));
}

/// <summary><c>mtcp.policies.client.throughput</c>: the smoothed-throughput trigger of thesis 5.3.2.</summary>
public sealed record ThroughputSettings(double Alpha, double TriggerRatio, TimeSpan SampleInterval, TimeSpan MinObservationWindow, int ConsecutiveSamples, double ReaderLimitedFraction)
{
    public const string Prefix = "mtcp.policies.client.throughput";

    internal static ThroughputSettings Create(Config config) => new(
        Number(config, $"{Prefix}.alpha", 0, 1, minExclusive: true),
        Number(config, $"{Prefix}.trigger-ratio", 0, 1, minExclusive: true),
        Duration(config, $"{Prefix}.sample-interval", allowZero: true),
        Duration(config, $"{Prefix}.min-observation-window", allowZero: true),
        Integer(config, $"{Prefix}.consecutive-samples", 1, int.MaxValue),
        Number(config, $"{Prefix}.reader-limited-fraction", 0, 1, minExclusive: true));
}

/// <summary><c>mtcp.policies.client.latency</c>: the next-in-sequence-segment delay trigger of thesis 3.4 (1).</summary>
public sealed record LatencySettings(double SrttMultiplier, TimeSpan FixedBound, int ConsecutiveSegments, TimeSpan MinObservationWindow)
{
    public const string Prefix = "mtcp.policies.client.latency";

    internal static LatencySettings Create(Config config)
    {
        var settings = new LatencySettings(
            Number(config, $"{Prefix}.srtt-multiplier", 0, double.PositiveInfinity),
            Duration(config, $"{Prefix}.fixed-bound", allowZero: true),
            Integer(config, $"{Prefix}.consecutive-segments", 1, int.MaxValue),
            Duration(config, $"{Prefix}.min-observation-window", allowZero: true));
        if (settings.SrttMultiplier == 0 && settings.FixedBound == TimeSpan.Zero)
        {
            throw new ConfigurationException($"{Prefix}.srtt-multiplier and {Prefix}.fixed-bound are both off: the latency trigger could never fire");
        }

        return settings;
    }
}

/// <summary><c>mtcp.policies.client.response-time</c>: the response-time trigger of thesis 3.4 (2).</summary>
public sealed record ResponseTimeSettings(
    double Alpha,
    double BaselineMultiplier,
    TimeSpan BaselineFloor,
    TimeSpan FixedBound,
    int ConsecutiveRequests,
    TimeSpan MinObservationWindow)
{
    public const string Prefix = "mtcp.policies.client.response-time";

    internal static ResponseTimeSettings Create(Config config)
    {
        var settings = new ResponseTimeSettings(
            Number(config, $"{Prefix}.alpha", 0, 1, minExclusive: true),
            Number(config, $"{Prefix}.baseline-multiplier", 0, double.PositiveInfinity),
            Duration(config, $"{Prefix}.baseline-floor", allowZero: true),
            Duration(config, $"{Prefix}.fixed-bound", allowZero: true),
            Integer(config, $"{Prefix}.consecutive-requests", 1, int.MaxValue),
            Duration(config, $"{Prefix}.min-observation-window", allowZero: true));
        if (settings.BaselineMultiplier is > 0 and <= 1)
        {
            throw new ConfigurationException($"{Prefix}.baseline-multiplier must be 0 (off) or greater than 1, got {settings.BaselineMultiplier}: the smoothed response time is never below its own minimum");
        }

        if (settings.BaselineMultiplier == 0 && settings.FixedBound == TimeSpan.Zero)
        {
            throw new ConfigurationException($"{Prefix}.baseline-multiplier and {Prefix}.fixed-bound are both off: the response-time trigger could never fire");
        }

        return settings;
    }
}

/// <summary><c>mtcp.policies.client</c>: which triggers run on the client side and how they pick a destination.</summary>
public sealed record ClientPolicySettings(
    IReadOnlyList<PolicyKind> Triggers,
    DestinationChoice DestinationChoice,
    ThroughputSettings Throughput,
    LatencySettings Latency,
    ResponseTimeSettings ResponseTime,
    GuardSettings Guard)
{
    public const string Prefix = "mtcp.policies.client";

    private static readonly Dictionary<string, PolicyKind> TriggerNames = new()
    {
        ["throughput"] = PolicyKind.Throughput,
        ["latency"] = PolicyKind.Latency,
        ["response-time"] = PolicyKind.ResponseTime,
    };

    private static readonly Dictionary<string, DestinationChoice> ChoiceNames = new()
    {
        ["round-robin"] = DestinationChoice.RoundRobin,
        ["best-known"] = DestinationChoice.BestKnown,
    };

    public static ClientPolicySettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new ClientPolicySettings(
            Choices(config, $"{Prefix}.triggers", TriggerNames),
            Choice(config, $"{Prefix}.destination-choice", ChoiceNames),
            ThroughputSettings.Create(config),
            LatencySettings.Create(config),
            ResponseTimeSettings.Create(config),
            GuardSettings.Create(config, $"{Prefix}.guard"));
    }
}

/// <summary><c>mtcp.policies.server.drain</c>: pace of an operator's drain.</summary>
public sealed record DrainSettings(double MigrationsPerSecond, int Burst, TimeSpan RetryAfter)
{
    public const string Prefix = "mtcp.policies.server.drain";

    internal static DrainSettings Create(Config config) => new(
        Number(config, $"{Prefix}.migrations-per-second", 0, double.PositiveInfinity, minExclusive: true),
        Integer(config, $"{Prefix}.burst", 1, int.MaxValue),
        Duration(config, $"{Prefix}.retry-after", allowZero: false));
}

/// <summary><c>mtcp.policies.server</c>: load balancing, overload shedding and draining on a server node (thesis 6.2.2, 6.2.3).</summary>
public sealed record ServerPolicySettings(
    LoadSource LoadSource,
    TimeSpan EvaluationInterval,
    TimeSpan PeerReportExpiry,
    bool Push,
    bool Pull,
    double ImbalanceThreshold,
    int MaxMovesPerEvaluation,
    double OverloadThreshold,
    double ShedFraction,
    GuardSettings Guard,
    DrainSettings Drain)
{
    public const string Prefix = "mtcp.policies.server";

    private static readonly Dictionary<string, LoadSource> SourceNames = new()
    {
        ["connections"] = LoadSource.Connections,
        ["bytes-per-second"] = LoadSource.BytesPerSecond,
        ["application"] = LoadSource.Application,
        ["cpu"] = LoadSource.Cpu,
    };

    public static ServerPolicySettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new ServerPolicySettings(
            Choice(config, $"{Prefix}.load-source", SourceNames),
            Duration(config, $"{Prefix}.evaluation-interval", allowZero: true),
            Duration(config, $"{Prefix}.peer-report-expiry", allowZero: false),
            Boolean(config, $"{Prefix}.push"),
            Boolean(config, $"{Prefix}.pull"),
            Number(config, $"{Prefix}.imbalance-threshold", 0, double.PositiveInfinity, minExclusive: true),
            Integer(config, $"{Prefix}.max-moves-per-evaluation", 1, int.MaxValue),
            Number(config, $"{Prefix}.overload-threshold", 0, double.PositiveInfinity),
            Number(config, $"{Prefix}.shed-fraction", 0, 1, minExclusive: true),
            GuardSettings.Create(config, $"{Prefix}.guard"),
            DrainSettings.Create(config));
    }
}

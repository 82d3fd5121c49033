using System.Diagnostics.Metrics;

namespace Mtcp.Policies;

/// <summary>
/// Counters of the "Mtcp.Policies" meter: every decision sent, by policy and reason, and every decision a
/// guard rail held back, by policy and guard. One meter per process, as System.Diagnostics.Metrics intends;
/// listeners (dotnet-counters, OpenTelemetry) subscribe by the meter's name.
/// </summary>
public static class PolicyMetrics
{
    public const string MeterName = "Mtcp.Policies";
    public const string DecisionsName = "mtcp.policy.decisions";
    public const string SuppressedName = "mtcp.policy.suppressed";
    public const string RefusedName = "mtcp.policy.refused";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Decisions = Meter.CreateCounter<long>(
        DecisionsName, unit: "{decision}", description: "Migration decisions sent, by policy and reason");

    private static readonly Counter<long> Suppressed = Meter.CreateCounter<long>(
        SuppressedName, unit: "{decision}", description: "Migration decisions held back by a guard rail, by policy and guard");

    private static readonly Counter<long> Refused = Meter.CreateCounter<long>(
        RefusedName, unit: "{message}", description: "Load reports and pull requests dropped because their sender does not serve the endpoint they name, by message");

    public static void CountRefused(string message) =>
        Refused.Add(1, new KeyValuePair<string, object?>("message", message));

    public static void CountDecision(PolicyKind policy, MigrationReason reason) =>
        Decisions.Add(1, new KeyValuePair<string, object?>("policy", policy.ToString()), new KeyValuePair<string, object?>("reason", reason.ToString()));

    public static void CountSuppressed(PolicyKind policy, GuardVerdict guard) =>
        Suppressed.Add(1, new KeyValuePair<string, object?>("policy", policy.ToString()), new KeyValuePair<string, object?>("guard", guard.ToString()));
}

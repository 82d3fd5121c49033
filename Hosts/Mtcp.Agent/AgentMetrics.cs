using System.Diagnostics.Metrics;

namespace Mtcp.Agent;

/// <summary>What serve's relays did since it started, for the meter <c>Mtcp.Agent</c>: open and closed relays alike.</summary>
/// <param name="Migrations">the relays' migrations by cause (policy, operator, server) and whether each completed.</param>
public sealed record RelayTotals(
    long Accepted,
    long Failed,
    long Refused,
    int Open,
    long BytesToService,
    long BytesFromService,
    IReadOnlyDictionary<(string Cause, bool Completed), long> Migrations);

/// <summary>
/// serve's relay instruments on the meter "Mtcp.Agent" (docs/metrics.md), scraped at
/// <c>mtcp.agent.metrics.prometheus-endpoint</c>. They are observed at each collection from <paramref name="totals"/>,
/// the relays' own counts, so that the relay's copy loops carry no extra work. The agent's MTCP runtime adds its
/// client instruments (migrations started, completed and failed, their duration, failovers) on <c>Mtcp.Migration</c>.
/// </summary>
public sealed class AgentMetrics : IDisposable
{
    public const string MeterName = "Mtcp.Agent";

    private readonly Meter _meter = new(MeterName);

    public AgentMetrics(Func<RelayTotals> totals)
    {
        _meter.CreateObservableUpDownCounter("mtcp.agent.relay.active", () => totals().Open, "{relay}", "Relays open: a local client and its MTCP connection to the service");
        _meter.CreateObservableCounter("mtcp.agent.relay.accepted", () => totals().Accepted, "{relay}", "Local clients accepted for relaying");
        _meter.CreateObservableCounter("mtcp.agent.relay.failed", () => totals().Failed, "{relay}", "Relays that ended with a reset: no service endpoint answered, or either side failed");
        _meter.CreateObservableCounter("mtcp.agent.relay.refused", () => totals().Refused, "{connection}", "Local clients refused with a RST because mtcp.agent.serve.max-connections relays were open");
        _meter.CreateObservableCounter("mtcp.agent.relay.io", () => Io(totals()), "By", "Bytes relayed to the service (tag direction: transmit) and from it (receive)");
        _meter.CreateObservableCounter("mtcp.agent.relay.migrations", () => Migrations(totals()), "{migration}", "Migrations of relayed connections (tag cause: policy, operator, server (a MIGRATE_TRIGGER or a failover); tag outcome: completed, failed)");
    }

    public void Dispose() => _meter.Dispose();

    private static Measurement<long>[] Io(RelayTotals totals) =>
    [
        new(totals.BytesToService, new KeyValuePair<string, object?>("direction", "transmit")),
        new(totals.BytesFromService, new KeyValuePair<string, object?>("direction", "receive")),
    ];

    private static IEnumerable<Measurement<long>> Migrations(RelayTotals totals) =>
        totals.Migrations.Select(entry => new Measurement<long>(
            entry.Value,
            new KeyValuePair<string, object?>("cause", entry.Key.Cause),
            new KeyValuePair<string, object?>("outcome", entry.Key.Completed ? "completed" : "failed")));
}

using System.Globalization;

namespace Mtcp.Bench;

/// <summary>One read of a server node's Prometheus endpoint: every sample, keyed by its name and labels as exposed.</summary>
internal sealed class MetricsScrape
{
    private readonly Dictionary<string, double> _samples;

    private MetricsScrape(Dictionary<string, double> samples) => _samples = samples;

    /// <summary>How long the OpenTelemetry Prometheus exporter answers scrapes from its cache (its default, which the hosts keep).</summary>
    public static readonly TimeSpan ResponseCacheDuration = TimeSpan.FromMilliseconds(300);

    public static MetricsScrape Empty { get; } = new([]);

    public static async Task<MetricsScrape> ReadAsync(HttpClient http, Uri url, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var text = await http.GetStringAsync(url, cancellationToken);
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            // name{labels} value [timestamp]; label values never hold a '}' in these meters.
            var keyEnd = line.IndexOf('}', StringComparison.Ordinal) is var brace and >= 0 ? brace + 1 : line.IndexOf(' ', StringComparison.Ordinal);
            var fields = line[keyEnd..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (keyEnd > 0 && fields.Length > 0 && double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                samples[line[..keyEnd]] = value;
            }
        }

        return new MetricsScrape(samples);
    }

    /// <summary>What changed from <paramref name="before"/> to this read (counters and histograms only grow).</summary>
    public MetricsScrape Since(MetricsScrape before) =>
        new(_samples.ToDictionary(pair => pair.Key, pair => pair.Value - before._samples.GetValueOrDefault(pair.Key), StringComparer.Ordinal));

    public MetricsScrape Plus(MetricsScrape other) =>
        new(_samples.Keys.Union(other._samples.Keys).ToDictionary(key => key, key => _samples.GetValueOrDefault(key) + other._samples.GetValueOrDefault(key), StringComparer.Ordinal));

    /// <summary>The sum of the samples whose name starts with <paramref name="prefix"/> and ends with <paramref name="suffix"/>, with <paramref name="label"/> among their labels.</summary>
    public double Sum(string prefix, string suffix, string label = "") =>
        _samples.Where(pair => NameOf(pair.Key) is var name && name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(suffix, StringComparison.Ordinal)
            && pair.Key.Contains(label, StringComparison.Ordinal)).Sum(pair => pair.Value);

    /// <summary>
    /// The <paramref name="quantile"/> of the histogram named <paramref name="prefix"/>…: the upper bound of the first
    /// bucket that holds it (NaN when empty; +Inf past the last bound).
    /// </summary>
    public double Percentile(string prefix, double quantile)
    {
        var buckets = _samples
            .Where(pair => NameOf(pair.Key) is var name && name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith("_bucket", StringComparison.Ordinal))
            .GroupBy(pair => UpperBound(pair.Key))
            .Select(group => (Bound: group.Key, Count: group.Sum(pair => pair.Value)))
            .OrderBy(bucket => bucket.Bound)
            .ToList();
        var total = buckets.Count == 0 ? 0 : buckets[^1].Count;
        if (total <= 0)
        {
            return double.NaN;
        }

        return buckets.First(bucket => bucket.Count >= quantile * total).Bound;
    }

    private static string NameOf(string key) => key.IndexOf('{', StringComparison.Ordinal) is var brace and >= 0 ? key[..brace] : key;

    private static double UpperBound(string key)
    {
        var at = key.IndexOf("le=\"", StringComparison.Ordinal) + 4;
        var bound = key[at..key.IndexOf('"', at)];
        return bound == "+Inf" ? double.PositiveInfinity : double.Parse(bound, NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// Where buddy replication's time goes in one phase of the cost measurement, from the serving node's instruments
/// (docs/metrics.md): replica messages and bytes sent per unit of the workload (a MB moved, or a request), the buddy's
/// ack delay (bucket upper bounds: a control round trip on this host is measured beside it, and its mean), the buddy
/// node's share of it (from its own instruments: the update's arrival on its control connection to the ack leaving), the
/// serving node's control connection's round trip (the update handed to the transport to its ack back: the rest of the ack
/// delay is the serving node's actor hops), how long a read log's first byte waited for the pipeline before the ack delay, and
/// how many of the client's bytes waited unacknowledged when an ack came (beside the client's send buffer, which they fill).
/// </summary>
internal sealed record ReplicationTrace(
    string Phase,
    string Unit,
    double Units,
    double StateMessagesPerUnit,
    double StateBytesPerUnit,
    double ReadLogMessagesPerUnit,
    double ReadLogBytesPerUnit,
    double Acks,
    double AckDelayP50Us,
    double AckDelayP99Us,
    double AckDelayMeanUs,
    double BuddyHoldP50Us,
    double BuddyHoldMeanUs,
    double RoundTripP50Us,
    double RoundTripMeanUs,
    double PipelineWaitP50Us,
    double PipelineWaitMeanUs,
    double GatedP50Bytes,
    double GatedP99Bytes)
{
    /// <param name="delta">the serving node's instruments over the phase.</param>
    /// <param name="buddyDelta">its buddy's.</param>
    public static ReplicationTrace From(string phase, string unit, double units, MetricsScrape delta, MetricsScrape buddyDelta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        ArgumentNullException.ThrowIfNull(buddyDelta);
        const string BuddyHold = "mtcp_replication_buddy_hold";
        const string Updates = "mtcp_replication_updates";
        const string Bytes = "mtcp_replication_update_bytes";
        const string AckDelay = "mtcp_replication_ack_delay";
        const string Gated = "mtcp_replication_gated_size";
        const string RoundTrip = "mtcp_replication_round_trip_duration";
        const string PipelineWait = "mtcp_replication_pipeline_wait_duration";
        return new ReplicationTrace(
            phase,
            unit,
            units,
            delta.Sum(Updates, "_total", "kind=\"state\"") / units,
            delta.Sum(Bytes, "_total", "kind=\"state\"") / units,
            delta.Sum(Updates, "_total", "kind=\"read-log\"") / units,
            delta.Sum(Bytes, "_total", "kind=\"read-log\"") / units,
            delta.Sum(AckDelay, "_count"),
            delta.Percentile(AckDelay, 0.5) * 1e6,
            delta.Percentile(AckDelay, 0.99) * 1e6,
            delta.Sum(AckDelay, "_sum") / delta.Sum(AckDelay, "_count") * 1e6,
            buddyDelta.Percentile(BuddyHold, 0.5) * 1e6,
            buddyDelta.Sum(BuddyHold, "_sum") / buddyDelta.Sum(BuddyHold, "_count") * 1e6,
            delta.Percentile(RoundTrip, 0.5) * 1e6,
            delta.Sum(RoundTrip, "_sum") / delta.Sum(RoundTrip, "_count") * 1e6,
            delta.Percentile(PipelineWait, 0.5) * 1e6,
            delta.Sum(PipelineWait, "_sum") / delta.Sum(PipelineWait, "_count") * 1e6,
            delta.Percentile(Gated, 0.5),
            delta.Percentile(Gated, 0.99));
    }

    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Phase}: per {Unit} {StateMessagesPerUnit:0.##} whole-state messages ({StateBytesPerUnit / 1024:0.#} KiB) and {ReadLogMessagesPerUnit:0.##} read logs ({ReadLogBytesPerUnit / 1024:0.#} KiB); "
        + $"buddy's ack after p50 <= {AckDelayP50Us:0} us, p99 <= {AckDelayP99Us:0} us, mean {AckDelayMeanUs:0} us ({Acks:0} acks), of which the control connection's round trip p50 <= {RoundTripP50Us:0} us, mean {RoundTripMeanUs:0} us and the buddy node's hold p50 <= {BuddyHoldP50Us:0} us, mean {BuddyHoldMeanUs:0} us; "
        + $"a read log's first byte waited for the pipeline p50 <= {PipelineWaitP50Us:0} us, mean {PipelineWaitMeanUs:0} us; client bytes waiting for their ACK at an ack p50 <= {GatedP50Bytes / 1024:0} KiB, p99 <= {GatedP99Bytes / 1024:0} KiB");
}

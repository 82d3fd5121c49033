using System.Diagnostics.Metrics;

namespace Mtcp.Server;

/// <summary>
/// The node's instruments on the meter "Mtcp.Server", read with <c>dotnet-counters monitor -n Mtcp.Server --counters
/// Mtcp.Server</c> or an OpenTelemetry exporter. Every connection instrument is tagged with the application.
/// </summary>
/// <remarks>
/// The migration instruments are part of the meter's contract already, so that dashboards need no change, but
/// nothing records them yet: this runtime does not migrate connections, so they stay at zero.
/// </remarks>
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "Mtcp.Server";

    private readonly Meter _meter = new(MeterName);

    public ServerMetrics()
    {
        Accepted = _meter.CreateCounter<long>("mtcp.server.connections.accepted", "{connection}", "Connections accepted.");
        Active = _meter.CreateUpDownCounter<long>("mtcp.server.connections.active", "{connection}", "Connections being served.");
        Failed = _meter.CreateCounter<long>("mtcp.server.connections.failed", "{connection}", "Connections that ended with an error (reset, protocol violation, I/O failure).");
        BytesSent = _meter.CreateCounter<long>("mtcp.server.bytes.sent", "By", "Bytes the applications wrote.");
        BytesReceived = _meter.CreateCounter<long>("mtcp.server.bytes.received", "By", "Bytes the applications read.");
        MigrationsIn = _meter.CreateCounter<long>("mtcp.server.migrations.in", "{migration}", "Connections that migrated to this node.");
        MigrationsOut = _meter.CreateCounter<long>("mtcp.server.migrations.out", "{migration}", "Connections that migrated away from this node.");
        MigrationStateBytes = _meter.CreateHistogram<long>("mtcp.server.migration.state.bytes", "By", "Size of each state reply sent or received.");
        MigrationLatency = _meter.CreateHistogram<double>("mtcp.server.migration.duration", "s", "From state request to state ack, per migration in.");
        MigrationFailures = _meter.CreateCounter<long>("mtcp.server.migrations.failed", "{migration}", "Migrations in or out that failed.");
    }

    public Counter<long> Accepted { get; }

    public UpDownCounter<long> Active { get; }

    public Counter<long> Failed { get; }

    public Counter<long> BytesSent { get; }

    public Counter<long> BytesReceived { get; }

    public Counter<long> MigrationsIn { get; }

    public Counter<long> MigrationsOut { get; }

    public Histogram<long> MigrationStateBytes { get; }

    public Histogram<double> MigrationLatency { get; }

    public Counter<long> MigrationFailures { get; }

    public void Dispose() => _meter.Dispose();
}

using System.Diagnostics.Metrics;
using Mtcp.Actors.Api;
using Mtcp.Wire;

namespace Mtcp.Server;

/// <summary>
/// The node's instruments on the meter "Mtcp.Server", read with <c>dotnet-counters monitor -n Mtcp.Server --counters
/// Mtcp.Server</c> or an OpenTelemetry exporter. Every connection instrument is tagged with the application.
/// </summary>
/// <remarks>
/// Migrations in are counted by the node when an application resumes an imported state; state bytes, the wait for
/// the state reply, migrations out and refused migrations come from the runtime's <c>Mtcp.Migration</c> meter, which
/// this node's <see cref="MeterListener"/> forwards (one runtime per process, so the runtime's counts are the node's).
/// </remarks>
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "Mtcp.Server";

    private readonly Meter _meter = new(MeterName);
    private readonly MeterListener _runtimeListener = new();

    public ServerMetrics()
    {
        Accepted = _meter.CreateCounter<long>("mtcp.server.connections.accepted", "{connection}", "Connections accepted.");
        Active = _meter.CreateUpDownCounter<long>("mtcp.server.connections.active", "{connection}", "Connections being served.");
        Failed = _meter.CreateCounter<long>("mtcp.server.connections.failed", "{connection}", "Connections that ended with an error (reset, protocol violation, I/O failure).");
        BytesSent = _meter.CreateCounter<long>("mtcp.server.bytes.sent", "By", "Bytes the applications wrote.");
        BytesReceived = _meter.CreateCounter<long>("mtcp.server.bytes.received", "By", "Bytes the applications read.");
        MigrationsIn = _meter.CreateCounter<long>("mtcp.server.migrations.in", "{migration}", "Connections that migrated to this node.");
        MigrationsOut = _meter.CreateCounter<long>("mtcp.server.migrations.out", "{migration}", "Connections that migrated away from this node.");
        MigrationStateBytes = _meter.CreateHistogram<long>("mtcp.server.migration.state.bytes", "By", "Size of each state reply received.");
        MigrationLatency = _meter.CreateHistogram<double>("mtcp.server.migration.duration", "s", "From state request to state reply, per migration in.");
        MigrationFailures = _meter.CreateCounter<long>("mtcp.server.migrations.failed", "{migration}", "Migrations to this node refused (reject, timeout, failure).");

        _runtimeListener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MtcpRuntime.MigrationMeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _runtimeListener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            switch (instrument.Name)
            {
                case "mtcp.migration.state_bytes":
                    MigrationStateBytes.Record(value);
                    StateReplyReceived?.Invoke(value);
                    break;
                case "mtcp.migration.migrated_away":
                    MigrationsOut.Add(value);
                    MigratedAway?.Invoke();
                    break;
                case "mtcp.migration.refused":
                    MigrationFailures.Add(value);
                    break;
            }
        });
        _runtimeListener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (instrument.Name == "mtcp.migration.state_wait")
            {
                MigrationLatency.Record(value / 1000);
                StateWaitMeasured?.Invoke(value);
            }
        });
        _runtimeListener.Start();
    }

    /// <summary>Each state reply received for a connection migrating here, with its encoded size in bytes.</summary>
    public event Action<long>? StateReplyReceived;

    /// <summary>Each connection that left this node on a peer's state ack, whether or not its application was still serving it.</summary>
    public event Action? MigratedAway;

    /// <summary>Each wait from a state request to its reply, in milliseconds.</summary>
    public event Action<double>? StateWaitMeasured;

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

    public void Dispose()
    {
        _runtimeListener.Dispose();
        _meter.Dispose();
    }
}

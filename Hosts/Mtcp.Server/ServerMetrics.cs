using System.Diagnostics.Metrics;
using Mtcp.Actors.Api;

namespace Mtcp.Server;

/// <summary>
/// The node's instruments on the meter "Mtcp.Server" (docs/metrics.md), scraped at
/// <c>mtcp.hosts.server.metrics.prometheus-endpoint</c> or read with <c>dotnet-counters monitor -n Mtcp.Server
/// --counters Mtcp.Server,Mtcp.Migration</c>. Every instrument is tagged with the application.
/// </summary>
/// <remarks>
/// What the runtime measures (state replies, their wait, connections migrated away, refused migrations) is on its own
/// meter <c>Mtcp.Migration</c>, exported beside this one.
/// </remarks>
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "Mtcp.Server";

    private readonly Meter _meter = new(MeterName);

    public ServerMetrics()
    {
        Accepted = _meter.CreateCounter<long>("mtcp.server.connection.accepted", "{connection}", "Connections accepted, new or migrated in");
        Active = _meter.CreateUpDownCounter<long>("mtcp.server.connection.active", "{connection}", "Connections being served");
        Failed = _meter.CreateCounter<long>("mtcp.server.connection.failed", "{connection}", "Connections that ended with an error (reset, protocol violation, I/O failure)");
        Io = _meter.CreateCounter<long>("mtcp.server.io", "By", "Bytes the applications read (tag direction: receive) and wrote (transmit)");
        MigrationsResumed = _meter.CreateCounter<long>("mtcp.server.migration.resumed", "{connection}", "Connections that migrated to this node and whose application resumed from the imported snapshot");
    }

    public Counter<long> Accepted { get; }

    public UpDownCounter<long> Active { get; }

    public Counter<long> Failed { get; }

    /// <summary>Bytes read and written by the applications, tagged with <see cref="Receive"/> or <see cref="Transmit"/>.</summary>
    public Counter<long> Io { get; }

    public Counter<long> MigrationsResumed { get; }

    /// <summary>The <c>direction</c> tag of <see cref="Io"/> for bytes the applications read (OpenTelemetry's network.io.direction).</summary>
    public static KeyValuePair<string, object?> Receive { get; } = new("direction", "receive");

    /// <summary>The <c>direction</c> tag of <see cref="Io"/> for bytes the applications wrote.</summary>
    public static KeyValuePair<string, object?> Transmit { get; } = new("direction", "transmit");

    public void Dispose()
    {
        _meter.Dispose();
    }
}

using System.Net;
using Akka.Configuration;
using Mtcp.Actors.Api;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Mtcp.Hosting;

/// <summary>
/// A host's Prometheus scrape endpoint: every instrument of the process's <c>Mtcp.*</c> meters (docs/metrics.md),
/// exported by OpenTelemetry at <c>http://&lt;address&gt;:&lt;port&gt;/metrics</c>. The listener binds the configured
/// address only, never every interface: the endpoint is unauthenticated, so it belongs on a management address.
/// </summary>
public sealed class PrometheusEndpoint : IDisposable
{
    /// <summary>The meters exported: the runtime's, the policies', the transports' and the host's own.</summary>
    public const string Meters = "Mtcp.*";

    /// <summary>The path Prometheus scrapes.</summary>
    public const string ScrapePath = "/metrics";

    private readonly MeterProvider _provider;

    private PrometheusEndpoint(MeterProvider provider, IPEndPoint endPoint)
    {
        _provider = provider;
        EndPoint = endPoint;
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>The URL Prometheus scrapes, e.g. <c>http://127.0.0.1:9464/metrics</c>.</summary>
    public Uri Url => new($"http://{EndPoint}{ScrapePath}");

    /// <summary>The endpoint <paramref name="path"/> configures: an "address:port", or "" for none (null).</summary>
    /// <exception cref="ConfigurationException">neither "" nor an "address:port".</exception>
    public static IPEndPoint? Configured(Config config, string path)
    {
        ArgumentNullException.ThrowIfNull(config);
        return HoconValues.Text(config, path).Length == 0 ? null : HoconValues.EndPoint(config, path);
    }

    /// <summary>Starts exporting on <paramref name="endPoint"/> and logs its URL.</summary>
    /// <exception cref="InvalidOperationException">the address cannot be bound (in use, or not an address of this host).</exception>
    public static PrometheusEndpoint Start(IPEndPoint endPoint, string configuredBy)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        MeterProvider provider;
        try
        {
            provider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(Meters)
                .AddPrometheusHttpListener(options =>
                {
                    options.Host = endPoint.Address.ToString();
                    options.Port = endPoint.Port;
                    options.ScrapeEndpointPath = ScrapePath;
                })
                .Build();
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"the metrics endpoint {endPoint} ({configuredBy}) cannot listen: {e.InnerException?.Message ?? e.Message}", e);
        }

        var started = new PrometheusEndpoint(provider, endPoint);
        ConsoleLog.Info($"metrics: Prometheus scrape endpoint on {started.Url} ({configuredBy}), meters {Meters}");
        return started;
    }

    public void Dispose() => _provider.Dispose();
}

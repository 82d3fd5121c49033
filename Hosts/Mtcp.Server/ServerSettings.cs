using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Hosting;
using Mtcp.Policies;

namespace Mtcp.Server;

/// <summary>An application and the MTCP port it is served on.</summary>
public sealed record HostedApplication(IServerApplication Application, ushort Port);

/// <summary>
/// The <c>mtcp.hosts</c> section as the server node reads it, validated; a bad key fails with a
/// <see cref="ConfigurationException"/> naming it. Units and defaults: HOCON/mtcp-reference.conf.
/// </summary>
public sealed record ServerSettings(string SystemName, TimeSpan ShutdownTimeout, TimeSpan CloseLinger, TimeSpan RuntimeReportInterval, IReadOnlyList<HostedApplication> Applications)
{
    private const string Server = "mtcp.hosts.server";

    /// <summary><c>policy = load-balancing</c>: the server policy's settings (<c>mtcp.policies.server</c>); null when off.</summary>
    public ServerPolicySettings? Policy { get; init; }

    /// <summary><c>metrics.prometheus-endpoint</c>: where the node's Prometheus scrape endpoint listens; null when off.</summary>
    public System.Net.IPEndPoint? MetricsEndpoint { get; init; }

    public const string MetricsEndpointPath = $"{Server}.metrics.prometheus-endpoint";

    public static ServerSettings Create(Config config, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(config);
        var systemName = HoconValues.Text(config, "mtcp.hosts.system-name");
        if (systemName.Length == 0 || !systemName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw HoconValues.Invalid(config, "mtcp.hosts.system-name", "must be a non-empty name of letters, digits, '-' and '_'");
        }

        var applications = new List<HostedApplication>();
        if (HoconValues.Boolean(config, $"{Server}.file.enabled"))
        {
            var root = HoconValues.Text(config, $"{Server}.file.root");
            if (!Directory.Exists(root))
            {
                throw HoconValues.Invalid(config, $"{Server}.file.root", "must be an existing directory");
            }

            var chunkSize = HoconValues.Size(config, $"{Server}.file.chunk-size", 512, 4 << 20);
            applications.Add(new HostedApplication(
                new FileServer(
                    new FileServerOptions(
                        Path.GetFullPath(root),
                        HoconValues.Size(config, $"{Server}.file.max-request-line", 64, 1 << 20),
                        HoconValues.Integer(config, $"{Server}.file.max-headers", 1, 1000),
                        HoconValues.Duration(config, $"{Server}.file.request-timeout", allowZero: false),
                        chunkSize,
                        FilePace(config, chunkSize)),
                    timeProvider),
                Port(config, $"{Server}.file.port")));
        }

        if (HoconValues.Boolean(config, $"{Server}.stream.enabled"))
        {
            applications.Add(new HostedApplication(
                new StreamServer(
                    new StreamServerOptions(
                        HoconValues.LongSize(config, $"{Server}.stream.stream-length", 1, 1L << 40),
                        HoconValues.Size(config, $"{Server}.stream.chunk-size", 1, 1 << 20),
                        HoconValues.Integer(config, $"{Server}.stream.degrade-after-chunks", 0, int.MaxValue),
                        HoconValues.Duration(config, $"{Server}.stream.delay-step", allowZero: true),
                        HoconValues.Duration(config, $"{Server}.stream.max-delay", allowZero: true)),
                    timeProvider),
                Port(config, $"{Server}.stream.port")));
        }

        if (HoconValues.Boolean(config, $"{Server}.request.enabled"))
        {
            applications.Add(new HostedApplication(
                new RequestServer(
                    new RequestServerOptions(
                        HoconValues.Integer(config, $"{Server}.request.max-keys", 1, 100_000),
                        HoconValues.Size(config, $"{Server}.request.max-value-bytes", 1, 1 << 20),
                        HoconValues.Integer(config, $"{Server}.request.max-arguments", 1, 1024),
                        new SteppedDelay(
                            HoconValues.Integer(config, $"{Server}.request.degrade-after-requests", 0, int.MaxValue),
                            HoconValues.Duration(config, $"{Server}.request.delay-step", allowZero: true),
                            HoconValues.Duration(config, $"{Server}.request.max-delay", allowZero: true))),
                    timeProvider),
                Port(config, $"{Server}.request.port")));
        }

        if (applications.Count == 0)
        {
            throw new ConfigurationException($"{Server}: no application is enabled; set file.enabled, stream.enabled or request.enabled = on");
        }

        var duplicate = applications.GroupBy(hosted => hosted.Port).FirstOrDefault(group => group.Count() > 1);
        if (duplicate is not null)
        {
            throw new ConfigurationException(
                $"{Server}: applications {string.Join(" and ", duplicate.Select(hosted => hosted.Application.Name))} are both configured on port {duplicate.Key}");
        }

        var policy = HoconValues.Choice(config, $"{Server}.policy", new Dictionary<string, bool> { ["load-balancing"] = true, ["off"] = false });
        return new ServerSettings(
            systemName,
            HoconValues.Duration(config, $"{Server}.shutdown-timeout", allowZero: false),
            HoconValues.Duration(config, $"{Server}.close-linger", allowZero: true),
            HoconValues.Duration(config, $"{Server}.runtime-report-interval", allowZero: true),
            applications)
        {
            Policy = policy ? ServerPolicySettings.Create(config) : null,
            MetricsEndpoint = PrometheusEndpoint.Configured(config, MetricsEndpointPath),
        };
    }

    /// <summary><c>file.pace</c>: null when its best rate is 0 (unpaced).</summary>
    private static DegradationCurve? FilePace(Config config, int chunkSize)
    {
        const string Pace = $"{Server}.file.pace";
        var bestRate = HoconValues.LongSize(config, $"{Pace}.best-rate", 0, 1L << 40);
        var degradeAfter = HoconValues.LongSize(config, $"{Pace}.degrade-after", 0, 1L << 40);
        var slowdownPerChunk = HoconValues.Number(config, $"{Pace}.slowdown-per-chunk", 0, 1000);
        var maxSlowdown = HoconValues.Number(config, $"{Pace}.max-slowdown", 1, 1000);
        return bestRate == 0
            ? null
            : new DegradationCurve(chunkSize, bestRate, (int)Math.Min(int.MaxValue, degradeAfter / chunkSize), slowdownPerChunk, maxSlowdown);
    }

    private static ushort Port(Config config, string path) => (ushort)HoconValues.Integer(config, path, 1, ushort.MaxValue);
}

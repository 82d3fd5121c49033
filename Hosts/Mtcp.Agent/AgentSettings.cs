using System.Net;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Policies;
using Mtcp.Wire;

namespace Mtcp.Agent;

/// <summary>
/// The <c>mtcp.agent</c> section, validated; a bad key fails with a <see cref="ConfigurationException"/> naming it.
/// Units and defaults: HOCON/mtcp-reference.conf.
/// </summary>
/// <param name="Policy">The client policy that watches every relay and fetch (thesis 3.4, 5.3.2): its triggers are <c>mtcp.agent.policy</c>'s; null when that is <c>off</c> or <c>[]</c>.</param>
/// <param name="ControlEndpoint">where serve answers status and migrate: a Unix socket (the default) or a TCP endpoint.</param>
/// <param name="MaxRelays">relays open at once; serve refuses the next client with a RST.</param>
/// <param name="Migration">whether connections can migrate (<c>mtcp.agent.migration</c>); the agent needs no key for it.</param>
public sealed record AgentSettings(
    IReadOnlyList<IPEndPoint> ServiceEndpoints,
    TimeSpan ConnectTimeout,
    IPEndPoint ServeListen,
    TimeSpan IdleTimeout,
    int RelayBufferSize,
    EndPoint ControlEndpoint,
    TimeSpan FetchStallTimeout,
    ClientPolicySettings? Policy,
    int MaxRelays,
    bool Migration)
{
    public const string ControlEndpointPath = "mtcp.agent.control-endpoint";
    public const string MaxRelaysPath = "mtcp.agent.serve.max-connections";
    public const string MigrationPath = "mtcp.agent.migration";

    /// <summary>The prefix of a Unix socket path in <see cref="ControlEndpointPath"/>.</summary>
    public const string UnixPrefix = "unix:";

    public const string ServiceEndpointsPath = "mtcp.agent.service-endpoints";
    public const string PolicyPath = "mtcp.agent.policy";
    public const string MetricsEndpointPath = "mtcp.agent.metrics.prometheus-endpoint";

    /// <summary>Where serve's Prometheus scrape endpoint listens (<c>mtcp.agent.metrics.prometheus-endpoint</c>); null when off.</summary>
    public IPEndPoint? MetricsEndpoint { get; init; }

    public static AgentSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new AgentSettings(
            HoconValues.EndPoints(config, ServiceEndpointsPath),
            HoconValues.Duration(config, "mtcp.agent.connect-timeout", allowZero: false),
            HoconValues.EndPoint(config, "mtcp.agent.serve.listen"),
            HoconValues.Duration(config, "mtcp.agent.serve.idle-timeout", allowZero: true),
            HoconValues.Size(config, "mtcp.agent.serve.relay-buffer-size", 1024, 4 << 20),
            ControlEndpointOf(config),
            HoconValues.Duration(config, "mtcp.agent.fetch.stall-timeout", allowZero: false),
            PolicyOf(config),
            HoconValues.Integer(config, MaxRelaysPath, 1, 1_000_000),
            HoconValues.Boolean(config, MigrationPath))
        {
            MetricsEndpoint = PrometheusEndpoint.Configured(config, MetricsEndpointPath),
        };
    }

    /// <summary>A Unix socket (<c>unix:&lt;path&gt;</c>, relative to the working directory) or an <c>address:port</c> for TCP.</summary>
    private static EndPoint ControlEndpointOf(Config config)
    {
        var text = HoconValues.Text(config, ControlEndpointPath);
        if (!text.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            return HoconValues.EndPoint(config, ControlEndpointPath);
        }

        var path = text[UnixPrefix.Length..];
        return path.Length > 0
            ? new System.Net.Sockets.UnixDomainSocketEndPoint(Path.GetFullPath(path))
            : throw HoconValues.Invalid(config, ControlEndpointPath, "must be unix:<path> or address:port");
    }

    /// <summary>The service pool, or a configuration error naming the key when it is empty.</summary>
    public IReadOnlyList<IPEndPoint> RequireServices() =>
        ServiceEndpoints.Count > 0 ? ServiceEndpoints : throw new ConfigurationException($"{ServiceEndpointsPath} is empty: name at least one service endpoint");

    /// <summary>
    /// The alternates of <paramref name="current"/> within the service pool: the pool's other endpoints with the same port
    /// (the same application on another node), in pool order starting after <paramref name="current"/>. The servers'
    /// TCP_MIGRATE list cannot serve here: it announces every application's endpoints, whatever the port.
    /// </summary>
    public IReadOnlyList<IPEndPoint> AlternatesOf(IPEndPoint current)
    {
        var sameService = ServiceEndpoints.Where(endpoint => endpoint.Port == current.Port).ToList();
        var start = sameService.IndexOf(current) + 1;
        return [.. sameService.Skip(start).Concat(sameService.Take(start)).Where(endpoint => !endpoint.Equals(current))];
    }

    /// <summary>
    /// Where a connection served by <paramref name="current"/> may migrate: the alternates its server announced
    /// (TCP_MIGRATE on the SYN+ACK, from the cluster's view when the connection was set up or last migrated) with the
    /// same port, so a node that joined since the pool was written is a destination and one that left is not; the
    /// pool's alternates (<see cref="AlternatesOf"/>) only when the server announced none (migration off, or a
    /// server alone).
    /// </summary>
    public IReadOnlyList<ServerEndpoint> DestinationsOf(IPEndPoint current, IReadOnlyList<ServerEndpoint> announced)
    {
        var self = MigrationCauses.Endpoint(current);
        var sameService = announced.Where(endpoint => endpoint.Port == current.Port && endpoint != self).Distinct().ToList();
        return sameService.Count > 0 ? sameService : [.. AlternatesOf(current).Select(MigrationCauses.Endpoint)];
    }

    private static readonly Dictionary<string, PolicyKind> TriggerNames = new()
    {
        ["throughput"] = PolicyKind.Throughput,
        ["response-time"] = PolicyKind.ResponseTime,
        ["latency"] = PolicyKind.Latency,
    };

    /// <summary>
    /// The agent's triggers: a list such as <c>[throughput, response-time]</c>, one trigger's name, or <c>off</c> (as
    /// <c>[]</c>). Their parameters, the destination choice and the guard rails are those of <c>mtcp.policies.client</c>;
    /// the agent's list replaces its trigger list.
    /// </summary>
    private static ClientPolicySettings? PolicyOf(Config config)
    {
        IReadOnlyList<PolicyKind> triggers;
        if (config.GetValue(PolicyPath) is { } value && value.IsString())
        {
            var name = HoconValues.Text(config, PolicyPath);
            triggers = name == "off"
                ? []
                : TriggerNames.TryGetValue(name, out var single)
                    ? [single]
                    : throw HoconValues.Invalid(config, PolicyPath, $"must be off, one of {string.Join(", ", TriggerNames.Keys)}, or a list of them");
        }
        else
        {
            triggers = HoconValues.Choices(config, PolicyPath, TriggerNames);
        }

        if (triggers.Count == 0)
        {
            return null;
        }

        var settings = ClientPolicySettings.Create(config) with { Triggers = triggers };

        // The agent has no SRTT to judge a gap by (the runtime exposes none): without a fixed bound the latency
        // trigger would never fire, a policy that looks on and is not.
        if (triggers.Contains(PolicyKind.Latency) && settings.Latency.FixedBound == TimeSpan.Zero)
        {
            throw new ConfigurationException($"{PolicyPath} names latency, which the agent judges by {LatencySettings.Prefix}.fixed-bound only (it has no SRTT), and that is 0ms: set the gap the service's stream must not exceed");
        }

        return settings;
    }
}

using System.Net;
using Akka.Configuration;
using Mtcp.Actors;
using Mtcp.Hosting;

namespace Mtcp.Agent;

/// <summary>
/// The <c>mtcp.agent</c> section, validated; a bad key fails with a <see cref="ConfigurationException"/> naming it.
/// Units and defaults: HOCON/mtcp-reference.conf.
/// </summary>
public sealed record AgentSettings(
    IReadOnlyList<IPEndPoint> ServiceEndpoints,
    TimeSpan ConnectTimeout,
    IPEndPoint ServeListen,
    TimeSpan IdleTimeout,
    int RelayBufferSize,
    IPEndPoint ControlEndpoint,
    TimeSpan FetchStallTimeout)
{
    public const string ServiceEndpointsPath = "mtcp.agent.service-endpoints";

    public static AgentSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new AgentSettings(
            HoconValues.EndPoints(config, ServiceEndpointsPath),
            HoconValues.Duration(config, "mtcp.agent.connect-timeout", allowZero: false),
            HoconValues.EndPoint(config, "mtcp.agent.serve.listen"),
            HoconValues.Duration(config, "mtcp.agent.serve.idle-timeout", allowZero: true),
            HoconValues.Size(config, "mtcp.agent.serve.relay-buffer-size", 1024, 4 << 20),
            HoconValues.EndPoint(config, "mtcp.agent.control-endpoint"),
            HoconValues.Duration(config, "mtcp.agent.fetch.stall-timeout", allowZero: false));
    }

    /// <summary>The service pool, or a configuration error naming the key when it is empty.</summary>
    public IReadOnlyList<IPEndPoint> RequireServices() =>
        ServiceEndpoints.Count > 0 ? ServiceEndpoints : throw new ConfigurationException($"{ServiceEndpointsPath} is empty: name at least one service endpoint");
}

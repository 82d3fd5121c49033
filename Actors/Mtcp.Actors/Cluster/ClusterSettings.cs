using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Wire;

namespace Mtcp.Actors;

/// <summary>
/// The <c>mtcp.cluster</c> section of the configuration (what a server node announces to the cooperating
/// servers), read once and validated. Units and defaults are documented in HOCON/mtcp-reference.conf; a
/// missing or invalid key fails with a <see cref="ConfigurationException"/> that names the key.
/// </summary>
public sealed record ClusterSettings
{
    public const string ServiceEndpointsPath = "mtcp.cluster.service-endpoints";
    public const string AnnounceRetryIntervalPath = "mtcp.cluster.announce-retry-interval";

    private ClusterSettings(IReadOnlyList<ServerEndpoint> serviceEndpoints, TimeSpan announceRetryInterval)
    {
        ServiceEndpoints = serviceEndpoints;
        AnnounceRetryInterval = announceRetryInterval;
    }

    /// <summary>Where clients reach this node's MTCP service, in the order given.</summary>
    public IReadOnlyList<ServerEndpoint> ServiceEndpoints { get; }

    /// <summary>How often the directory re-announces itself to Up members not heard from yet.</summary>
    public TimeSpan AnnounceRetryInterval { get; }

    public static ClusterSettings Create(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        return Create(system.Settings.Config);
    }

    /// <summary>Reads and validates the settings; throws <see cref="ConfigurationException"/> naming the first bad key.</summary>
    public static ClusterSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        RequirePresent(config, ServiceEndpointsPath);
        RequirePresent(config, AnnounceRetryIntervalPath);

        IList<string> texts;
        try
        {
            texts = config.GetStringList(ServiceEndpointsPath);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw new ConfigurationException($"{ServiceEndpointsPath} must be a list of \"address:port\" strings", e);
        }

        var endpoints = new List<ServerEndpoint>(texts.Count);
        foreach (var text in texts)
        {
            var endpoint = ParseEndpoint(text);
            if (endpoints.Contains(endpoint))
            {
                throw new ConfigurationException($"{ServiceEndpointsPath} lists {text} twice");
            }

            endpoints.Add(endpoint);
        }

        TimeSpan interval;
        try
        {
            interval = config.GetTimeSpan(AnnounceRetryIntervalPath, null, allowInfinite: false);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            var requirement = config.GetString(AnnounceRetryIntervalPath).TrimStart().StartsWith('-') ? "must be positive" : "must be a duration such as 500ms or 1s";
            throw new ConfigurationException($"{AnnounceRetryIntervalPath} {requirement}, got {config.GetString(AnnounceRetryIntervalPath)}", e);
        }

        if (interval <= TimeSpan.Zero)
        {
            throw new ConfigurationException($"{AnnounceRetryIntervalPath} must be positive, got {config.GetString(AnnounceRetryIntervalPath)}");
        }

        return new ClusterSettings(endpoints, interval);
    }

    private static ServerEndpoint ParseEndpoint(string text)
    {
        if (!IPEndPoint.TryParse(text, out var parsed) || !text.Contains(':', StringComparison.Ordinal) || text.EndsWith(']'))
        {
            throw new ConfigurationException($"{ServiceEndpointsPath} entry {text} must be \"address:port\", e.g. 10.0.0.2:80 or [2001:db8::2]:80");
        }

        if (parsed.Port is < 1 or > ushort.MaxValue)
        {
            throw new ConfigurationException($"{ServiceEndpointsPath} entry {text} must have a port from 1 to 65535");
        }

        if (parsed.Address.Equals(IPAddress.Any) || parsed.Address.Equals(IPAddress.IPv6Any))
        {
            throw new ConfigurationException($"{ServiceEndpointsPath} entry {text} must name a concrete address: clients cannot connect to {parsed.Address}");
        }

        return new ServerEndpoint(IpAddress.FromIPAddress(parsed.Address), (ushort)parsed.Port);
    }

    private static void RequirePresent(Config config, string path)
    {
        if (!config.HasPath(path))
        {
            throw new ConfigurationException(
                $"{path} is missing: layer the node's configuration over the reference one with MtcpConfig.WithFallback");
        }
    }
}

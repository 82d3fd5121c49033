using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Wire;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// The <c>mtcp.cluster</c> section of the configuration (what a server node announces to the cooperating
/// servers), read once and validated. Units and defaults are documented in HOCON/mtcp-reference.conf; a
/// missing or invalid key fails with a <see cref="ConfigurationException"/> that names the key.
/// </summary>
internal sealed record ClusterSettings
{
    public const string ServiceEndpointsPath = "mtcp.cluster.service-endpoints";
    public const string AnnounceRetryIntervalPath = "mtcp.cluster.announce-retry-interval";
    public const string DownCrashedMembersPath = "mtcp.cluster.down-crashed-members";
    public const string CrashProbeTimeoutPath = "mtcp.cluster.crash-probe-timeout";

    private ClusterSettings(IReadOnlyList<ServerEndpoint> serviceEndpoints, TimeSpan announceRetryInterval, bool downCrashedMembers, TimeSpan crashProbeTimeout)
    {
        ServiceEndpoints = serviceEndpoints;
        AnnounceRetryInterval = announceRetryInterval;
        DownCrashedMembers = downCrashedMembers;
        CrashProbeTimeout = crashProbeTimeout;
    }

    /// <summary>Where clients reach this node's MTCP service, in the order given.</summary>
    public IReadOnlyList<ServerEndpoint> ServiceEndpoints { get; }

    /// <summary>How often the directory re-announces itself to Up members not heard from yet.</summary>
    public TimeSpan AnnounceRetryInterval { get; }

    /// <summary>Whether an unreachable member whose control port refuses connections is downed at once (<see cref="CrashedMemberDowning"/>).</summary>
    public bool DownCrashedMembers { get; }

    /// <summary>How long a probe of an unreachable member's control port waits for an answer, and the pause between probes.</summary>
    public TimeSpan CrashProbeTimeout { get; }

    public static ClusterSettings Create(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        return Create(system.Settings.Config);
    }

    /// <summary>Reads and validates the settings; throws <see cref="ConfigurationException"/> naming the first bad key.</summary>
    public static ClusterSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var endpoints = new List<ServerEndpoint>();
        foreach (var parsed in HoconValues.EndPoints(config, ServiceEndpointsPath))
        {
            var endpoint = new ServerEndpoint(IpAddress.FromIPAddress(parsed.Address), (ushort)parsed.Port);
            if (endpoints.Contains(endpoint))
            {
                throw new ConfigurationException($"{ServiceEndpointsPath} lists {parsed} twice");
            }

            endpoints.Add(endpoint);
        }

        return new ClusterSettings(
            endpoints,
            HoconValues.Duration(config, AnnounceRetryIntervalPath, allowZero: false),
            config.GetBoolean(DownCrashedMembersPath),
            HoconValues.Duration(config, CrashProbeTimeoutPath, allowZero: false));
    }
}

using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;

namespace Mtcp.Actors.Tests;

/// <summary>Configurations for ActorSystems playing server nodes on loopback, each on an ephemeral port.</summary>
internal static class TestNodes
{
    /// <summary>All members of one cluster share the system name.</summary>
    public const string ClusterSystemName = "mtcp";

    /// <summary>A node that talks to peers over Akka.Remote only, with the reference configuration plus <paramref name="overrides"/>.</summary>
    public static Config Remote(string overrides = "") => MtcpConfig.WithFallback(ConfigurationFactory.ParseString(overrides + """

        akka.actor.provider = remote
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        """));

    /// <summary>
    /// A cluster member announcing <paramref name="serviceEndpoints"/>. Terminating its system does not leave the
    /// cluster first, so a terminated node looks to the others like a crashed one.
    /// </summary>
    public static Config ClusterMember(IEnumerable<string> serviceEndpoints, string overrides = "") =>
        MtcpConfig.WithFallback(ConfigurationFactory.ParseString(overrides + $"""

            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = 127.0.0.1
            akka.remote.dot-netty.tcp.port = 0
            akka.coordinated-shutdown.run-by-actor-system-terminate = off
            akka.cluster.run-coordinated-shutdown-when-down = off
            mtcp.cluster.service-endpoints = [{string.Join(", ", serviceEndpoints.Select(e => $"\"{e}\""))}]
            """));

    public static Address AddressOf(ActorSystem system) => ((ExtendedActorSystem)system).Provider.DefaultAddress;
}

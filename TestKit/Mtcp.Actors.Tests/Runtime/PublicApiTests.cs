using Akka.Configuration;
using Mtcp.Actors.Api;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// The runtime's public surface is its <c>Api/</c> folder: hosts and library users compose a node from it alone, and
/// everything under it can change without breaking them.
/// </summary>
[Trait("Category", "Actors")]
public sealed class PublicApiTests
{
    [Fact]
    public void Every_public_type_of_the_runtime_must_live_in_its_api_namespace()
    {
        var outside = typeof(MtcpRuntime).Assembly.GetExportedTypes()
            .Where(type => type.Namespace != typeof(MtcpRuntime).Namespace)
            .Select(type => type.FullName)
            .ToList();

        Assert.Empty(outside);
    }

    [Fact]
    public void Empty_service_endpoints_must_be_filled_with_the_local_address_and_the_listeners_ports()
    {
        var config = ConfigurationFactory.ParseString("mtcp.runtime.local-address = \"127.0.0.7\"");

        var filled = MtcpServerNode.WithServiceEndpoints(config, [8080, 6379]);

        Assert.Equal(["127.0.0.7:8080", "127.0.0.7:6379"], filled.GetStringList("mtcp.cluster.service-endpoints"));
    }

    [Fact]
    public void Configured_service_endpoints_must_be_kept()
    {
        var config = ConfigurationFactory.ParseString("""
            mtcp.runtime.local-address = "127.0.0.7"
            mtcp.cluster.service-endpoints = ["10.0.0.1:80"]
            """);

        var kept = MtcpServerNode.WithServiceEndpoints(config, [8080]);

        Assert.Equal(["10.0.0.1:80"], kept.GetStringList("mtcp.cluster.service-endpoints"));
    }

    [Fact]
    public void A_service_endpoint_listed_twice_must_be_refused_naming_it()
    {
        var config = ConfigurationFactory.ParseString("mtcp.runtime.local-address = \"127.0.0.7\"");

        var refused = Assert.Throws<ConfigurationException>(() => MtcpServerNode.WithServiceEndpoints(config, [8080, 8080]));

        Assert.Contains("127.0.0.7:8080", refused.Message, StringComparison.Ordinal);
    }
}

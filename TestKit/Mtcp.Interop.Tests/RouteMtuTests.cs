using System.Net.Sockets;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Interop.Tests;

/// <summary>
/// The route MTU read from the kernel (connected UDP socket, IP_MTU), and the largest segment each transport derives
/// from it, in a pair of network namespaces whose veth link the test gives a chosen MTU.
/// </summary>
[Trait("Category", "Netns")]
public sealed class RouteMtuTests
{
    [Fact]
    public void Route_mtu_must_be_the_mtu_of_the_interface_the_route_leaves_by_in_the_namespace_it_was_opened_in()
    {
        NetnsPrerequisites.RequireRoot();
        using var pair = VethNamespacePair.Create();
        pair.A.Exec("ip", "link", "set", "dev", VethNamespacePair.InterfaceName, "mtu", "1400");

        // Opened inside each namespace, asked from this thread (outside both): the routes are the namespace's.
        using var routesA = pair.A.Run(() => RouteMtu.Open(AddressFamily.InterNetwork));
        using var routesB = pair.B.Run(() => RouteMtu.Open(AddressFamily.InterNetwork));
        Assert.Equal(1400, routesA.Of(VethNamespacePair.AddressB));
        Assert.Equal(1500, routesB.Of(VethNamespacePair.AddressA));

        // Loopback's 65,536-byte MTU, as IPv4 can use it: one packet is at most 65,535 bytes.
        Assert.Equal(65535, routesA.Of(IpAddress.Parse("127.0.0.1")));

        // The namespaces have no default route: the kernel knows no MTU for an address off the link, and the socket
        // still answers for the next address.
        Assert.Null(routesA.Of(IpAddress.Parse("192.0.2.1")));
        Assert.Equal(1400, routesA.Of(VethNamespacePair.AddressB));
        Assert.Null(routesA.Of(IpAddress.Parse("::1")));
    }

    [Fact]
    public void Transports_must_take_their_carrier_headers_off_the_route_mtu()
    {
        NetnsPrerequisites.RequireRoot();
        using var pair = VethNamespacePair.Create();
        pair.A.Exec("ip", "link", "set", "dev", VethNamespacePair.InterfaceName, "mtu", "1400");

        using var raw = pair.A.Run(() => RawIPv4Transport.OpenExperimental(VethNamespacePair.AddressA));
        Assert.Equal(1400 - 20, raw.MaxSegmentLengthTo(VethNamespacePair.AddressB));
        Assert.Equal(raw.MaxSegmentLength, raw.MaxSegmentLengthTo(VethNamespacePair.AddressA));

        using var udp = pair.A.Run(() => UdpEncapsulationTransport.Open(VethNamespacePair.AddressA, 0, 0));
        Assert.Equal(1400 - 20 - 8, udp.MaxSegmentLengthTo(VethNamespacePair.AddressB));
        Assert.Null(udp.MaxSegmentLengthTo(IpAddress.Parse("192.0.2.1")));
    }
}

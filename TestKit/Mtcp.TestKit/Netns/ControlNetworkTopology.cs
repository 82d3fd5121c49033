using System.Net.Sockets;
using Mtcp.Wire;

namespace Mtcp.TestKit.Netns;

/// <summary>One server host of a <see cref="ControlNetworkTopology"/>: its namespace and its address on each network.</summary>
public sealed record ServerHost(NetworkNamespace Namespace, IpAddress ServiceAddress, IpAddress ControlAddress);

/// <summary>
/// The test-bed of thesis fig. 5.1 in network namespaces: a client and two cooperating servers on one service
/// network, and an exclusive link between the servers that carries only the state transfers (thesis 5.1).
/// <code>
///   client 10.51.0.1 ──svc0──┐
///                            hub0 (a bridge in the hub namespace)
///   S1     10.51.0.2 ──svc0──┤
///   S2     10.51.0.3 ──svc0──┘
///   S1     10.52.0.1 ──ctl0── veth ──ctl0── 10.52.0.2 S2
/// </code>
/// The service network is a bridge in a namespace of its own, standing for the thesis's dedicated hub: a
/// capture on <see cref="HubBridge"/> sees every frame of it. The control network is a veth pair straight
/// between the servers on a subnet of its own, so no route joins the two networks. Every namespace is the
/// test's own (uniquely named), and dispose removes them all, with their links, even after a failed setup.
/// Over IPv6 the same test-bed has the addresses fd00:51::1-3/64 (service) and fd00:52::1-2/64 (control).
/// </summary>
public sealed class ControlNetworkTopology : IDisposable
{
    public const string ServiceInterface = "svc0";
    public const string ControlInterface = "ctl0";
    public const string HubBridge = "hub0";
    public const int PrefixLength = 24;

    public const int IPv6PrefixLength = 64;

    public static readonly IpAddress ClientServiceAddress = IpAddress.Parse("10.51.0.1");
    public static readonly IpAddress ClientServiceAddressV6 = IpAddress.Parse("fd00:51::1");

    private readonly List<NetworkNamespace> _namespaces;

    private ControlNetworkTopology(List<NetworkNamespace> namespaces, IpAddress clientAddress, ServerHost server1, ServerHost server2)
    {
        _namespaces = namespaces;
        ClientAddress = clientAddress;
        Server1 = server1;
        Server2 = server2;
    }

    /// <summary>The client's address on the service network, of the family the topology was created with.</summary>
    public IpAddress ClientAddress { get; }

    public NetworkNamespace Client => _namespaces[0];

    /// <summary>The namespace holding the service network's bridge.</summary>
    public NetworkNamespace Hub => _namespaces[1];

    public ServerHost Server1 { get; }

    public ServerHost Server2 { get; }

    /// <param name="family">IPv4 (10.51.0.0/24, 10.52.0.0/24) or IPv6 (fd00:51::/64, fd00:52::/64) on both networks.</param>
    public static ControlNetworkTopology Create(AddressFamily family = AddressFamily.InterNetwork)
    {
        var ipv6 = family switch
        {
            AddressFamily.InterNetwork => false,
            AddressFamily.InterNetworkV6 => true,
            _ => throw new ArgumentOutOfRangeException(nameof(family), family, "IPv4 or IPv6"),
        };
        var prefixLength = ipv6 ? IPv6PrefixLength : PrefixLength;
        var clientAddress = ipv6 ? ClientServiceAddressV6 : ClientServiceAddress;
        NetnsPrerequisites.RequireRoot();
        var namespaces = new List<NetworkNamespace>();
        try
        {
            foreach (var tag in new[] { "client", "hub", "s1", "s2" })
            {
                namespaces.Add(NetworkNamespace.Create(tag));
            }

            var (client, hub) = (namespaces[0], namespaces[1]);
            var server1 = ipv6
                ? new ServerHost(namespaces[2], IpAddress.Parse("fd00:51::2"), IpAddress.Parse("fd00:52::1"))
                : new ServerHost(namespaces[2], IpAddress.Parse("10.51.0.2"), IpAddress.Parse("10.52.0.1"));
            var server2 = ipv6
                ? new ServerHost(namespaces[3], IpAddress.Parse("fd00:51::3"), IpAddress.Parse("fd00:52::2"))
                : new ServerHost(namespaces[3], IpAddress.Parse("10.51.0.3"), IpAddress.Parse("10.52.0.2"));
            var ports = new List<string>();
            foreach (var (host, address) in new[] { (client, clientAddress), (server1.Namespace, server1.ServiceAddress), (server2.Namespace, server2.ServiceAddress) })
            {
                // The hub's end of each link is named after the host it leads to: "client", "s1", "s2".
                var port = host.Name[(host.Name.LastIndexOf('-') + 1)..];
                host.AddVethPair(ServiceInterface, hub, port);
                host.ConfigureInterface(ServiceInterface, address, prefixLength);
                ports.Add(port);
            }

            hub.AddBridge(HubBridge, [.. ports]);
            server1.Namespace.AddVethPair(ControlInterface, server2.Namespace, ControlInterface);
            server1.Namespace.ConfigureInterface(ControlInterface, server1.ControlAddress, prefixLength);
            server2.Namespace.ConfigureInterface(ControlInterface, server2.ControlAddress, prefixLength);
            return new ControlNetworkTopology(namespaces, clientAddress, server1, server2);
        }
        catch
        {
            DisposeAll(namespaces);
            throw;
        }
    }

    public void Dispose() => DisposeAll(_namespaces);

    public override string ToString() =>
        $"service network {ClientAddress} ({Client}), {Server1.ServiceAddress} ({Server1.Namespace}), {Server2.ServiceAddress} ({Server2.Namespace}) "
        + $"on bridge {HubBridge} in {Hub}; control network {Server1.ControlAddress} <-veth-> {Server2.ControlAddress}";

    private static void DisposeAll(List<NetworkNamespace> namespaces)
    {
        // Deleting a namespace deletes its interfaces and their veth peers; each is removed whatever the others do.
        var failures = new List<Exception>();
        foreach (var ns in namespaces)
        {
            try
            {
                ns.Dispose();
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                failures.Add(e);
            }
        }

        if (failures.Count > 0)
        {
            throw new AggregateException("removing the topology's namespaces failed", failures);
        }
    }
}

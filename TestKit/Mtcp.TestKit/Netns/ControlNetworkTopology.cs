using System.Net.Sockets;
using Mtcp.Wire;

namespace Mtcp.TestKit.Netns;

/// <summary>One server host of a <see cref="ControlNetworkTopology"/>: its namespace and its address on each network.</summary>
public sealed record ServerHost(NetworkNamespace Namespace, IpAddress ServiceAddress, IpAddress ControlAddress);

/// <summary>
/// The test-bed of thesis fig. 5.1 in network namespaces: a client and two (or more) cooperating servers on one
/// service network, and a network of their own between the servers that carries only the state transfers and the
/// cluster's gossip (thesis 5.1).
/// <code>
///   client 10.51.0.1 ──svc0──┐
///                            hub0 (a bridge in the hub namespace)
///   S1     10.51.0.2 ──svc0──┤
///   S2     10.51.0.3 ──svc0──┤
///   S3     10.51.0.4 ──svc0──┘   (with three servers)
///
///   S1     10.52.0.1 ──ctl0──┐
///   S2     10.52.0.2 ──ctl0──┤ ctlhub0 (a second bridge in the hub namespace)
///   S3     10.52.0.3 ──ctl0──┘
/// </code>
/// Each network is a bridge in the hub namespace, standing for the thesis's dedicated hubs: a capture on
/// <see cref="HubBridge"/> sees every frame of the service network, and a <see cref="ControlNetworkPartition"/> cuts a
/// server's port of <see cref="ControlBridge"/>. The two networks are on subnets of their own and the hub namespace has
/// no address, so no route joins them. Every namespace is the test's own (uniquely named), and dispose removes them
/// all, with their links, even after a failed setup. Over IPv6 the same test-bed has the addresses fd00:51::1-4/64
/// (service) and fd00:52::1-3/64 (control).
/// </summary>
public sealed class ControlNetworkTopology : IDisposable
{
    public const string ServiceInterface = "svc0";
    public const string ControlInterface = "ctl0";
    public const string HubBridge = "hub0";
    public const string ControlBridge = "ctlhub0";
    public const int PrefixLength = 24;

    public const int IPv6PrefixLength = 64;

    public static readonly IpAddress ClientServiceAddress = IpAddress.Parse("10.51.0.1");
    public static readonly IpAddress ClientServiceAddressV6 = IpAddress.Parse("fd00:51::1");

    private readonly List<NetworkNamespace> _namespaces;

    private ControlNetworkTopology(List<NetworkNamespace> namespaces, IpAddress clientAddress, IReadOnlyList<ServerHost> servers)
    {
        _namespaces = namespaces;
        ClientAddress = clientAddress;
        Servers = servers;
    }

    /// <summary>The client's address on the service network, of the family the topology was created with.</summary>
    public IpAddress ClientAddress { get; }

    public NetworkNamespace Client => _namespaces[0];

    /// <summary>The namespace holding the bridges of the service network and of the control network.</summary>
    public NetworkNamespace Hub => _namespaces[1];

    /// <summary>The server hosts, S1 first.</summary>
    public IReadOnlyList<ServerHost> Servers { get; }

    public ServerHost Server1 => Servers[0];

    public ServerHost Server2 => Servers[1];

    /// <param name="family">IPv4 (10.51.0.0/24, 10.52.0.0/24) or IPv6 (fd00:51::/64, fd00:52::/64) on both networks.</param>
    /// <param name="servers">how many server hosts: two (thesis fig. 5.1) or three (a majority survives the loss of one).</param>
    public static ControlNetworkTopology Create(AddressFamily family = AddressFamily.InterNetwork, int servers = 2)
    {
        var ipv6 = family switch
        {
            AddressFamily.InterNetwork => false,
            AddressFamily.InterNetworkV6 => true,
            _ => throw new ArgumentOutOfRangeException(nameof(family), family, "IPv4 or IPv6"),
        };
        ArgumentOutOfRangeException.ThrowIfLessThan(servers, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(servers, 3);
        var prefixLength = ipv6 ? IPv6PrefixLength : PrefixLength;
        var clientAddress = ipv6 ? ClientServiceAddressV6 : ClientServiceAddress;
        NetnsPrerequisites.RequireRoot();
        var namespaces = new List<NetworkNamespace>();
        try
        {
            foreach (var tag in new[] { "client", "hub" }.Concat(Enumerable.Range(1, servers).Select(n => $"s{n}")))
            {
                namespaces.Add(NetworkNamespace.Create(tag));
            }

            var (client, hub) = (namespaces[0], namespaces[1]);
            var hosts = Enumerable.Range(1, servers).Select(n => ipv6
                    ? new ServerHost(namespaces[n + 1], IpAddress.Parse($"fd00:51::{n + 1}"), IpAddress.Parse($"fd00:52::{n}"))
                    : new ServerHost(namespaces[n + 1], IpAddress.Parse($"10.51.0.{n + 1}"), IpAddress.Parse($"10.52.0.{n}")))
                .ToList();
            var servicePorts = new List<string>();
            foreach (var (host, address) in hosts.Select(server => (server.Namespace, server.ServiceAddress)).Prepend((client, clientAddress)))
            {
                // The hub's end of each link is named after the host it leads to: "client", "s1", "s2", ...
                var port = PortName(host);
                host.AddVethPair(ServiceInterface, hub, port);
                host.ConfigureInterface(ServiceInterface, address, prefixLength);
                servicePorts.Add(port);
            }

            hub.AddBridge(HubBridge, [.. servicePorts]);
            foreach (var server in hosts)
            {
                server.Namespace.AddVethPair(ControlInterface, hub, ControlPortName(server));
                server.Namespace.ConfigureInterface(ControlInterface, server.ControlAddress, prefixLength);
            }

            hub.AddBridge(ControlBridge, [.. hosts.Select(ControlPortName)]);
            return new ControlNetworkTopology(namespaces, clientAddress, hosts);
        }
        catch
        {
            DisposeAll(namespaces);
            throw;
        }
    }

    /// <summary>The hub's end of <paramref name="server"/>'s control link, a port of <see cref="ControlBridge"/>: "c-s1", "c-s2", ...</summary>
    public static string ControlPortName(ServerHost server)
    {
        ArgumentNullException.ThrowIfNull(server);
        return $"c-{PortName(server.Namespace)}";
    }

    public void Dispose() => DisposeAll(_namespaces);

    public override string ToString() =>
        $"service network {ClientAddress} ({Client}), {string.Join(", ", Servers.Select(server => $"{server.ServiceAddress} ({server.Namespace})"))} "
        + $"on bridge {HubBridge} in {Hub}; control network {string.Join(", ", Servers.Select(server => server.ControlAddress))} on bridge {ControlBridge}";

    private static string PortName(NetworkNamespace host) => host.Name[(host.Name.LastIndexOf('-') + 1)..];

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

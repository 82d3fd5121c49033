using Mtcp.Wire;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// Three network namespaces in a line, client - router - server, joined by two veth pairs, with forwarding on in the
/// router and each end's route to the other's subnet through it: a path whose second link may have a smaller MTU
/// than the first, so that the router, not the sender, finds a packet too big (RFC 1191, RFC 8201). The endpoints'
/// interfaces are at 1500 bytes; only the router's interface toward the server gets <c>serverLinkMtu</c>, so a
/// packet from the server is never dropped by it (veth refuses frames above the receiving interface's MTU, silently),
/// while one from the client above that MTU is answered with ICMP "fragmentation needed" or "packet too big".
/// Dispose removes the namespaces, and with them the links.
/// </summary>
public sealed class RoutedNamespacePath : IDisposable
{
    public const string EndpointInterface = "mtcp0";
    public const string RouterClientInterface = "mtcpc";
    public const string RouterServerInterface = "mtcps";

    private RoutedNamespacePath(NetworkNamespace client, NetworkNamespace router, NetworkNamespace server, bool ipv6)
    {
        Client = client;
        Router = router;
        Server = server;
        (ClientAddress, RouterClientAddress, RouterServerAddress, ServerAddress) = ipv6
            ? (IpAddress.Parse("fd00:97:1::2"), IpAddress.Parse("fd00:97:1::1"), IpAddress.Parse("fd00:97:2::1"), IpAddress.Parse("fd00:97:2::2"))
            : (IpAddress.Parse("10.97.1.2"), IpAddress.Parse("10.97.1.1"), IpAddress.Parse("10.97.2.1"), IpAddress.Parse("10.97.2.2"));
    }

    public NetworkNamespace Client { get; }

    public NetworkNamespace Router { get; }

    public NetworkNamespace Server { get; }

    public IpAddress ClientAddress { get; }

    public IpAddress RouterClientAddress { get; }

    public IpAddress RouterServerAddress { get; }

    public IpAddress ServerAddress { get; }

    /// <summary>Builds the path in <paramref name="ipv6"/>'s family, the router's link toward the server at <paramref name="serverLinkMtu"/>.</summary>
    public static RoutedNamespacePath Create(bool ipv6, int serverLinkMtu)
    {
        NetnsPrerequisites.RequireRoot();
        var created = new List<NetworkNamespace>();
        try
        {
            created.Add(NetworkNamespace.Create("pmtu-client"));
            created.Add(NetworkNamespace.Create("pmtu-router"));
            created.Add(NetworkNamespace.Create("pmtu-server"));
            var path = new RoutedNamespacePath(created[0], created[1], created[2], ipv6);
            var prefix = ipv6 ? 64 : 24;
            path.Client.AddVethPair(EndpointInterface, path.Router, RouterClientInterface);
            path.Server.AddVethPair(EndpointInterface, path.Router, RouterServerInterface);
            path.Router.Exec("ip", "link", "set", "dev", RouterServerInterface, "mtu", serverLinkMtu.ToString(System.Globalization.CultureInfo.InvariantCulture));
            path.Client.ConfigureInterface(EndpointInterface, path.ClientAddress, prefix);
            path.Router.ConfigureInterface(RouterClientInterface, path.RouterClientAddress, prefix);
            path.Router.ConfigureInterface(RouterServerInterface, path.RouterServerAddress, prefix);
            path.Server.ConfigureInterface(EndpointInterface, path.ServerAddress, prefix);
            path.Router.SetSysctl(ipv6 ? "net.ipv6.conf.all.forwarding" : "net.ipv4.ip_forward", "1");
            var family = ipv6 ? "-6" : "-4";
            path.Client.Exec("ip", family, "route", "add", ipv6 ? "fd00:97:2::/64" : "10.97.2.0/24", "via", path.RouterClientAddress.ToString());
            path.Server.Exec("ip", family, "route", "add", ipv6 ? "fd00:97:1::/64" : "10.97.1.0/24", "via", path.RouterServerAddress.ToString());
            if (ipv6)
            {
                path.WaitForLinkLocalAddresses();
            }

            return path;
        }
        catch
        {
            foreach (var space in created)
            {
                space.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// Waits (up to 5 s) until no address of the three namespaces is tentative. The link-local addresses the kernel gives
    /// each interface still run duplicate address detection (RFC 4862 §5.4, a second or two) when the path is built, and
    /// until then the router cannot resolve its neighbours: the first packets across it are lost, and a lost SYN
    /// leaves the connection with a 3-second RTO (RFC 6298 §5.7) that the test's own losses would then back off.
    /// </summary>
    private void WaitForLinkLocalAddresses()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        foreach (var space in new[] { Client, Router, Server })
        {
            while (space.Exec("ip", "-6", "addr", "show", "tentative").StandardOutput.Trim().Length > 0 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
        }
    }

    /// <summary>IP datagrams the server's kernel reassembled from fragments (Ip6ReasmOKs, or Ip's ReasmOKs for IPv4).</summary>
    public long ServerReassemblies()
    {
        var ipv6 = ServerAddress.IsIPv6;
        var text = Server.Exec("cat", ipv6 ? "/proc/net/snmp6" : "/proc/net/snmp").StandardOutput;
        if (ipv6)
        {
            foreach (var line in text.Split('\n'))
            {
                var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (fields is ["Ip6ReasmOKs", var value])
                {
                    return long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                }
            }

            throw new InvalidOperationException("/proc/net/snmp6 has no Ip6ReasmOKs");
        }

        // Two "Ip:" lines, the field names then their values.
        var ipLines = text.Split('\n').Where(line => line.StartsWith("Ip: ", StringComparison.Ordinal)).ToArray();
        var names = ipLines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = ipLines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(values[Array.IndexOf(names, "ReasmOKs")], System.Globalization.CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        Client.Dispose();
        Router.Dispose();
        Server.Dispose();
    }
}

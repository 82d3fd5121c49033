using System.Globalization;
using System.Net;
using Mtcp.Hosting;

namespace Mtcp.Process.Tests;

/// <summary>
/// The ports launchers give the nodes they start: outside the ephemeral range, where an outgoing connection could take
/// a port between the pick and the node's bind, and never twice.
/// </summary>
[Trait("Category", "Process")]
public sealed class ListenPortsTests
{
    [Fact]
    public void A_picked_port_must_lie_below_the_ephemeral_range_and_never_repeat()
    {
        var firstEphemeral = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split('\t', ' ')[0], CultureInfo.InvariantCulture);

        var ports = Enumerable.Range(0, 200).Select(_ => ListenPorts.PickUnused(IPAddress.Loopback)).ToList();

        Assert.All(ports, port => Assert.InRange(port, 1024, firstEphemeral - 1));
        Assert.Equal(ports.Count, ports.Distinct().Count());
    }
}

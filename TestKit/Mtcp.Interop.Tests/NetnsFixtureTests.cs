using System.Net;
using System.Net.Sockets;
using Mtcp.TestKit.Netns;

namespace Mtcp.Interop.Tests;

[Trait("Category", "Netns")]
public sealed class NetnsFixtureTests
{
    [Fact]
    public void NetworkNamespace_must_be_uniquely_named_listed_while_alive_and_removed_on_dispose()
    {
        string first;
        string second;
        using (var a = NetworkNamespace.Create())
        using (var b = NetworkNamespace.Create())
        {
            first = a.Name;
            second = b.Name;
            Assert.NotEqual(first, second);
            var listed = HostCommand.RunChecked("ip", "netns", "list").StandardOutput;
            Assert.Contains(first, listed, StringComparison.Ordinal);
            Assert.Contains(second, listed, StringComparison.Ordinal);
            Assert.NotEqual(a.NamespaceId, b.NamespaceId);
        }

        var after = HostCommand.RunChecked("ip", "netns", "list").StandardOutput;
        Assert.DoesNotContain(first, after, StringComparison.Ordinal);
        Assert.DoesNotContain(second, after, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_must_execute_inside_the_namespace_and_leave_the_caller_where_it_was()
    {
        using var ns = NetworkNamespace.Create();
        var callerBefore = NetworkNamespace.CurrentThreadNamespaceId();
        var inside = ns.Run(NetworkNamespace.CurrentThreadNamespaceId);

        Assert.NotEqual(callerBefore, inside);
        Assert.Equal(callerBefore, NetworkNamespace.CurrentThreadNamespaceId());
        Assert.Throws<InvalidOperationException>(() => ns.Run<int>(() => throw new InvalidOperationException("propagated")));
        Assert.Equal(inside, ns.NamespaceId);
    }

    [Fact]
    public void Sockets_created_in_two_namespaces_must_talk_across_the_veth_pair_and_stay_there()
    {
        using var pair = VethNamespacePair.Create();
        var serverAddress = VethNamespacePair.AddressA.ToIPAddress();
        using var listener = pair.A.Run(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(serverAddress, 0));
            socket.Listen();
            return socket;
        });
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        using var client = pair.B.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));

        // The sockets were made on threads that have since left the namespaces; they still live there.
        client.Connect(new IPEndPoint(serverAddress, port));
        using var accepted = listener.Accept();
        Assert.Equal(VethNamespacePair.AddressB.ToIPAddress(), ((IPEndPoint)accepted.RemoteEndPoint!).Address);
        client.Send("ping"u8);
        var buffer = new byte[4];
        Assert.Equal(4, accepted.Receive(buffer));
        Assert.Equal("ping"u8.ToArray(), buffer);

        // The host namespace does not hold the test's addresses.
        using var outside = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var error = Assert.Throws<SocketException>(() => outside.Bind(new IPEndPoint(serverAddress, 0)));
        Assert.Equal(SocketError.AddressNotAvailable, error.SocketErrorCode);
    }

    [Fact]
    public void Exec_must_run_commands_inside_the_namespace()
    {
        using var pair = VethNamespacePair.Create();
        var addressesInA = pair.A.Exec("ip", "-o", "-4", "addr", "show", "dev", VethNamespacePair.InterfaceName).StandardOutput;
        Assert.Contains($"{VethNamespacePair.AddressA}/24", addressesInA, StringComparison.Ordinal);
        Assert.DoesNotContain(VethNamespacePair.AddressB.ToString(), addressesInA, StringComparison.Ordinal);
        Assert.False(pair.A.TryExec("false").Succeeded);
        Assert.Throws<InvalidOperationException>(() => pair.A.Exec("false"));
    }

    [Fact]
    public void SetSysctl_must_change_only_its_own_namespace()
    {
        using var pair = VethNamespacePair.Create();
        var hostValue = HostCommand.RunChecked("sysctl", "-n", "net.ipv4.tcp_sack").StandardOutput.Trim();

        pair.A.SetSysctl("net.ipv4.tcp_sack", "0");
        pair.B.SetSysctl("net.ipv4.tcp_sack", "1");

        Assert.Equal("0", pair.A.GetSysctl("net.ipv4.tcp_sack"));
        Assert.Equal("1", pair.B.GetSysctl("net.ipv4.tcp_sack"));
        Assert.Equal(hostValue, HostCommand.RunChecked("sysctl", "-n", "net.ipv4.tcp_sack").StandardOutput.Trim());
    }

    [Fact]
    public void VethNamespacePair_dispose_must_remove_both_namespaces()
    {
        var pair = VethNamespacePair.Create();
        var names = new[] { pair.A.Name, pair.B.Name };
        pair.Dispose();
        var listed = HostCommand.RunChecked("ip", "netns", "list").StandardOutput;
        Assert.All(names, name => Assert.DoesNotContain(name, listed, StringComparison.Ordinal));
    }
}

using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Mtcp.Wire;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// Two network namespaces, A and B, joined by a veth pair: A holds 10.99.0.1/24 and B 10.99.0.2/24 on
/// interfaces named <see cref="InterfaceName"/>, both up. The addresses are the test's own hosts; each
/// pair lives in namespaces of its own, so pairs never clash. Transmit checksum offload is switched off
/// on both ends: with it on, the kernel hands packets to the peer namespace, to raw sockets and to
/// captures with the TCP checksum not yet computed, and every kernel segment would look corrupt.
/// Dispose removes both namespaces (and with them the veth pair) even after a failed setup.
/// </summary>
public sealed class VethNamespacePair : IDisposable
{
    public const string InterfaceName = "mtcp0";
    public const int PrefixLength = 24;

    public static readonly IpAddress AddressA = IpAddress.Parse("10.99.0.1");
    public static readonly IpAddress AddressB = IpAddress.Parse("10.99.0.2");

    private VethNamespacePair(NetworkNamespace a, NetworkNamespace b)
    {
        A = a;
        B = b;
    }

    public NetworkNamespace A { get; }

    public NetworkNamespace B { get; }

    public static VethNamespacePair Create()
    {
        NetnsPrerequisites.RequireRoot();
        var a = NetworkNamespace.Create("a");
        NetworkNamespace? b = null;
        try
        {
            b = NetworkNamespace.Create("b");
            // Created inside A with its peer placed straight into B, so the interface names never meet
            // in the host namespace.
            a.Exec("ip", "link", "add", InterfaceName, "type", "veth", "peer", "name", InterfaceName, "netns", b.Name);
            Configure(a, AddressA);
            Configure(b, AddressB);
            return new VethNamespacePair(a, b);
        }
        catch
        {
            b?.Dispose();
            a.Dispose();
            throw;
        }
    }

    /// <summary>Adds another address of the /24 to the veth end in <paramref name="side"/> (for filtering tests).</summary>
    public void AddAddress(NetworkNamespace side, IpAddress address) =>
        side.Exec("ip", "addr", "add", $"{address}/{PrefixLength}", "dev", InterfaceName);

    private static void Configure(NetworkNamespace side, IpAddress address)
    {
        side.Exec("ip", "addr", "add", $"{address}/{PrefixLength}", "dev", InterfaceName);
        side.Run(() => DisableTransmitOffload(InterfaceName));
        side.Exec("ip", "link", "set", InterfaceName, "up");
    }

    /// <summary>
    /// ethtool -K IF tx off sg off tso off gso off, through SIOCETHTOOL: turns off transmit checksum
    /// offload and the segmentation offloads that depend on it. Must run inside the interface's namespace.
    /// </summary>
    private static void DisableTransmitOffload(string interfaceName)
    {
        using var control = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var fd = (int)control.SafeHandle.DangerousGetHandle();
        foreach (var command in new[]
        {
            NetnsNative.EthtoolSetTcpSegmentation,
            NetnsNative.EthtoolSetGenericSegmentation,
            NetnsNative.EthtoolSetScatterGather,
            NetnsNative.EthtoolSetTxChecksum,
        })
        {
            SetEthtoolValue(fd, interfaceName, command, 0);
        }
    }

    // struct ifreq { char ifr_name[16]; union { ...; void *ifr_data; } } is 40 bytes on 64-bit Linux;
    // struct ethtool_value { u32 cmd; u32 data; }.
    private static void SetEthtoolValue(int fd, string interfaceName, uint command, uint value)
    {
        var ethtoolValue = Marshal.AllocHGlobal(8);
        try
        {
            Marshal.WriteInt32(ethtoolValue, 0, (int)command);
            Marshal.WriteInt32(ethtoolValue, 4, (int)value);
            var request = new byte[40];
            Encoding.ASCII.GetBytes(interfaceName, request);
            MemoryMarshal.Write(request.AsSpan(16), in ethtoolValue);
            if (NetnsNative.Ioctl(fd, NetnsNative.SiocEthtool, request) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new InvalidOperationException($"SIOCETHTOOL command 0x{command:x} on {interfaceName} failed: errno {errno} ({Marshal.GetLastPInvokeErrorMessage()})");
            }
        }
        finally
        {
            Marshal.FreeHGlobal(ethtoolValue);
        }
    }

    public void Dispose()
    {
        try
        {
            A.Dispose();
        }
        finally
        {
            B.Dispose();
        }
    }

    public override string ToString() => $"{A.Name} ({AddressA}) <-veth-> {B.Name} ({AddressB})";
}

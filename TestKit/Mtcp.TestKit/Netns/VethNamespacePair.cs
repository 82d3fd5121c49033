using System.Net.Sockets;
using Mtcp.Wire;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// Two network namespaces, A and B, joined by a veth pair: A holds 10.99.0.1/24 and B 10.99.0.2/24 on
/// interfaces named <see cref="InterfaceName"/>, both up. The addresses are the test's own hosts; each
/// pair lives in namespaces of its own, so pairs never clash. Transmit checksum offload is switched off
/// on both ends (<see cref="NetworkNamespace.ConfigureInterface"/>).
/// Dispose removes both namespaces (and with them the veth pair) even after a failed setup.
/// </summary>
public sealed class VethNamespacePair : IDisposable
{
    public const string InterfaceName = "mtcp0";
    public const int PrefixLength = 24;

    public const int IPv6PrefixLength = 64;

    public static readonly IpAddress AddressA = IpAddress.Parse("10.99.0.1");
    public static readonly IpAddress AddressB = IpAddress.Parse("10.99.0.2");

    /// <summary>The IPv6 addresses of the two ends, on one /64 of the unique local range (RFC 4193).</summary>
    public static readonly IpAddress AddressA6 = IpAddress.Parse("fd00:99::1");
    public static readonly IpAddress AddressB6 = IpAddress.Parse("fd00:99::2");

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
            a.AddVethPair(InterfaceName, b, InterfaceName);
            a.ConfigureInterface(InterfaceName, AddressA, PrefixLength);
            b.ConfigureInterface(InterfaceName, AddressB, PrefixLength);
            a.AddAddress(InterfaceName, AddressA6, IPv6PrefixLength);
            b.AddAddress(InterfaceName, AddressB6, IPv6PrefixLength);
            return new VethNamespacePair(a, b);
        }
        catch
        {
            b?.Dispose();
            a.Dispose();
            throw;
        }
    }

    /// <summary>The addresses of ends A and B in <paramref name="family"/>: both ends have an IPv4 and an IPv6 address.</summary>
    public static (IpAddress A, IpAddress B) Addresses(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => (AddressA, AddressB),
        AddressFamily.InterNetworkV6 => (AddressA6, AddressB6),
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "IPv4 or IPv6"),
    };

    /// <summary>Adds another address of the /24 or the /64 to the veth end in <paramref name="side"/> (for filtering tests).</summary>
    public void AddAddress(NetworkNamespace side, IpAddress address) =>
        side.AddAddress(InterfaceName, address, address.IsIPv6 ? IPv6PrefixLength : PrefixLength);

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

    public override string ToString() => $"{A.Name} ({AddressA}, {AddressA6}) <-veth-> {B.Name} ({AddressB}, {AddressB6})";
}

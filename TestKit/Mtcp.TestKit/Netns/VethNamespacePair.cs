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
            a.AddVethPair(InterfaceName, b, InterfaceName);
            a.ConfigureInterface(InterfaceName, AddressA, PrefixLength);
            b.ConfigureInterface(InterfaceName, AddressB, PrefixLength);
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
    public void AddAddress(NetworkNamespace side, IpAddress address) => side.AddAddress(InterfaceName, address, PrefixLength);

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

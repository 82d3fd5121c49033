using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Interop.Tests.TransportAssertions;

namespace Mtcp.Interop.Tests;

[Trait("Category", "Interop")]
public sealed class RawIPTransportTests
{
    public static TheoryData<AddressFamily, byte> FamiliesAndProtocols
    {
        get
        {
            var data = new TheoryData<AddressFamily, byte>();
            foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
            {
                data.Add(family, RawIPTransport.ExperimentalProtocol);
                data.Add(family, RawIPTransport.TcpProtocol);
            }

            return data;
        }
    }

    private static IRawIPTransport Open(NetworkNamespace ns, IpAddress address, byte protocol) =>
        ns.Run(() => protocol == RawIPTransport.TcpProtocol
            ? RawIPTransport.OpenTcp(address)
            : RawIPTransport.OpenExperimental(address));

    [Theory]
    [MemberData(nameof(FamiliesAndProtocols))]
    public void Raw_must_carry_segments_across_the_veth_pair_with_the_ip_header_stripped(AddressFamily family, byte protocol)
    {
        using var pair = VethNamespacePair.Create();
        var (addressA, addressB) = VethNamespacePair.Addresses(family);
        using var a = Open(pair.A, addressA, protocol);
        using var b = Open(pair.B, addressB, protocol);
        Assert.Equal(protocol, a.Protocol);
        Assert.Equal(family == AddressFamily.InterNetwork ? typeof(RawIPv4Transport) : typeof(RawIPv6Transport), a.GetType());

        // 60 KB and the largest segment cross the 1500-byte veth as IP fragments, reassembled before delivery.
        AssertCarries(a, b, seed: protocol, 20, 1460, 60 * 1024, a.MaxSegmentLength);
        AssertCarries(b, a, seed: protocol + 1, 20, 1460, 60 * 1024);

        // IPv4 raw sockets return the IPv4 header, IPv6 ones only the payload (RFC 3542 §3).
        var buffer = new byte[b.ReceiveBufferLength];
        a.Send(b.LocalAddress, SeededBytes(3, 40));
        Assert.Equal(ReceiveOutcome.Received, b.Receive(buffer, ReceiveTimeout, out var received));
        Assert.Equal(family == AddressFamily.InterNetwork ? 20 : 0, received.Offset);
        Assert.Equal(40, received.Length);
        Assert.Equal(addressA, received.Source);
        Assert.Equal(addressB, received.Destination);
    }

    [Theory]
    [MemberData(nameof(FamiliesAndProtocols))]
    public void Raw_must_return_only_segments_addressed_to_its_own_address(AddressFamily family, byte protocol)
    {
        using var pair = VethNamespacePair.Create();
        var (addressA, addressB) = VethNamespacePair.Addresses(family);
        var otherAddress = IpAddress.Parse(family == AddressFamily.InterNetwork ? "10.99.0.3" : "fd00:99::3");
        pair.AddAddress(pair.B, otherAddress);
        using var a = Open(pair.A, addressA, protocol);
        using var b = Open(pair.B, addressB, protocol);
        using var other = Open(pair.B, otherAddress, protocol);

        AssertCarries(a, other, seed: 20, 100);
        var buffer = new byte[b.ReceiveBufferLength];
        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(200), out _));

        AssertCarries(a, b, seed: 21, 100);
        Assert.Equal(ReceiveOutcome.TimedOut, other.Receive(buffer, TimeSpan.FromMilliseconds(200), out _));
    }

    [Fact]
    public void Raw_IPv6_must_use_the_route_mtu_less_the_40_byte_header_and_refuse_IPv4_peers()
    {
        using var pair = VethNamespacePair.Create();
        using var a = Open(pair.A, VethNamespacePair.AddressA6, RawIPTransport.ExperimentalProtocol);
        Assert.Equal(1500 - 40, a.MaxSegmentLengthTo(VethNamespacePair.AddressB6));
        Assert.Null(a.MaxSegmentLengthTo(VethNamespacePair.AddressB));
        Assert.Throws<ArgumentException>(() => a.Send(VethNamespacePair.AddressB, SeededBytes(1, 40)));
    }

    [Fact]
    public void Raw_receive_must_not_allocate_per_segment()
    {
        using var pair = VethNamespacePair.Create();
        using var a = Open(pair.A, VethNamespacePair.AddressA, RawIPTransport.ExperimentalProtocol);
        using var b = Open(pair.B, VethNamespacePair.AddressB, RawIPTransport.ExperimentalProtocol);
        AssertReceiveAllocatesNothing(a, b);
    }

    [Fact]
    public void Raw_must_return_closed_when_disposed_during_a_blocking_receive()
    {
        using var pair = VethNamespacePair.Create();
        var b = Open(pair.B, VethNamespacePair.AddressB, RawIPTransport.ExperimentalProtocol);
        AssertDisposeEndsBlockingReceive(b);
    }

    [Fact]
    public void Raw_open_without_CAP_NET_RAW_must_say_that_root_is_needed_and_suggest_UDP()
    {
        InsufficientPrivilegeException? error = null;
        // Capabilities belong to a thread: drop CAP_NET_RAW on a throwaway thread only.
        var thread = new Thread(() =>
        {
            DropEffectiveCapability(CapNetRaw);
            error = Assert.Throws<InsufficientPrivilegeException>(() => RawIPv4Transport.OpenExperimental(IpAddress.Parse("127.0.0.1")));
        });
        thread.Start();
        thread.Join();

        Assert.NotNull(error);
        Assert.Contains("root", error.Message, StringComparison.Ordinal);
        Assert.Contains("CAP_NET_RAW", error.Message, StringComparison.Ordinal);
        Assert.Contains("UDP", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Raw_open_must_explain_an_address_that_is_not_local()
    {
        using var ns = NetworkNamespace.Create();
        var error = Assert.Throws<PacketTransportException>(() => ns.Run(() => RawIPv4Transport.OpenExperimental(IpAddress.Parse("10.99.7.7"))));
        Assert.Contains("10.99.7.7", error.Message, StringComparison.Ordinal);
    }

    private const int CapNetRaw = 13;
    private const uint LinuxCapabilityVersion3 = 0x20080522;

    private static void DropEffectiveCapability(int capability)
    {
        NetnsPrerequisites.RequireRoot();
        // struct __user_cap_header_struct { u32 version; int pid; } and two
        // struct __user_cap_data_struct { u32 effective, permitted, inheritable; }.
        var header = new[] { unchecked((int)LinuxCapabilityVersion3), 0 };
        var data = new int[6];
        Assert.Equal(0, CapGet(header, data));
        data[0] &= ~(1 << capability);
        Assert.Equal(0, CapSet(header, data));
    }

    [DllImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static extern int CapGet(int[] header, int[] data);

    [DllImport("libc", EntryPoint = "capset", SetLastError = true)]
    private static extern int CapSet(int[] header, int[] data);
}

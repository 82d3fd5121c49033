using System.Runtime.InteropServices;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using static Mtcp.Interop.Tests.TransportAssertions;

namespace Mtcp.Interop.Tests;

[Trait("Category", "Interop")]
public sealed class RawIPv4TransportTests
{
    public static TheoryData<byte> Protocols => new() { RawIPv4Transport.ExperimentalProtocol, RawIPv4Transport.TcpProtocol };

    private static RawIPv4Transport Open(NetworkNamespace ns, IpAddress address, byte protocol) =>
        ns.Run(() => protocol == RawIPv4Transport.TcpProtocol
            ? RawIPv4Transport.OpenTcp(address)
            : RawIPv4Transport.OpenExperimental(address));

    [Theory]
    [MemberData(nameof(Protocols))]
    public void Raw_must_carry_segments_across_the_veth_pair_with_the_ip_header_stripped(byte protocol)
    {
        using var pair = VethNamespacePair.Create();
        using var a = Open(pair.A, VethNamespacePair.AddressA, protocol);
        using var b = Open(pair.B, VethNamespacePair.AddressB, protocol);

        // 60 KB and the largest segment cross the 1500-byte veth as IP fragments, reassembled before delivery.
        AssertCarries(a, b, seed: protocol, 20, 1460, 60 * 1024, a.MaxSegmentLength);
        AssertCarries(b, a, seed: protocol + 1, 20, 1460, 60 * 1024);

        var buffer = new byte[b.ReceiveBufferLength];
        a.Send(b.LocalAddress, SeededBytes(3, 40));
        Assert.Equal(ReceiveOutcome.Received, b.Receive(buffer, ReceiveTimeout, out var received));
        Assert.Equal(20, received.Offset);
        Assert.Equal(40, received.Length);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void Raw_must_return_only_segments_addressed_to_its_own_address(byte protocol)
    {
        using var pair = VethNamespacePair.Create();
        var otherAddress = IpAddress.Parse("10.99.0.3");
        pair.AddAddress(pair.B, otherAddress);
        using var a = Open(pair.A, VethNamespacePair.AddressA, protocol);
        using var b = Open(pair.B, VethNamespacePair.AddressB, protocol);
        using var other = Open(pair.B, otherAddress, protocol);

        AssertCarries(a, other, seed: 20, 100);
        var buffer = new byte[b.ReceiveBufferLength];
        Assert.Equal(ReceiveOutcome.TimedOut, b.Receive(buffer, TimeSpan.FromMilliseconds(200), out _));

        AssertCarries(a, b, seed: 21, 100);
        Assert.Equal(ReceiveOutcome.TimedOut, other.Receive(buffer, TimeSpan.FromMilliseconds(200), out _));
    }

    [Fact]
    public void Raw_receive_must_not_allocate_per_segment()
    {
        using var pair = VethNamespacePair.Create();
        using var a = Open(pair.A, VethNamespacePair.AddressA, RawIPv4Transport.ExperimentalProtocol);
        using var b = Open(pair.B, VethNamespacePair.AddressB, RawIPv4Transport.ExperimentalProtocol);
        AssertReceiveAllocatesNothing(a, b);
    }

    [Fact]
    public void Raw_must_return_closed_when_disposed_during_a_blocking_receive()
    {
        using var pair = VethNamespacePair.Create();
        var b = Open(pair.B, VethNamespacePair.AddressB, RawIPv4Transport.ExperimentalProtocol);
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

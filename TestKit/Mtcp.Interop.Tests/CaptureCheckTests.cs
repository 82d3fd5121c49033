using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Interop.Tests;

[Trait("Category", "Interop")]
public sealed class CaptureCheckTests(ITestOutputHelper output)
{
    // No dissector claims this port, so random payload is not parsed as some application protocol.
    private const int EchoPort = 47000;

    [Theory]
    [InlineData(RawIPv4Transport.TcpProtocol)]
    [InlineData(RawIPv4Transport.ExperimentalProtocol)]
    public void Capture_check_must_flag_a_segment_with_a_bad_checksum_and_pass_a_good_one(byte protocol)
    {
        using var pair = VethNamespacePair.Create();
        using var a = pair.A.Run(() => RawIPv4Transport.Open(VethNamespacePair.AddressA, protocol, new RawTransportOptions()));
        // A listener in B, as in real use: without one the kernel answers protocol 253 with ICMP
        // protocol-unreachable, which quotes the bad segment.
        using var b = pair.B.Run(() => RawIPv4Transport.Open(VethNamespacePair.AddressB, protocol, new RawTransportOptions()));
        using var capture = PacketCapture.Start(pair.B, VethNamespacePair.InterfaceName, CapturePath($"bad-checksum-{protocol}"));

        var good = Segment(sourcePort: 7001, checksumAdjustment: 0);
        var bad = Segment(sourcePort: 7002, checksumAdjustment: 1);
        a.Send(VethNamespacePair.AddressB, good);
        a.Send(VethNamespacePair.AddressB, bad);
        Thread.Sleep(300);

        var flagged = capture.BadSegments(protocol);
        output.WriteLine(string.Join('\n', flagged));
        Assert.Equal(2, capture.Count($"tcp && ip.src == {VethNamespacePair.AddressA}", protocol));
        var line = Assert.Single(flagged);
        Assert.Contains("7002", line, StringComparison.Ordinal);
        capture.KeepFileOnDispose = false;
    }

    [Fact]
    public void Kernel_to_kernel_echo_of_10_MB_across_the_veth_pair_must_be_exact_and_clean_on_the_wire()
    {
        using var pair = VethNamespacePair.Create();
        var serverAddress = VethNamespacePair.AddressA.ToIPAddress();
        using var listener = pair.A.Run(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(serverAddress, EchoPort));
            socket.Listen();
            return socket;
        });
        using var capture = PacketCapture.Start(pair.A, VethNamespacePair.InterfaceName, CapturePath("kernel-echo"));
        Exception? serverFailure = null;
        var server = KernelEcho.StartEchoServer(listener, e => serverFailure = e);

        using var client = pair.B.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        client.Connect(new IPEndPoint(serverAddress, EchoPort));
        var payload = KernelEcho.Payload(seed: 42);
        var (length, sha256, elapsed) = KernelEcho.SendAndReceiveEcho(client, payload, TimeSpan.FromSeconds(60));
        Assert.True(server.Join(TimeSpan.FromSeconds(10)));
        Assert.Null(serverFailure);

        output.WriteLine($"kernel TCP to kernel TCP, 10 MB each way across the veth pair: {elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(payload.Length, length);
        Assert.Equal(SHA256.HashData(payload), sha256);
        Assert.Empty(capture.BadSegments());
        Assert.True(capture.Count("tcp") > 1000);
    }

    internal static string CapturePath(string name) =>
        Path.Combine(Path.GetTempPath(), $"mtcp-{Environment.ProcessId}-{name}.pcapng");

    /// <summary>A 20-byte ACK from <paramref name="sourcePort"/> with 10 bytes of payload and its checksum off by the adjustment.</summary>
    private static byte[] Segment(ushort sourcePort, ushort checksumAdjustment)
    {
        var segment = new byte[30];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), 9000);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), 1000);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(8), 2000);
        segment[12] = 5 << 4;
        segment[13] = 0x10;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(14), 65535);
        "0123456789"u8.CopyTo(segment.AsSpan(20));
        var checksum = IndependentTcpChecksum.TcpOverIPv4(VethNamespacePair.AddressA, VethNamespacePair.AddressB, segment);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(IndependentTcpChecksum.ChecksumOffset), (ushort)(checksum + checksumAdjustment));
        return segment;
    }
}

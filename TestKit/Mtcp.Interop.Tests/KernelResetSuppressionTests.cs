using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Interop.Tests;

[Trait("Category", "Interop")]
public sealed class KernelResetSuppressionTests
{
    private const ushort EnginePort = 7000;
    private const int FlagsOffset = 13;
    private const byte SynFlag = 0x02;
    private const byte RstFlag = 0x04;

    /// <summary>The rule's <c>inet</c> table covers the kernel's IPv4 and IPv6 RSTs alike.</summary>
    [Theory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public async Task Suppression_must_drop_the_kernels_resets_for_the_port_but_not_the_engines(AddressFamily family)
    {
        using var pair = VethNamespacePair.Create();
        var (addressA, addressB) = VethNamespacePair.Addresses(family);
        var engineEndPoint = new IPEndPoint(addressA.ToIPAddress(), EnginePort);
        using var engine = pair.A.Run(() => RawIPTransport.OpenTcp(addressA));
        using var observer = pair.B.Run(() => RawIPTransport.OpenTcp(addressB));

        // Without the rule the kernel in A refuses the connection with a RST.
        var refused = await Assert.ThrowsAsync<SocketException>(() => ConnectFromB(pair, engineEndPoint, TimeSpan.FromSeconds(5)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.True(ReceivesSegment(observer, RstFlag, TimeSpan.FromSeconds(2)), "the kernel's RST was not seen before the rule");

        var rule = KernelResetSuppression.Install(EnginePort, commandPrefix: pair.A.CommandPrefix);
        try
        {
            Assert.Contains($"tcp sport {EnginePort}", pair.A.Exec("nft", "list", "table", "inet", rule.TableName).StandardOutput, StringComparison.Ordinal);
            Assert.False(HostCommand.RunChecked("nft", "list", "tables").StandardOutput.Contains(rule.TableName, StringComparison.Ordinal), "the rule leaked into the host namespace");

            // With the rule the SYN reaches the engine's socket and no RST comes back.
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ConnectFromB(pair, engineEndPoint, TimeSpan.FromSeconds(1.5)));
            Assert.True(ReceivesSegment(engine, SynFlag, TimeSpan.FromSeconds(1)), "the engine's raw socket did not see the SYN");
            Assert.False(ReceivesSegment(observer, RstFlag, TimeSpan.FromMilliseconds(300)), "a kernel RST got through the rule");
            Assert.True(rule.DroppedResets() > 0);

            // The engine's own RSTs carry the socket mark and pass.
            engine.Send(addressB, ResetSegment(EnginePort, 50000));
            Assert.True(ReceivesSegment(observer, RstFlag, TimeSpan.FromSeconds(2)), "the engine's marked RST was dropped");
        }
        finally
        {
            rule.Dispose();
        }

        Assert.DoesNotContain(rule.TableName, pair.A.Exec("nft", "list", "tables").StandardOutput, StringComparison.Ordinal);
        var refusedAgain = await Assert.ThrowsAsync<SocketException>(() => ConnectFromB(pair, engineEndPoint, TimeSpan.FromSeconds(5)));
        Assert.Equal(SocketError.ConnectionRefused, refusedAgain.SocketErrorCode);
    }

    [Fact]
    public void Install_must_replace_a_table_left_behind_by_an_earlier_run()
    {
        using var ns = NetworkNamespace.Create();
        var first = KernelResetSuppression.Install(EnginePort, commandPrefix: ns.CommandPrefix);
        var second = KernelResetSuppression.Install(EnginePort, commandPrefix: ns.CommandPrefix);
        var listing = ns.Exec("nft", "list", "table", "inet", second.TableName).StandardOutput;
        Assert.Single(listing.Split('\n'), line => line.Contains("tcp sport", StringComparison.Ordinal));
        second.Dispose();
        Assert.DoesNotContain(first.TableName, ns.Exec("nft", "list", "tables").StandardOutput, StringComparison.Ordinal);
    }

    private static async Task ConnectFromB(VethNamespacePair pair, IPEndPoint target, TimeSpan timeout)
    {
        using var client = pair.B.Run(() => new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        using var cancel = new CancellationTokenSource(timeout);
        await client.ConnectAsync(target, cancel.Token);
    }

    private static bool ReceivesSegment(IPacketTransport transport, byte flag, TimeSpan within)
    {
        var buffer = new byte[transport.ReceiveBufferLength];
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            if (transport.Receive(buffer, TimeSpan.FromMilliseconds(50), out var received) == ReceiveOutcome.Received
                && received.Length >= 20
                && (received.SliceOf(buffer.AsSpan())[FlagsOffset] & flag) != 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A bare RST header (RFC 9293 §3.1): ports, data offset 5, RST flag; the checksum does not matter here.</summary>
    private static byte[] ResetSegment(ushort sourcePort, ushort destinationPort)
    {
        var segment = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), destinationPort);
        segment[12] = 5 << 4;
        segment[FlagsOffset] = RstFlag;
        return segment;
    }
}

using System.Globalization;
using System.Net.Sockets;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// Loss recovery against kernel TCP with its default settings (SACK on): random loss in both directions on the
/// engine's side of the veth pair (nftables <c>numgen</c>), 8 MB each way in both roles, SHA-256 checked. The engine
/// must agree SACK with the kernel and recover with it (RACK-TLP, PRR); the goodput is printed beside the NewReno
/// figures measured before SACK existed (8 MB each way, 5 % both ways: 0.67 MB/s as server, 0.82 MB/s as client). The
/// same over IPv6, with and without loss.
/// </summary>
[Trait("Category", "Interop")]
public sealed class KernelLossRecoveryTests(ITestOutputHelper output)
{
    private const int TransferBytes = 8 * 1024 * 1024;

    [Theory]
    [InlineData(1, "n/a", "n/a", true, AddressFamily.InterNetwork)]
    [InlineData(5, "0.67", "0.82", false, AddressFamily.InterNetwork)]
    [InlineData(0, "n/a", "n/a", false, AddressFamily.InterNetworkV6)]
    [InlineData(1, "n/a", "n/a", true, AddressFamily.InterNetworkV6)]
    [InlineData(5, "n/a", "n/a", false, AddressFamily.InterNetworkV6)]
    public void Engine_must_move_8_MB_each_way_with_kernel_tcp_under_random_loss_in_both_directions(int lossPercent, string newRenoServer, string newRenoClient, bool capture, AddressFamily family)
    {
        NetnsPrerequisites.RequireRoot();
        using var pair = VethNamespacePair.Create();
        using var loss = PacketLoss.InstallOnInterface(pair.A, VethNamespacePair.InterfaceName, lossPercent, LossHooks.Both, family);
        using var packets = capture ? PacketCapture.Start(pair.A, VethNamespacePair.InterfaceName, CaptureCheckTests.CapturePath($"loss-{lossPercent}-{family}")) : null;

        // Without loss there is nothing to recover: the transfer alone is checked.
        Action<TransportConnectionDriver>? inspect = lossPercent > 0 ? AssertSackRecovery : null;
        var asServer = KernelInteropTests.KernelClientAgainstEngineServer(pair, seed: 20 + lossPercent, output, KernelEcho.Payload(20 + lossPercent, TransferBytes), inspect, family);
        var asClient = KernelInteropTests.EngineClientAgainstKernelServer(pair, seed: 30 + lossPercent, output, KernelEcho.Payload(30 + lossPercent, TransferBytes), inspect, family);
        var kernel = KernelInteropTests.KernelToKernel(pair, TransferBytes, family);

        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{family}, {lossPercent}% loss both ways, 8 MB each way: engine server {MegabytesPerSecond(asServer):F2} MB/s (NewReno {newRenoServer}), " +
            $"engine client {MegabytesPerSecond(asClient):F2} MB/s (NewReno {newRenoClient}), kernel-kernel {MegabytesPerSecond(kernel):F2} MB/s; " +
            $"{loss.DroppedOutgoing} segments dropped leaving the engine's side, {loss.DroppedIncoming} arriving"));
        Assert.True(lossPercent == 0 || (loss.DroppedOutgoing > 0 && loss.DroppedIncoming > 0), "the rules dropped nothing: the transfers did not cross them");
        if (packets is not null)
        {
            // tshark decodes the engine's SACK blocks, and finds nothing malformed or with a bad checksum.
            packets.Stop();
            var bad = packets.BadSegments();
            Assert.True(bad.Count == 0, $"the capture {packets.FilePath} holds malformed or bad-checksum segments:\n{string.Join('\n', bad.Take(20))}");
            var engineSource = family == AddressFamily.InterNetwork ? "ip.src" : "ipv6.src";
            var engineSacks = packets.Count($"{engineSource} == {VethNamespacePair.Addresses(family).A} && tcp.options.sack_le");
            output.WriteLine($"{engineSacks} of the engine's segments carry SACK blocks");
            Assert.True(engineSacks > 0, "the engine sent no SACK block under loss");
        }
    }

    private static double MegabytesPerSecond(TimeSpan elapsed) => TransferBytes / 1e6 / elapsed.TotalSeconds;

    private static void AssertSackRecovery(TransportConnectionDriver driver)
    {
        Assert.True(driver.Inspect(c => c.SackAgreed), "the engine did not agree SACK with the kernel");
        Assert.True(driver.Stats.FastRetransmits > 0, "no loss was recovered from SACK information");
    }
}

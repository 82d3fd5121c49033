using System.Globalization;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// Loss recovery against kernel TCP with its default settings (SACK on): random loss in both directions on the
/// engine's side of the veth pair (nftables <c>numgen</c>), 8 MB each way in both roles, SHA-256 checked. The engine
/// must agree SACK with the kernel and recover with it (RACK-TLP, PRR); the goodput is printed beside the NewReno
/// figures measured before SACK existed (8 MB each way, 5 % both ways: 0.67 MB/s as server, 0.82 MB/s as client).
/// </summary>
[Trait("Category", "Interop")]
public sealed class KernelLossRecoveryTests(ITestOutputHelper output)
{
    private const int TransferBytes = 8 * 1024 * 1024;

    [Theory]
    [InlineData(1, "n/a", "n/a")]
    [InlineData(5, "0.67", "0.82")]
    public void Engine_must_move_8_MB_each_way_with_kernel_tcp_under_random_loss_in_both_directions(int lossPercent, string newRenoServer, string newRenoClient)
    {
        NetnsPrerequisites.RequireRoot();
        using var pair = VethNamespacePair.Create();
        using var loss = PacketLoss.InstallOnInterface(pair.A, VethNamespacePair.InterfaceName, lossPercent, LossHooks.Both);

        var asServer = KernelInteropTests.KernelClientAgainstEngineServer(pair, seed: 20 + lossPercent, output, KernelEcho.Payload(20 + lossPercent, TransferBytes), AssertSackRecovery);
        var asClient = KernelInteropTests.EngineClientAgainstKernelServer(pair, seed: 30 + lossPercent, output, KernelEcho.Payload(30 + lossPercent, TransferBytes), AssertSackRecovery);
        var kernel = KernelInteropTests.KernelToKernel(pair, TransferBytes);

        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{lossPercent}% loss both ways, 8 MB each way: engine server {MegabytesPerSecond(asServer):F2} MB/s (NewReno {newRenoServer}), " +
            $"engine client {MegabytesPerSecond(asClient):F2} MB/s (NewReno {newRenoClient}), kernel-kernel {MegabytesPerSecond(kernel):F2} MB/s; " +
            $"{loss.DroppedOutgoing} segments dropped leaving the engine's side, {loss.DroppedIncoming} arriving"));
        Assert.True(loss.DroppedOutgoing > 0 && loss.DroppedIncoming > 0, "the rules dropped nothing: the transfers did not cross them");
    }

    private static double MegabytesPerSecond(TimeSpan elapsed) => TransferBytes / 1e6 / elapsed.TotalSeconds;

    private static void AssertSackRecovery(TransportConnectionDriver driver)
    {
        Assert.True(driver.Inspect(c => c.SackAgreed), "the engine did not agree SACK with the kernel");
        Assert.True(driver.Stats.FastRetransmits > 0, "no loss was recovered from SACK information");
    }
}

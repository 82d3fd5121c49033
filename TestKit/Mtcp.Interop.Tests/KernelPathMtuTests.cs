using Mtcp.Stack;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// Path MTU probing against the Linux kernel's TCP with SACK off (<c>net.ipv4.tcp_sack = 0</c> in both namespaces): a
/// PMTU black hole in front of the kernel server (nftables in its namespace drops, without a word, every IPv4 packet
/// longer than <see cref="BlackHoleMtu"/>) must be found by the engine's timeouts, and its probes must search the MSS
/// back up above the base, lost probes costing at most one timeout each (RFC 4821 §7.5), while 10 MB each way
/// arrive exact. Needs root (network namespaces, raw sockets, nftables).
/// </summary>
[Trait("Category", "Interop")]
public sealed class KernelPathMtuTests(ITestOutputHelper output)
{
    private const int BlackHoleMtu = 1200;

    [Fact]
    public void Engine_client_without_sack_must_find_a_black_hole_before_a_kernel_server_and_probe_the_mss_up()
    {
        using var pair = VethNamespacePair.Create();
        foreach (var side in new[] { pair.A, pair.B })
        {
            side.SetSysctl("net.ipv4.tcp_sack", "0");
        }

        using var blackHole = PacketLoss.Install(pair.B, percent: 100, LossHooks.Input, match: $"ip length > {BlackHoleMtu}");

        // A send buffer beyond the kernel's window, as Linux's own autotunes: probes are made of data queued behind the
        // flight.
        var config = TcpConfig.Default with { SendBufferSize = 4 * TcpConfig.Default.ReceiveBufferSize };
        (bool Sack, int Mss, PathMtuCounts Counts, long Timeouts)? seen = null;
        var elapsed = KernelInteropTests.EngineClientAgainstKernelServer(pair, seed: 4821, output, config: config, inspect: driver =>
            seen = driver.Inspect(connection => (connection.SackAgreed, connection.SendMss, connection.Stats.PathMtu, connection.Stats.RetransmissionTimeouts)));

        var (sack, mss, counts, timeouts) = seen!.Value;
        output.WriteLine($"10 MB each way in {elapsed.TotalMilliseconds:F0} ms; packets the black hole dropped {blackHole.DroppedIncoming}; SACK {sack}, final MSS {mss}, {counts}, retransmission timeouts {timeouts}");
        Assert.False(sack);
        Assert.True(blackHole.DroppedIncoming >= config.BlackHoleTimeouts, $"the black hole dropped {blackHole.DroppedIncoming} packets");
        Assert.Equal(1, counts.BlackHoles);
        Assert.True(counts.Increases >= 1, $"no probe raised the MSS above the base: {counts}");
        Assert.True(counts.ProbesLost >= 1, $"no probe above the black hole was lost: {counts}");
        Assert.InRange(mss, config.BaseSegmentSize + 1, BlackHoleMtu - 40);

        // The timeouts are the black hole's, and at most one more per lost probe (one that had nothing behind it by the
        // time it was lost, or a spurious one on a loaded machine). That lost probes are told by duplicate ACKs rather
        // than by the timer is proved deterministically in PathMtuProbingTests; here it would depend on scheduling.
        Assert.True(timeouts <= config.BlackHoleTimeouts + counts.ProbesLost, $"{timeouts} timeouts for {counts.ProbesLost} lost probes");
    }
}

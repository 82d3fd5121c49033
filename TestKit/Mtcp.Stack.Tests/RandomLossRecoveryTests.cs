using System.Globalization;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The loss benchmark's path in virtual time: one connection moving 8 MB one way across a link with 5 % random loss in
/// both directions, a 100 µs round trip and 1,420-byte segments, as between two network namespaces joined by a veth
/// pair. At this rate the window stays at a few segments, so a hole's retransmission must come from RACK and the
/// tail-loss probe (RFC 8985); a retransmission timeout (RFC 6298, at least 200 ms against a transfer of a few hundred
/// milliseconds) is what made the benchmark's runs vary threefold.
/// </summary>
[Trait("Category", "Stack")]
public sealed class RandomLossRecoveryTests(ITestOutputHelper output)
{
    private const long Bytes = 8_000_000;

    private static readonly LinkConditions FivePercentLoss = new()
    {
        Latency = TimeSpan.FromMicroseconds(50),
        LossRate = 0.05,
        BandwidthBytesPerSecond = 400_000_000,
    };

    private static readonly TcpConfig VethConfig = TcpConfig.Default with { MaxSegmentSize = 1420, Nagle = true };

    [Fact]
    public void Transfers_at_five_percent_loss_must_recover_without_retransmission_timeouts_but_for_double_losses()
    {
        var timeouts = new List<long>();
        var rates = new List<double>();
        for (var seed = 1; seed <= 10; seed++)
        {
            var pair = new TcpPair(seed, FivePercentLoss, VethConfig, Bytes, 0);
            var network = pair.Network;
            Assert.True(network.Drive(() => pair.ClientConnection.State == TcpState.Established, TimeSpan.FromMinutes(1)), pair.Describe());

            // Timeouts of the handshake (the benchmark times the transfer only) are not counted.
            var start = network.Now;
            var timeoutsBefore = pair.ClientConnection.Stats.RetransmissionTimeouts;
            Assert.True(network.Drive(() => pair.ServerApp.PeerClosed, TimeSpan.FromMinutes(1)), pair.Describe());
            Assert.Equal(Bytes, pair.ServerApp.BytesRead);
            Assert.True(pair.ServerApp.FirstMismatch < 0, pair.Describe());

            var stats = pair.ClientConnection.Stats;
            timeouts.Add(stats.RetransmissionTimeouts - timeoutsBefore);
            rates.Add(Bytes / 1e6 / (network.Now - start).TotalSeconds);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seed {seed}: {rates[^1]:F1} MB/s, {timeouts[^1]} timeouts, {stats.TailLossProbes} probes, {stats.FastRetransmits} recoveries, {stats.Retransmissions} retransmissions, lost {network.Stats.Lost} of {network.Stats.Sent} packets"));
        }

        // What is left are two losses within a flight of two or three segments during a recovery, where no probe may
        // go (RFC 8985 §7.2), such as a retransmission and the ACK of the one segment sent after it. Linux times out there too.
        Assert.True(timeouts.Sum() <= 2, $"{timeouts.Sum()} retransmission timeouts in 10 transfers: [{string.Join(", ", timeouts)}]");
        var median = rates.Order().ElementAt(rates.Count / 2);
        Assert.True(median >= 40, $"median goodput {median:F1} MB/s");
    }
}

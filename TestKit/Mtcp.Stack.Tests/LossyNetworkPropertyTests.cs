using System.Diagnostics;
using System.Globalization;
using Mtcp.Stack;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The engine's end-to-end property: over a network that loses, reorders and duplicates segments, two engines
/// move 8 MB each way at once and both end CLOSED with exactly the bytes that were sent.
/// </summary>
[Trait("Category", "Stack")]
[Trait("Category", "Property")]
public sealed class LossyNetworkPropertyTests(ITestOutputHelper output)
{
    private const long BytesEachWay = 8L * 1024 * 1024;

    /// <summary>A run on a lossy network needs patience, not a different protocol: more SYN retries, longer open.</summary>
    internal static TcpConfig LossTolerantConfig { get; } = TcpConfig.Default with
    {
        MaxSynRetransmissions = 20,
        ConnectTimeout = TimeSpan.FromHours(1),
        MaxRetransmissions = 30,
    };

    internal static LinkConditions ConditionsFor(int seed, double lossRate) => new()
    {
        Latency = TimeSpan.FromMilliseconds(5),
        Jitter = TimeSpan.FromMilliseconds(1),
        LossRate = lossRate,
        DuplicateRate = 0.02,
        ReorderRate = 0.05,
        ReorderDelay = TimeSpan.FromMilliseconds(15),
    };

    [Fact]
    public void Eight_megabytes_each_way_must_arrive_intact_under_loss_reordering_and_duplication()
    {
        var seeds = Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? 2000 : 200;
        var stopwatch = Stopwatch.StartNew();
        for (var seed = 1; seed <= seeds; seed++)
        {
            // Loss cycles 0%, 5%, 10%, 15%, 20% across seeds.
            var loss = seed % 5 * 0.05;

            // Even seeds start both ISNs a few megabytes below 2^32, so the sequence space wraps mid-transfer.
            SeqNumber? clientIss = seed % 2 == 0 ? new SeqNumber(uint.MaxValue - (uint)(seed * 7919)) : null;
            SeqNumber? serverIss = seed % 2 == 0 ? new SeqNumber(uint.MaxValue - 4_000_000) : null;
            var pair = new TcpPair(seed, ConditionsFor(seed, loss), LossTolerantConfig, BytesEachWay, BytesEachWay, clientIss, serverIss);
            var closed = pair.DriveToClose(TimeSpan.FromHours(2));
            var context = pair.Describe();
            Assert.True(closed, $"not both CLOSED: {context}");
            Assert.Equal(BytesEachWay, pair.ClientApp.BytesRead);
            Assert.Equal(BytesEachWay, pair.ServerApp.BytesRead);
            Assert.True(pair.ClientApp.FirstMismatch < 0 && pair.ServerApp.FirstMismatch < 0, $"corrupted stream: {context}");
            Assert.True(pair.ClientApp.PeerClosed && pair.ServerApp.PeerClosed, $"a FIN went missing: {context}");
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{seeds} seeds in {stopwatch.Elapsed.TotalSeconds:F1} s"));
    }
}

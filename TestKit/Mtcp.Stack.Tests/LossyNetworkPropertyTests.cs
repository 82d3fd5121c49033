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

    [Fact]
    public void Erratic_applications_with_small_buffers_must_still_exchange_everything()
    {
        var seeds = Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? 2000 : 200;
        const long Bytes = 1024 * 1024;
        var config = LossTolerantConfig with
        {
            SendBufferSize = 8 * 1024,
            ReceiveBufferSize = 6 * 1024,
            WindowScaleShift = 0,
            Nagle = true,
        };
        long probes = 0;
        for (var seed = 1; seed <= seeds; seed++)
        {
            var loss = seed % 3 * 0.05;
            var pair = new TcpPair(
                seed,
                ConditionsFor(seed, loss),
                config,
                Bytes,
                Bytes / 2,
                pacing: random => new ApplicationPacing(random, MaxReadChunk: 3000, MaxWriteChunk: 5000, ReadPauseProbability: 0.05, MaxReadPause: TimeSpan.FromSeconds(2)));
            var closed = pair.DriveToClose(TimeSpan.FromHours(2));
            var context = pair.Describe();
            Assert.True(closed, $"not both CLOSED: {context}");
            Assert.Equal(Bytes / 2, pair.ClientApp.BytesRead);
            Assert.Equal(Bytes, pair.ServerApp.BytesRead);
            Assert.True(pair.ClientApp.FirstMismatch < 0 && pair.ServerApp.FirstMismatch < 0, $"corrupted stream: {context}");
            probes += pair.ClientConnection.Stats.ZeroWindowProbes + pair.ServerConnection!.Stats.ZeroWindowProbes;
        }

        Assert.True(probes > 0, "no run closed a window long enough to probe it");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{seeds} seeds, {probes} zero-window probes"));
    }

    [Fact]
    public void Retained_read_log_must_hold_exactly_the_bytes_read_since_the_last_release()
    {
        var seeds = Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? 1000 : 100;
        const long Bytes = 512 * 1024;
        var config = LossTolerantConfig with { ReceiveBufferSize = 16 * 1024, RetainReadLog = true };
        long releases = 0;
        for (var seed = 1; seed <= seeds; seed++)
        {
            var pair = new TcpPair(
                seed,
                ConditionsFor(seed, seed % 3 * 0.05),
                config,
                Bytes,
                Bytes,
                pacing: random => new ApplicationPacing(random, MaxReadChunk: 4000, MaxWriteChunk: 9000, ReadPauseProbability: 0.02, MaxReadPause: TimeSpan.FromSeconds(1), ReadLogReleaseProbability: 0.2));
            var closed = pair.DriveToClose(TimeSpan.FromHours(2));
            var context = pair.Describe();
            Assert.True(closed, $"not both CLOSED: {context}");
            Assert.Equal(Bytes, pair.ClientApp.BytesRead);
            Assert.Equal(Bytes, pair.ServerApp.BytesRead);
            Assert.True(pair.ClientApp.FirstMismatch < 0 && pair.ServerApp.FirstMismatch < 0, $"corrupted stream: {context}");
            Assert.True(pair.ClientApp.FirstReadLogMismatch < 0 && pair.ServerApp.FirstReadLogMismatch < 0, $"read log differs from the stream: {context}");
            releases += pair.ClientApp.ReadLogReleases + pair.ServerApp.ReadLogReleases;
        }

        Assert.True(releases > seeds, "the read log was hardly ever released");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{seeds} seeds, {releases} read-log releases"));
    }
}

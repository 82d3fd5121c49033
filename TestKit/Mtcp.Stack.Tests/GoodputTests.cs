using System.Globalization;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Simulated goodput (bytes delivered per second of virtual time) over a 100 Mbit/s, 10 ms RTT path, both
/// directions at once. Printed for the record; the assertions only guard against gross regressions.
/// </summary>
[Trait("Category", "Stack")]
public sealed class GoodputTests(ITestOutputHelper output)
{
    private const long BytesEachWay = 8L * 1024 * 1024;

    public static TheoryData<double, double> LossAndFloor => new()
    {
        { 0.0, 8.0 },
        { 0.02, 0.5 },
        { 0.2, 0.001 },
    };

    [Theory]
    [MemberData(nameof(LossAndFloor))]
    public void Goodput_must_stay_above_its_floor(double lossRate, double floorMegabytesPerSecond)
    {
        var conditions = new LinkConditions
        {
            Latency = TimeSpan.FromMilliseconds(5),
            LossRate = lossRate,
            BandwidthBytesPerSecond = 100_000_000 / 8,
        };
        var rates = new List<double>();
        for (var seed = 1; seed <= 3; seed++)
        {
            var pair = new TcpPair(seed, conditions, LossyNetworkPropertyTests.LossTolerantConfig, BytesEachWay, BytesEachWay);
            var start = pair.Network.Now;
            Assert.True(pair.DriveToClose(TimeSpan.FromHours(4)), pair.Describe());
            foreach (var app in new[] { pair.ClientApp, pair.ServerApp })
            {
                Assert.Equal(BytesEachWay, app.BytesRead);
                var seconds = (app.PeerClosedAt!.Value - start).TotalSeconds;
                rates.Add(BytesEachWay / 1e6 / seconds);
            }

            var c = pair.ClientConnection.Stats;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seed {seed} loss {lossRate:P0}: client rto={c.RetransmissionTimeouts} fast={c.FastRetransmits} retransmitted={c.Retransmissions} segments={c.SegmentsSent}"));
        }

        var median = rates.Order().ElementAt(rates.Count / 2);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"loss {lossRate:P0}: goodput per direction MB/s (virtual time) median {median:F3}, all [{string.Join(", ", rates.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))}]"));
        Assert.True(median >= floorMegabytesPerSecond, $"median goodput {median} MB/s below {floorMegabytesPerSecond}");
    }
}

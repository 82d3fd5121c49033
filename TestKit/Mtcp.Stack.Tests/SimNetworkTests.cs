using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>The simulated network itself: determinism and each impairment.</summary>
[Trait("Category", "Stack")]
public sealed class SimNetworkTests
{
    [Fact]
    public void Same_seed_must_replay_the_same_run()
    {
        var conditions = LossyNetworkPropertyTests.ConditionsFor(0, 0.1);
        string Run()
        {
            var pair = new TcpPair(42, conditions, LossyNetworkPropertyTests.LossTolerantConfig, 200_000, 100_000);
            Assert.True(pair.DriveToClose(TimeSpan.FromHours(1)));
            return pair.Describe();
        }

        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void Loss_rate_must_drop_about_that_fraction()
    {
        var (network, sender, _) = Blaster(new LinkConditions { LossRate = 0.25 }, packets: 10_000);
        network.Drive(() => false, TimeSpan.FromSeconds(1));
        Assert.InRange(network.Stats.Lost, 2300, 2700);
        Assert.Equal(10_000 - network.Stats.Lost, network.Stats.Delivered);
        Assert.Equal(0, sender.Pending);
    }

    [Fact]
    public void Duplication_must_deliver_extra_copies()
    {
        var (network, _, receiver) = Blaster(new LinkConditions { DuplicateRate = 0.1 }, packets: 10_000);
        network.Drive(() => false, TimeSpan.FromSeconds(1));
        Assert.InRange(network.Stats.Duplicated, 800, 1200);
        Assert.Equal(10_000 + network.Stats.Duplicated, receiver.Received.Count);
    }

    [Fact]
    public void Reordering_must_let_later_packets_overtake()
    {
        var (network, _, receiver) = Blaster(new LinkConditions { ReorderRate = 0.2, ReorderDelay = TimeSpan.FromMilliseconds(50) }, packets: 1000, spacing: TimeSpan.FromMilliseconds(1));
        network.Drive(() => false, TimeSpan.FromSeconds(5));
        Assert.Equal(1000, receiver.Received.Count);
        var inversions = receiver.Received.Zip(receiver.Received.Skip(1)).Count(p => p.Second < p.First);
        Assert.True(inversions > 50, $"only {inversions} inversions");
    }

    [Fact]
    public void Packets_over_the_mtu_must_be_dropped()
    {
        var (network, _, receiver) = Blaster(new LinkConditions { Mtu = 540 }, packets: 10, payload: 501);
        network.Drive(() => false, TimeSpan.FromSeconds(1));
        Assert.Equal(10, network.Stats.OverMtu);
        Assert.Empty(receiver.Received);
    }

    [Fact]
    public void Blackhole_periods_must_drop_whole_runs_of_packets_for_their_duration()
    {
        // One packet per millisecond; a period of 20 ms swallows the packet that starts it and the 19 after it.
        var conditions = new LinkConditions { BlackholeRate = 0.01, BlackholeDuration = TimeSpan.FromMilliseconds(20) };
        var (network, _, receiver) = Blaster(conditions, packets: 5000, spacing: TimeSpan.FromMilliseconds(1));
        network.Drive(() => false, TimeSpan.FromSeconds(10));
        Assert.Equal(5000 - network.Stats.Blackholed, receiver.Received.Count);
        Assert.InRange(network.Stats.Blackholed, 500, 1500);
        var gaps = receiver.Received.Zip(receiver.Received.Skip(1)).Select(p => p.Second - p.First).Where(gap => gap > 1).ToList();
        Assert.NotEmpty(gaps);
        Assert.All(gaps, gap => Assert.Equal(0u, (gap - 1) % 20));
    }

    [Fact]
    public void Latency_and_bandwidth_must_set_the_arrival_time()
    {
        var conditions = new LinkConditions { Latency = TimeSpan.FromMilliseconds(10), BandwidthBytesPerSecond = 1_000_000 };
        var (network, _, receiver) = Blaster(conditions, packets: 2, payload: 960);
        var start = network.Now;
        network.Drive(() => false, TimeSpan.FromSeconds(1));

        // 1000 bytes at 1 MB/s take 1 ms on the wire; the second packet queues behind the first.
        Assert.Equal([start + TimeSpan.FromMilliseconds(10), start + TimeSpan.FromMilliseconds(11)], receiver.ArrivalTimes);
    }

    private static (SimNetwork Network, BlastNode Sender, BlastNode Receiver) Blaster(LinkConditions conditions, int packets, int payload = 100, TimeSpan? spacing = null)
    {
        var network = new SimNetwork(3, conditions);
        var receiver = network.Add(new BlastNode(IpAddress.Parse("10.0.0.2"), default, 0, 0, TimeSpan.Zero));
        var sender = network.Add(new BlastNode(IpAddress.Parse("10.0.0.1"), receiver.Address, packets, payload, spacing ?? TimeSpan.Zero));
        return (network, sender, receiver);
    }

    /// <summary>Sends numbered packets (sequence number = index), optionally one per spacing interval; records arrivals.</summary>
    private sealed class BlastNode(IpAddress address, IpAddress destination, int count, int payload, TimeSpan spacing) : ISimNode
    {
        private Instant? _nextSend;
        private int _sent;

        public IpAddress Address => address;

        public int Pending => count - _sent;

        public List<uint> Received { get; } = [];

        public List<Instant> ArrivalTimes { get; } = [];

        public void Receive(Instant now, in SimPacket packet)
        {
            Received.Add(packet.Header.SequenceNumber.Value);
            ArrivalTimes.Add(now);
        }

        public bool PollTransmit(Instant now, out SimPacket packet)
        {
            packet = default;
            if (_sent == count || _nextSend is not null)
            {
                return false;
            }

            packet = new SimPacket(address, destination, new TcpSegmentRepr { SequenceNumber = new SeqNumber((uint)_sent) }, new byte[payload]);
            _sent++;
            if (spacing > TimeSpan.Zero)
            {
                _nextSend = now + spacing;
            }

            return true;
        }

        public Instant? PollTimeout() => _sent < count ? _nextSend : null;

        public void HandleTimeout(Instant now)
        {
            if (_nextSend <= now)
            {
                _nextSend = null;
            }
        }
    }
}

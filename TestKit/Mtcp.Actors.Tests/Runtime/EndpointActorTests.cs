using System.Diagnostics;
using System.Net;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>An endpoint actor driving its engine's timers against a peer that the test plays by hand.</summary>
[Trait("Category", "Actors")]
public sealed class EndpointActorTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly IpAddress PeerAddress = IpAddress.Parse("10.2.0.9");
    private static readonly TimeSpan InitialRto = TimeSpan.FromMilliseconds(150);

    /// <summary>
    /// How much shorter a measured gap may look than the RTO: the test thread may take the earlier SYN off the
    /// fabric late. Small enough that a missing backoff (every gap one initial RTO) still fails.
    /// </summary>
    private static readonly TimeSpan ReceiveJitter = TimeSpan.FromMilliseconds(50);

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly MtcpRuntime _client;
    private readonly IPacketTransport _silentPeer;

    public EndpointActorTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString($"""
            mtcp.tcp.initial-rto = {InitialRto.TotalMilliseconds}ms
            mtcp.tcp.min-rto = 50ms
            mtcp.tcp.max-syn-retransmissions = 3
            """)))
    {
        _client = MtcpRuntime.Start(Sys, _fabric, RuntimeTestSupport.NodeConfig("10.2.0.1"), "client");
        _silentPeer = _fabric.Attach(PeerAddress);
    }

    [Fact]
    public async Task Unanswered_syn_must_be_retransmitted_on_each_rearmed_timer_with_backoff_until_connect_fails()
    {
        using var client = new MtcpClient(_client);
        var connecting = client.ConnectAsync(new IPEndPoint(PeerAddress.ToIPAddress(), 80));

        // One SYN, then one per expiry of the re-armed timer: RTO, 2 RTO, 4 RTO (RFC 6298 §5.5), then the open fails.
        var buffer = new byte[_silentPeer.ReceiveBufferLength];
        var arrivals = new List<TimeSpan>();
        var clock = Stopwatch.StartNew();
        SeqNumber? iss = null;
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(ReceiveOutcome.Received, _silentPeer.Receive(buffer, TimeSpan.FromSeconds(5), out var received));
            arrivals.Add(clock.Elapsed);
            Assert.True(TcpSegmentRepr.TryParse(received.SliceOf(buffer.AsSpan()), received.Source, received.Destination, ChecksumPolicy.Verify, out var syn, out _, out _));
            Assert.Equal(TcpFlags.Syn, syn.Flags);
            iss ??= syn.SequenceNumber;
            Assert.Equal(iss, syn.SequenceNumber);
        }

        for (var i = 1; i < arrivals.Count; i++)
        {
            var nominal = InitialRto * (1 << (i - 1));
            var gap = arrivals[i] - arrivals[i - 1];
            Assert.True(gap >= nominal - ReceiveJitter, $"retransmission {i} came {gap.TotalMilliseconds:F0} ms after the previous SYN; the backed-off RTO is {nominal.TotalMilliseconds} ms");
        }

        var error = await Assert.ThrowsAsync<IOException>(() => connecting);
        Assert.Contains("timed out", error.Message);
        Assert.Equal(ReceiveOutcome.TimedOut, _silentPeer.Receive(buffer, TimeSpan.FromMilliseconds(300), out _));
    }

    [Fact]
    public async Task Cancelled_connect_must_abort_the_open_and_stop_retransmitting()
    {
        using var client = new MtcpClient(_client);
        using var cancel = new CancellationTokenSource();
        var connecting = client.ConnectAsync(new IPEndPoint(PeerAddress.ToIPAddress(), 81), cancel.Token);
        var buffer = new byte[_silentPeer.ReceiveBufferLength];
        Assert.Equal(ReceiveOutcome.Received, _silentPeer.Receive(buffer, TimeSpan.FromSeconds(5), out _));

        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting);
        Assert.Equal(ReceiveOutcome.TimedOut, _silentPeer.Receive(buffer, InitialRto * 3, out _));
        await AwaitAssertAsync(async () => Assert.Equal(0, (await _client.GetStatisticsAsync()).Endpoints));
    }

    protected override void AfterAll()
    {
        _silentPeer.Dispose();
        _client.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        base.AfterAll();
    }
}

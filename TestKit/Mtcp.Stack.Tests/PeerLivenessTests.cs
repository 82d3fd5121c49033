using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// A peer that sends while our data waits for its acknowledgment is slow, not silent (the failover's silence rule,
/// <see cref="Migration.ClientFailover"/>): retransmission timeouts count toward silence only while nothing is heard.
/// A peer host heard on another connection is not probed on this one; a dead one still is, within the idle time.
/// </summary>
[Trait("Category", "Stack")]
public sealed class PeerLivenessTests
{
    private static readonly TimeSpan KeepAliveIdle = TimeSpan.FromSeconds(2);

    [Fact]
    public void Timeouts_while_the_peer_keeps_sending_must_not_count_as_silence()
    {
        var link = new DirectLink(TcpConfig.Default, TcpConfig.Default);
        Assert.Equal(TcpState.Established, link.Client.State);

        // The client's data never reaches the server (as if the server held its acknowledgments back, or dropped what
        // it could not take yet); the client's pure ACKs of the server's data still do, so the server goes on sending.
        link.Drop = (from, header) => from == link.Client && header.SequenceNumber != link.Client.SendNext;
        Assert.Equal(1024, link.Client.Write(new byte[1024]));
        link.Exchange();
        var readBuffer = new byte[4096];
        var mostSinceHeard = 0;
        for (var step = 0; step < 300; step++)
        {
            link.Server.Write(new byte[256]);
            link.Elapse(TimeSpan.FromMilliseconds(100));
            link.Client.Read(readBuffer);
            mostSinceHeard = Math.Max(mostSinceHeard, link.Client.TimeoutsSinceHeard);
        }

        Assert.True(link.Client.ConsecutiveTimeouts >= 3, $"{link.Client.ConsecutiveTimeouts} retransmission timeouts in 30 s");
        Assert.True(mostSinceHeard <= 1, $"{mostSinceHeard} timeouts in a row with the server heard every 100 ms");
        Assert.Equal(link.Now, link.Client.LastHeardAt);
        Assert.Equal(TcpState.Established, link.Client.State);
    }

    [Fact]
    public void Timeouts_while_nothing_is_heard_must_count_as_silence()
    {
        var link = new DirectLink(TcpConfig.Default, TcpConfig.Default);
        var heardAt = link.Client.LastHeardAt;
        link.Drop = (_, _) => true;
        Assert.Equal(1024, link.Client.Write(new byte[1024]));
        link.Exchange();
        for (var step = 0; step < 160; step++)
        {
            link.Elapse(TimeSpan.FromMilliseconds(100));
        }

        Assert.True(link.Client.TimeoutsSinceHeard >= 3, $"{link.Client.TimeoutsSinceHeard} timeouts in 16 s");
        Assert.Equal(link.Client.ConsecutiveTimeouts, link.Client.TimeoutsSinceHeard);
        Assert.Equal(heardAt, link.Client.LastHeardAt);
    }

    [Fact]
    public void A_host_heard_on_another_connection_must_defer_the_probe_and_a_host_gone_quiet_must_be_probed_within_the_idle_time()
    {
        var link = new DirectLink(TcpConfig.Default, TcpConfig.Default);
        link.Client.KeepAliveIdle = KeepAliveIdle;
        for (var step = 0; step < 100; step++)
        {
            link.Client.PeerHostHeard(link.Now);
            link.Elapse(TimeSpan.FromMilliseconds(100));
        }

        Assert.Equal(0, link.Client.Stats.KeepAliveProbes);

        // The host falls silent on every connection: this one probes it at most the idle time after it was last heard.
        var lastHeard = link.Now - TimeSpan.FromMilliseconds(100);
        link.Drop = (_, _) => true;
        var firstProbeAt = Instant.Zero;
        for (var step = 0; step < 300 && firstProbeAt == Instant.Zero; step++)
        {
            link.Elapse(TimeSpan.FromMilliseconds(10));
            firstProbeAt = link.Client.Stats.KeepAliveProbes > 0 ? link.Now : Instant.Zero;
        }

        Assert.NotEqual(Instant.Zero, firstProbeAt);
        Assert.InRange(firstProbeAt - lastHeard, KeepAliveIdle * 3 / 4, KeepAliveIdle + TimeSpan.FromMilliseconds(10));
    }

    [Fact]
    public void A_probe_of_the_host_awaiting_its_answer_must_defer_the_probe_and_an_unanswered_one_must_defer_it_once()
    {
        var link = new DirectLink(TcpConfig.Default, TcpConfig.Default);
        link.Client.KeepAliveIdle = KeepAliveIdle;
        var ownDue = link.Client.LastHeardAt + KeepAliveIdle;
        link.Drop = (_, _) => true;

        // Another connection probed the host just before this one's probe was due, and its answer is late.
        link.Elapse(KeepAliveIdle - TimeSpan.FromMilliseconds(100));
        var probedAt = link.Now;
        link.Client.PeerHostProbed(probedAt);
        var firstProbeAt = FirstProbe(link);

        Assert.True(firstProbeAt > ownDue, $"probed {firstProbeAt - ownDue} after its own deadline");
        Assert.InRange(firstProbeAt - probedAt, TimeSpan.FromMilliseconds(150), KeepAliveIdle / 2 + TimeSpan.FromMilliseconds(10));

        // The answer to another connection's probe arrives: the host is heard, and this connection defers its next probe.
        var second = new DirectLink(TcpConfig.Default, TcpConfig.Default);
        second.Client.KeepAliveIdle = KeepAliveIdle;
        second.Drop = (_, _) => true;
        second.Elapse(KeepAliveIdle - TimeSpan.FromMilliseconds(100));
        second.Client.PeerHostProbed(second.Now);
        second.Elapse(TimeSpan.FromMilliseconds(50));
        var answeredAt = second.Now;
        second.Client.PeerHostHeard(answeredAt);
        Assert.InRange(FirstProbe(second) - answeredAt, KeepAliveIdle * 3 / 4, KeepAliveIdle + TimeSpan.FromMilliseconds(10));
    }

    private static Instant FirstProbe(DirectLink link)
    {
        for (var step = 0; step < 400; step++)
        {
            link.Elapse(TimeSpan.FromMilliseconds(10));
            if (link.Client.Stats.KeepAliveProbes > 0)
            {
                return link.Now;
            }
        }

        throw new InvalidOperationException("no keep-alive probe in 4 s");
    }

    [Fact]
    public void Connections_deferred_by_one_host_heard_must_come_due_spread_over_a_quarter_of_the_idle_time()
    {
        var heardAt = Instant.FromMilliseconds(60_000);
        var dues = Enumerable.Range(0, 64).Select(i =>
        {
            var config = TcpConfig.Default;
            var server = TcpConnection.Listen(config, 80, new SeqNumber(5_000));
            var client = TcpConnection.Connect(config, (ushort)(40_000 + i), 80, new SeqNumber(90_000), Instant.FromMilliseconds(1));
            Pump(client, server);
            client.KeepAliveIdle = KeepAliveIdle;
            client.PeerHostHeard(heardAt);
            return client.PollTimeout()!.Value;
        }).ToList();

        Assert.All(dues, due => Assert.InRange(due - heardAt, KeepAliveIdle * 3 / 4, KeepAliveIdle));
        Assert.True(dues.Distinct().Count() >= 48, $"{dues.Distinct().Count()} distinct deadlines of 64");
    }

    private static void Pump(TcpConnection client, TcpConnection server)
    {
        var payload = new byte[2048];
        var now = Instant.FromMilliseconds(1);
        for (var round = 0; round < 4; round++)
        {
            while (client.PollTransmit(now, payload, out var header, out var length))
            {
                server.HandleSegment(now, header, payload.AsSpan(0, length));
            }

            while (server.PollTransmit(now, payload, out var header, out var length))
            {
                client.HandleSegment(now, header, payload.AsSpan(0, length));
            }
        }
    }
}

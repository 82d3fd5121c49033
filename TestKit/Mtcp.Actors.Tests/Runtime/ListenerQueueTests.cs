using System.Net;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Diagnostics;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// A listener's SYN queue and accept queue, apart as in Linux, and SYN cookies once the SYN queue is full (RFC 4987
/// §3.6): half-open connections never keep a client out, a forged cookie is refused and counted.
/// </summary>
[Trait("Category", "Actors")]
public sealed class ListenerQueueTests(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
{
    private const ushort ServicePort = 7000;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);
    private static readonly IpAddress Server = IpAddress.Parse("10.0.0.1");
    private static readonly IpAddress Attacker = IpAddress.Parse("10.0.0.66");
    private readonly InMemoryPacketFabric _fabric = new();

    private IPEndPoint Service => new(IPAddress.Parse(Server.ToString()), ServicePort);

    [Fact]
    public async Task A_thousand_clients_connecting_at_once_must_all_be_accepted_with_the_default_queues_and_no_SYN_dropped_or_cookied()
    {
        const int Clients = 1000;
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var server = MtcpRuntime.Start(Sys, _fabric, NodeConfig(Server.ToString()), "server");
        await using var clients = MtcpRuntime.Start(Sys, _fabric, NodeConfig("10.0.0.2"), "clients");
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(timeout.Token);

        // The application accepts only once every client has its connection: the accept queue holds them all.
        var connecting = Enumerable.Range(0, Clients).Select(_ => new MtcpClient(clients).ConnectAsync(Service, timeout.Token)).ToArray();
        var streams = await Task.WhenAll(connecting);
        var accepted = new List<MtcpConnection>();
        for (var i = 0; i < Clients; i++)
        {
            accepted.Add(await listener.AcceptAsync(timeout.Token));
        }

        var stats = await server.GetStatisticsAsync(timeout.Token);
        var refusals = RefusalLog.Get(Sys);
        output.WriteLine($"{Clients} clients at once: {stats.SynsDropped} SYNs dropped, {refusals.Total(RefusalClass.SynQueueOverflow)} queue overflows");
        Assert.Equal(0, stats.SynsDropped);
        Assert.Equal(0, refusals.Total(RefusalClass.SynQueueOverflow));
        Assert.Equal(Clients, accepted.Select(c => c.RemoteEndPoint).Distinct().Count());
        foreach (var connection in accepted)
        {
            await connection.DisposeAsync();
        }

        foreach (var stream in streams)
        {
            await stream.DisposeAsync();
        }
    }

    [Fact]
    public async Task With_the_SYN_queue_full_of_spoofed_handshakes_a_client_must_connect_through_a_cookie_and_move_its_bytes()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var server = MtcpRuntime.Start(Sys, _fabric, NodeConfig(Server.ToString(), extra: "mtcp.runtime.syn-backlog = 4"), "server");
        await using var client = MtcpRuntime.Start(Sys, _fabric, NodeConfig("10.0.0.2"), "client");
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(timeout.Token);
        using var attacker = _fabric.Attach(Attacker);

        // Spoofed SYNs nobody will complete: the first four fill the SYN queue for the connect timeout, the rest get cookies.
        for (ushort port = 1000; port < 1100; port++)
        {
            Send(attacker, new TcpSegmentRepr { SourcePort = port, DestinationPort = ServicePort, SequenceNumber = new SeqNumber(port * 7919u), Flags = TcpFlags.Syn, Window = 65535 });
        }

        var refusals = RefusalLog.Get(Sys);
        var answered = new HashSet<ushort>();
        await AwaitConditionAsync(
            () =>
            {
                answered.UnionWith(Drain(attacker).Where(s => s.Has(TcpFlags.Syn | TcpFlags.Ack)).Select(s => s.DestinationPort));
                return Task.FromResult(answered.Count == 100);
            },
            TimeSpan.FromSeconds(10));
        Assert.Equal(96, refusals.Total(RefusalClass.SynQueueOverflow));
        Assert.Equal(4, (await server.GetStatisticsAsync(timeout.Token)).Endpoints);

        var accepting = listener.AcceptAsync(timeout.Token);
        var stream = await new MtcpClient(client).ConnectAsync(Service, timeout.Token);
        await using var connection = await accepting;
        await ExchangeBothWaysAsync(stream, connection.Stream, 256 * 1024, chunk: 16 * 1024, timeout.Token);

        Assert.Equal(97, refusals.Total(RefusalClass.SynQueueOverflow));
        Assert.Equal(0, refusals.Total(RefusalClass.SynCookieRefused));
    }

    [Fact]
    public async Task An_ACK_returning_a_forged_cookie_must_create_nothing_and_be_reset_unless_cookies_are_in_flight()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var server = MtcpRuntime.Start(Sys, _fabric, NodeConfig(Server.ToString(), extra: "mtcp.runtime.syn-cookies = always"), "server");
        await using var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync(timeout.Token);
        using var attacker = _fabric.Attach(Attacker);
        var refusals = RefusalLog.Get(Sys);

        // No cookie sent yet: an ACK for no connection is answered as CLOSED answers it (RFC 9293 §3.10.7.1).
        Send(attacker, new TcpSegmentRepr { SourcePort = 1999, DestinationPort = ServicePort, SequenceNumber = new SeqNumber(7001), AcknowledgmentNumber = new SeqNumber(0x7777_0001), Flags = TcpFlags.Ack, Window = 65535 });
        var resets = 0;
        await AwaitConditionAsync(() => Task.FromResult((resets += Drain(attacker).Count(s => s.Has(TcpFlags.Rst))) == 1), TimeSpan.FromSeconds(10));

        Send(attacker, new TcpSegmentRepr { SourcePort = 2000, DestinationPort = ServicePort, SequenceNumber = new SeqNumber(5000), Flags = TcpFlags.Syn, Window = 65535 });
        await AwaitConditionAsync(() => Task.FromResult(Drain(attacker).Any(s => s.Has(TcpFlags.Syn | TcpFlags.Ack) && s.AcknowledgmentNumber == new SeqNumber(5001))), TimeSpan.FromSeconds(10));

        // Cookies in flight: the right 4-tuple and ISN with a guessed cookie, then another 4-tuple; refused, counted, silent.
        Send(attacker, new TcpSegmentRepr { SourcePort = 2000, DestinationPort = ServicePort, SequenceNumber = new SeqNumber(5001), AcknowledgmentNumber = new SeqNumber(0x1234_5678), Flags = TcpFlags.Ack, Window = 65535 });
        Send(attacker, new TcpSegmentRepr { SourcePort = 2001, DestinationPort = ServicePort, SequenceNumber = new SeqNumber(9001), AcknowledgmentNumber = new SeqNumber(0x0BAD_F00D), Flags = TcpFlags.Ack, Window = 65535 });

        await AwaitConditionAsync(() => Task.FromResult(refusals.Total(RefusalClass.SynCookieRefused) == 3), TimeSpan.FromSeconds(10));
        await Task.Delay(TimeSpan.FromMilliseconds(200), timeout.Token);
        Assert.DoesNotContain(Drain(attacker), s => s.Has(TcpFlags.Rst));
        Assert.Equal(0, (await server.GetStatisticsAsync(timeout.Token)).Endpoints);
    }

    private static void Send(IPacketTransport attacker, TcpSegmentRepr header)
    {
        var buffer = new byte[128];
        Assert.True(header.TryEmit(buffer, default, Attacker, Server, out var written, out var error), error.ToString());
        Assert.True(attacker.Send(Server, buffer.AsSpan(0, written)));
    }

    private static List<TcpSegmentRepr> Drain(IPacketTransport attacker)
    {
        var buffer = new byte[attacker.ReceiveBufferLength];
        var segments = new List<TcpSegmentRepr>();
        while (attacker.Receive(buffer, TimeSpan.Zero, out var received) == ReceiveOutcome.Received)
        {
            if (TcpSegmentRepr.TryParse(received.SliceOf(buffer), received.Source, received.Destination, ChecksumPolicy.Verify, out var header, out _, out _))
            {
                segments.Add(header);
            }
        }

        return segments;
    }
}

using System.Diagnostics;
using Akka.Configuration;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Diagnostics;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Diagnostics;

/// <summary>
/// 30,000 forged special SYNs (TCP_MIGRATED_CONN naming a connection that never existed) at a node's listener: each
/// is refused with a RST as before, each is counted, and the node's log grows by a bounded number of lines instead
/// of one WARNING per SYN (the flood measured 29,818 lines, 9.26 MB, before the refusal summary).
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "Security")]
public sealed class RefusalFloodTests(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(
    MtcpConfig.WithFallback(ConfigurationFactory.ParseString($"{RefusalLog.IntervalPath} = 1s\nakka.loglevel = INFO")))
{
    private const int ForgedSyns = 30_000;
    private const int Batch = 500;
    private const ushort ServicePort = 7000;
    private static readonly IpAddress Node = IpAddress.Parse("10.4.0.1");
    private static readonly IpAddress Attacker = IpAddress.Parse("10.4.0.66");

    [Fact]
    public async Task Thirty_thousand_forged_special_SYNs_must_be_counted_and_logged_in_a_bounded_number_of_lines()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var fabric = new InMemoryPacketFabric();
        await using var runtime = MtcpRuntime.Start(Sys, fabric, NodeConfig(Node.ToString(), extra: $"mtcp.runtime.accept-backlog = {4 * Batch}\nmtcp.runtime.syn-backlog = {4 * Batch}"), "flooded");
        await using var listener = new MtcpListener(runtime, ServicePort);
        await listener.StartAsync(timeout.Token);
        var warnings = CreateTestProbe();
        Sys.EventStream.Subscribe(warnings.Ref, typeof(Warning));
        using var attacker = fabric.Attach(Attacker);
        var refusals = RefusalLog.Get(Sys);
        var before = refusals.Total(RefusalClass.MigrationRefused);
        var segment = new byte[128];
        var received = new byte[attacker.ReceiveBufferLength];
        long resets = 0;
        var flood = Stopwatch.StartNew();

        // In batches well within the listener's backlogs, the SYN queue's as well as the accept queue's (a refused
        // endpoint holds its SYN-queue place until it has stopped, a little after its refusal is counted: two batches
        // of 500 came within a few places of the default 1,024), so that every SYN reaches an endpoint and is refused;
        // the RSTs are read as they come.
        for (var sent = 0; sent < ForgedSyns; sent += Batch)
        {
            for (var i = sent; i < sent + Batch; i++)
            {
                var header = ForgedSpecialSyn((ushort)(1024 + (i % 60_000)), i);
                Assert.True(header.TryEmit(segment, default, Attacker, Node, out var written, out var error), error.ToString());
                Assert.True(attacker.Send(Node, segment.AsSpan(0, written)));
            }

            while (refusals.Total(RefusalClass.MigrationRefused) - before < sent + Batch)
            {
                resets += DrainResets(attacker, received);
                Assert.False(timeout.IsCancellationRequested, $"only {refusals.Total(RefusalClass.MigrationRefused) - before} of {sent + Batch} forged SYNs refused");
                await Task.Delay(1, timeout.Token);
            }
        }

        flood.Stop();

        // The last summary comes within one refusal-summary-interval (1 s) of the last refusal; a loaded machine may
        // fire its timer late, so wait for it rather than for a fixed time.
        var total = refusals.Total(RefusalClass.MigrationRefused);
        var lines = new List<string>();
        var waiting = Stopwatch.StartNew();
        while (!lines.Exists(line => line.Contains($"{total} since start", StringComparison.Ordinal)) && waiting.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(50, timeout.Token);
            while (warnings.HasMessages)
            {
                lines.Add(warnings.ExpectMsg<Warning>(TimeSpan.Zero).Message.ToString() ?? "");
            }
        }

        resets += DrainResets(attacker, received);

        output.WriteLine($"{ForgedSyns} forged special SYNs in {flood.Elapsed.TotalSeconds:0.00} s: {resets} RSTs, {lines.Count} WARNING lines");
        foreach (var line in lines)
        {
            output.WriteLine(line);
        }

        Assert.Equal(ForgedSyns, refusals.Total(RefusalClass.MigrationRefused) - before);
        Assert.True(resets >= ForgedSyns * 0.99, $"{resets} RSTs for {ForgedSyns} forged SYNs");
        Assert.InRange(lines.Count, 1, (int)flood.Elapsed.TotalSeconds + 3);
        Assert.All(lines, line => Assert.StartsWith("migration-refused: ", line, StringComparison.Ordinal));
        Assert.Contains(lines, line => line.Contains($"{refusals.Total(RefusalClass.MigrationRefused)} since start", StringComparison.Ordinal));
    }

    private static TcpSegmentRepr ForgedSpecialSyn(ushort sourcePort, int i) => new()
    {
        SourcePort = sourcePort,
        DestinationPort = ServicePort,
        SequenceNumber = new SeqNumber((uint)i * 7919),
        Flags = TcpFlags.Syn,
        Window = 65535,
        Options = new TcpOptions
        {
            MigratedConnection = new MtcpMigratedConnection(new ServerEndpoint(IpAddress.Parse("10.4.0.2"), ServicePort), sourcePort, new SeqNumber((uint)i), (ulong)i * 0x9E37_79B9_7F4A_7C15),
        },
    };

    private static long DrainResets(IPacketTransport attacker, byte[] buffer)
    {
        long resets = 0;
        while (attacker.Receive(buffer, TimeSpan.Zero, out var received) == ReceiveOutcome.Received)
        {
            if (TcpSegmentRepr.TryParse(received.SliceOf(buffer), received.Source, received.Destination, ChecksumPolicy.Verify, out var header, out _, out _)
                && (header.Flags & TcpFlags.Rst) != 0)
            {
                resets++;
            }
        }

        return resets;
    }
}

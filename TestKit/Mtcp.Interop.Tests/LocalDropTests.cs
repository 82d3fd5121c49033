using System.Diagnostics;
using System.Diagnostics.Metrics;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;
using static Mtcp.Interop.Tests.TransportAssertions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// A packet the local host drops on its way out is a lost packet, not a broken transport: with an nftables rule dropping
/// part of namespace A's output, sendmsg fails with EPERM (raw and UDP sockets alike), and the transports
/// return false, count the drop and keep sending and receiving. The engine over the protocol-6 transport then carries
/// a bulk transfer with a kernel TCP peer intact through such drops, retransmitting what was dropped.
/// </summary>
[Trait("Category", "Netns")]
public sealed class LocalDropTests(ITestOutputHelper output)
{
    private const ushort UdpPort = 47253;
    private const int Sends = 1000;
    private const int DropPercent = 30;
    private const int EngineDropPercent = 5;

    public static TheoryData<string> Transports => new() { "raw", "udp" };

    [Theory]
    [MemberData(nameof(Transports))]
    public void Send_dropped_by_an_output_rule_must_return_false_and_count_the_drop_while_receive_is_unaffected(string kind)
    {
        NetnsPrerequisites.RequireRoot();
        using var pair = VethNamespacePair.Create();
        using var a = Open(kind, pair.A, VethNamespacePair.AddressA);
        using var b = Open(kind, pair.B, VethNamespacePair.AddressB);
        using var loss = PacketLoss.Install(pair.A, DropPercent, LossHooks.Output, kind == "raw" ? "ip protocol 253" : $"udp dport {UdpPort}");
        using var measured = new DropMeasurements(kind);

        var sent = new List<int>();
        for (var i = 0; i < Sends; i++)
        {
            if (a.Send(b.LocalAddress, Numbered(i)))
            {
                sent.Add(i);
            }
        }

        var dropped = Sends - sent.Count;
        output.WriteLine($"{kind}: {dropped} of {Sends} sends dropped by the rule ({loss.DroppedOutgoing} counted by nftables); transport counts: {a.SendDrops}");

        // Every send the transport called sent arrived, in order; every one it called dropped was the rule's.
        Assert.Equal(sent, ReceiveNumbered(b, sent.Count));
        Assert.InRange(dropped, Sends * DropPercent / 100 / 2, Sends * DropPercent / 100 * 2);
        Assert.Equal(dropped, loss.DroppedOutgoing);
        Assert.Equal(dropped, a.SendDrops.Total);
        Assert.Equal(dropped, a.SendDrops[SendDropReason.Filtered]);
        Assert.Equal("EPERM", SendErrors.Name(a.SendDrops.LastErrno(SendDropReason.Filtered)));
        Assert.True(measured.Filtered >= dropped, $"the meter counted {measured.Filtered} filtered {kind} drops, fewer than the transport's {dropped}");

        // The receive side of the dropping host is untouched, and the host still sends what the rule lets pass.
        AssertCarries(b, a, seed: 5, 20, 1460, 8000);
        var buffer = new byte[b.ReceiveBufferLength];
        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (a.Send(b.LocalAddress, Numbered(attempt)))
            {
                Assert.Equal(Numbered(attempt), ReceiveOne(b, buffer, a.LocalAddress));
                return;
            }
        }

        Assert.Fail($"100 sends in a row dropped at {DropPercent}% loss");
    }

    [Fact]
    public void Engine_must_carry_10_MB_each_way_with_kernel_TCP_through_5_percent_output_drop()
    {
        NetnsPrerequisites.RequireRoot();
        using var pair = VethNamespacePair.Create();
        // On the engine's side only: every segment it sends crosses this hook, and each one dropped fails its sendmsg.
        using var loss = PacketLoss.InstallOnInterface(pair.A, VethNamespacePair.InterfaceName, EngineDropPercent, LossHooks.Output);

        var engineClient = Stopwatch.StartNew();
        KernelInteropTests.EngineClientAgainstKernelServer(pair, seed: 3, output);
        engineClient.Stop();
        var afterClient = loss.DroppedOutgoing;
        var engineServer = Stopwatch.StartNew();
        KernelInteropTests.KernelClientAgainstEngineServer(pair, seed: 4, output);
        engineServer.Stop();

        output.WriteLine(
            $"{EngineDropPercent}% output drop: engine client {engineClient.Elapsed.TotalSeconds:0.0} s ({afterClient} packets dropped), " +
            $"engine server {engineServer.Elapsed.TotalSeconds:0.0} s ({loss.DroppedOutgoing - afterClient} dropped)");
        Assert.True(afterClient > 0 && loss.DroppedOutgoing > afterClient, "the rule dropped nothing: the transfers did not cross it");
    }

    private static IPacketTransport Open(string kind, NetworkNamespace ns, IpAddress address) =>
        ns.Run<IPacketTransport>(() => kind == "raw" ? RawIPv4Transport.OpenExperimental(address) : UdpEncapsulationTransport.Open(address, UdpPort, UdpPort));

    private static byte[] Numbered(int i) => [.. BitConverter.GetBytes(i), .. SeededBytes(i, 60)];

    private static List<int> ReceiveNumbered(IPacketTransport transport, int expected)
    {
        var buffer = new byte[transport.ReceiveBufferLength];
        var numbers = new List<int>();
        // Bounded: one more receive than expected, which must time out.
        for (var i = 0; i <= expected; i++)
        {
            var outcome = transport.Receive(buffer, i < expected ? ReceiveTimeout : TimeSpan.FromMilliseconds(200), out var received);
            if (outcome != ReceiveOutcome.Received)
            {
                break;
            }

            numbers.Add(BitConverter.ToInt32(received.SliceOf(buffer.AsSpan())));
        }

        return numbers;
    }

    /// <summary>The meter's filtered drops of one transport kind, recorded while it lives (other tests may add theirs).</summary>
    private sealed class DropMeasurements : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _filtered;

        public DropMeasurements(string kind)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == TransportMetrics.MeterName && instrument.Name == "mtcp.transport.send_dropped")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                string? transport = null;
                string? reason = null;
                foreach (var tag in tags)
                {
                    transport = tag.Key == "transport" ? tag.Value as string : transport;
                    reason = tag.Key == "reason" ? tag.Value as string : reason;
                }

                if (transport == kind && reason == "filtered")
                {
                    Interlocked.Add(ref _filtered, value);
                }
            });
            _listener.Start();
        }

        public long Filtered => Interlocked.Read(ref _filtered);

        public void Dispose() => _listener.Dispose();
    }
}

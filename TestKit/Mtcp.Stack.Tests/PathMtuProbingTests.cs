using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Packetization-layer path MTU discovery (RFC 4821, RFC 8899), sans-IO: a link that silently drops the server's
/// segments above its MTU (a PMTU black hole: no ICMP) is found by the retransmission timeouts of full-sized segments
/// and the transfer completes at the base MSS; probes of real data raise the MSS again when the path widens; a lost
/// probe is not congestion; random loss is no black hole; a forged acknowledgment cannot deliver a probe.
/// </summary>
[Trait("Category", "Stack")]
public sealed class PathMtuProbingTests
{
    private const int Ceiling = 1400;
    private const int NarrowMtu = 1100;
    private const int ServerBytes = 400_000;
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);
    private static readonly TcpConfig Config = TcpConfig.Default with { MaxSegmentSize = Ceiling };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_black_hole_must_be_found_and_the_transfer_must_complete_byte_exact_at_the_base_mss(bool sack)
    {
        var pair = new TcpPair(seed: 4821, LinkConditions.Perfect, Config with { SelectiveAcknowledgment = sack }, clientBytes: 1_000, serverBytes: ServerBytes);
        pair.Network.SetLinkConditions(pair.Server.Address, pair.Client.Address, LinkConditions.Perfect with { Mtu = NarrowMtu });

        Assert.True(pair.DriveToClose(Limit), Describe(pair));

        Assert.Equal(ServerBytes, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        var server = pair.ServerConnection!;
        Assert.Equal(1, server.Stats.PathMtuBlackHoles);
        Assert.Equal(Config.BaseSegmentSize, server.SendMss);
        Assert.Equal(Config.BlackHoleTimeouts, server.Stats.RetransmissionTimeouts);
        Assert.Equal(0, server.Stats.PathMtuReductions);
        if (sack)
        {
            // The search up from the base found every size above it too big for the link's packets with option room.
            Assert.InRange(server.Stats.PathMtuProbes, 1, 10);
            Assert.Equal(0, server.Stats.PathMtuIncreases);
        }
    }

    [Fact]
    public void Without_probing_a_black_hole_must_stall_the_transfer()
    {
        // The same link with the mechanism off: what the black-hole test above would see without it.
        var pair = new TcpPair(seed: 4821, LinkConditions.Perfect, Config with { PathMtuProbing = false }, clientBytes: 1_000, serverBytes: ServerBytes);
        pair.Network.SetLinkConditions(pair.Server.Address, pair.Client.Address, LinkConditions.Perfect with { Mtu = NarrowMtu });

        pair.DriveToClose(Limit);

        Assert.True(pair.ClientApp.BytesRead < ServerBytes, Describe(pair));
        Assert.Equal(0, pair.ServerConnection!.Stats.PathMtuBlackHoles);
        Assert.Equal(Ceiling, pair.ServerConnection.SendMss);
    }

    [Fact]
    public void A_path_that_widens_after_a_black_hole_must_be_probed_up_to_the_ceiling()
    {
        var config = Config with { PathMtuRaiseInterval = TimeSpan.FromMilliseconds(500) };
        var pair = new TcpPair(seed: 8899, LinkConditions.Perfect, config, clientBytes: 1_000, serverBytes: 4_000_000);
        var narrow = true;
        var largest = 0;
        pair.Network.Drop = packet =>
        {
            if (packet.Source != pair.Server.Address)
            {
                return false;
            }

            largest = Math.Max(largest, packet.Payload.Length);
            return narrow && packet.Size > NarrowMtu;
        };

        Assert.True(pair.Network.Drive(() => pair.ServerConnection is { Stats.PathMtuBlackHoles: 1 }, Limit), Describe(pair));
        var server = pair.ServerConnection!;
        Assert.Equal(config.BaseSegmentSize, server.SendMss);
        narrow = false;

        Assert.True(pair.DriveToClose(Limit), Describe(pair));

        Assert.Equal(4_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(Ceiling, server.SendMss);
        Assert.Equal(Ceiling, largest);
        Assert.InRange(server.Stats.PathMtuIncreases, 2, 20);
    }

    [Fact]
    public void A_path_that_widens_after_a_packet_too_big_must_be_probed_up_after_the_raise_interval()
    {
        var config = Config with { PathMtuRaiseInterval = TimeSpan.FromMilliseconds(300) };
        var pair = new TcpPair(seed: 1191, LinkConditions.Perfect, config, clientBytes: 1_000, serverBytes: 4_000_000);
        var linkMtu = NarrowMtu;
        Instant? loweredAt = null;
        Instant? firstProbeAt = null;
        pair.Network.Drop = packet =>
        {
            if (packet.Source != pair.Server.Address)
            {
                return false;
            }

            var server = pair.ServerConnection!;
            if (loweredAt is not null && firstProbeAt is null && packet.Payload.Length > server.SendMss)
            {
                firstProbeAt = pair.Network.Now;
            }

            if (packet.Size <= linkMtu)
            {
                return false;
            }

            if (server.HandlePacketTooBig(packet.Header.SourcePort, packet.Header.DestinationPort, packet.Header.SequenceNumber, linkMtu, ipv6: false, carrierHeaderLength: 0) == PacketTooBigVerdict.Lowered)
            {
                loweredAt = pair.Network.Now;
            }

            return true;
        };

        Assert.True(pair.Network.Drive(() => loweredAt is not null, Limit), Describe(pair));
        var server = pair.ServerConnection!;
        Assert.Equal(TcpConnection.SegmentSizeForPathMtu(NarrowMtu, ipv6: false, carrierHeaderLength: 0), server.SendMss);
        linkMtu = 1500;

        Assert.True(pair.DriveToClose(Limit), Describe(pair));

        Assert.Equal(4_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(Ceiling, server.SendMss);
        Assert.True(firstProbeAt - loweredAt >= config.PathMtuRaiseInterval, $"lowered at {loweredAt}, first probe at {firstProbeAt}");
        Assert.Equal(0, server.Stats.PathMtuProbesLost);
        Assert.Equal(0, server.Stats.RetransmissionTimeouts);
    }

    [Fact]
    public void A_lost_probe_must_not_shrink_the_congestion_window()
    {
        // An ICMP report lowers the MSS once; the link then drops every larger packet silently, so each probe up is lost.
        var config = Config with { PathMtuRaiseInterval = TimeSpan.FromMilliseconds(200) };
        var pair = new TcpPair(seed: 4575, LinkConditions.Perfect, config, clientBytes: 1_000, serverBytes: 4_000_000);
        var probesDropped = 0;
        (int Window, int Threshold)? atFirstProbeLoss = null;
        NarrowLinkReportingOnce(pair, _ =>
        {
            if (probesDropped++ == 0)
            {
                atFirstProbeLoss = (pair.ServerConnection!.CongestionWindow, pair.ServerConnection.SlowStartThreshold);
            }
        });

        Assert.True(pair.Network.Drive(() => pair.ServerConnection is { Stats.PathMtuProbesLost: 1 }, Limit), Describe(pair));
        var server = pair.ServerConnection!;
        Assert.NotNull(atFirstProbeLoss);
        Assert.True(server.CongestionWindow >= atFirstProbeLoss.Value.Window, $"cwnd {server.CongestionWindow} fell below {atFirstProbeLoss.Value.Window}");
        Assert.Equal(atFirstProbeLoss.Value.Threshold, server.SlowStartThreshold);
        Assert.False(server.InLossRecovery);

        Assert.True(pair.DriveToClose(Limit), Describe(pair));
        Assert.Equal(4_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(0, server.Stats.FastRetransmits);
        Assert.Equal(0, server.Stats.RetransmissionTimeouts);
        Assert.Equal(TcpConnection.SegmentSizeForPathMtu(NarrowMtu, ipv6: false, carrierHeaderLength: 0), server.SendMss);
        Assert.InRange(server.Stats.PathMtuProbesLost, 1, server.Stats.PathMtuProbes);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Random_loss_without_a_black_hole_must_not_lower_the_mss_below_the_base(int seed)
    {
        var pair = new TcpPair(seed, LinkConditions.Perfect with { LossRate = 0.05 }, Config, clientBytes: 200_000, serverBytes: 1_000_000);
        var least = int.MaxValue;

        var closed = pair.Network.Drive(
            () =>
            {
                foreach (var end in new[] { pair.ClientConnection, pair.ServerConnection })
                {
                    // Before the SYN settles it the MSS is RFC 9293's default of 536.
                    if (end is { State: not (TcpState.SynSent or TcpState.SynReceived or TcpState.Listen) } settled)
                    {
                        least = Math.Min(least, settled.SendMss);
                    }
                }

                return pair.BothClosed;
            },
            Limit);

        Assert.True(closed && pair.DriveToClose(Limit), Describe(pair));
        Assert.Equal(1_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(200_000, pair.ServerApp.BytesRead);
        Assert.Equal(-1, pair.ServerApp.FirstMismatch);
        Assert.True(least >= Config.BaseSegmentSize, $"the MSS fell to {least}");

        // RFC 4821 §7.2: only a run of timeouts of the same full-sized segment is a black hole.
        foreach (var end in new[] { pair.ClientConnection, pair.ServerConnection! })
        {
            Assert.True(end.Stats.PathMtuBlackHoles * Config.BlackHoleTimeouts <= end.Stats.RetransmissionTimeouts, Describe(pair));
        }
    }

    [Fact]
    public void A_forged_acknowledgment_must_not_make_a_lost_probe_count_as_delivered()
    {
        var config = Config with { PathMtuRaiseInterval = TimeSpan.FromMilliseconds(200) };
        var pair = new TcpPair(seed: 5961, LinkConditions.Perfect, config, clientBytes: 1_000, serverBytes: 2_000_000);
        var forged = 0;
        NarrowLinkReportingOnce(pair, packet =>
        {
            var server = pair.ServerConnection!;
            // The probe is dropped; a stranger claims its delivery: from outside the window (ahead, behind), beyond
            // what was sent, and in a SACK block that even carries the peer's sequence number. (One who also knows the
            // peer's sequence numbers can acknowledge any byte in flight, the probe's or not: that is no longer a forgery
            // TCP can tell from its peer, RFC 5961 §5.)
            var probeStart = packet.Header.SequenceNumber;
            var probeEnd = probeStart + packet.Payload.Length;
            var client = pair.ClientConnection;
            var ack = new TcpSegmentRepr
            {
                SourcePort = server.RemotePort,
                DestinationPort = server.LocalPort,
                SequenceNumber = client.SendNext,
                AcknowledgmentNumber = probeEnd,
                Flags = TcpFlags.Ack,
                Window = (ushort)(client.Config.ReceiveBufferSize >> client.ReceiveWindowShift),
            };
            foreach (var forgery in new[]
            {
                ack with { SequenceNumber = client.SendNext + (1 << 30) },
                ack with { AcknowledgmentNumber = server.SendMax + 100_000 },
                ack with { AcknowledgmentNumber = server.SendUnacknowledged, Options = new TcpOptions { Sack = default(SackBlockList).Add(new SackBlock(probeStart, probeEnd)) } },
                ack with { SequenceNumber = client.SendNext - (1 << 20) },
            })
            {
                pair.Network.Inject(new SimPacket(pair.Client.Address, pair.Server.Address, forgery, ReadOnlyMemory<byte>.Empty));
                forged++;
            }
        });

        Assert.True(pair.DriveToClose(Limit), Describe(pair));

        var server = pair.ServerConnection!;
        Assert.True(forged >= 4, $"{forged} forgeries");
        Assert.Equal(2_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(0, server.Stats.PathMtuIncreases);
        Assert.Equal(TcpConnection.SegmentSizeForPathMtu(NarrowMtu, ipv6: false, carrierHeaderLength: 0), server.SendMss);
        Assert.Equal(server.Stats.PathMtuProbes, server.Stats.PathMtuProbesLost);
    }

    /// <summary>
    /// The link in front of the client takes packets up to <see cref="NarrowMtu"/>: its router reports the server's first
    /// larger segment (an ICMP report the server believes), then its reports are filtered and every later larger packet
    /// of the server vanishes silently, seen by <paramref name="onSilentDrop"/>: a path where every probe up is lost.
    /// </summary>
    private static void NarrowLinkReportingOnce(TcpPair pair, Action<SimPacket> onSilentDrop)
    {
        var reported = false;
        pair.Network.Drop = packet =>
        {
            if (packet.Source != pair.Server.Address || packet.Size <= NarrowMtu)
            {
                return false;
            }

            if (!reported)
            {
                reported = pair.ServerConnection!.HandlePacketTooBig(packet.Header.SourcePort, packet.Header.DestinationPort, packet.Header.SequenceNumber, NarrowMtu, ipv6: false, carrierHeaderLength: 0) == PacketTooBigVerdict.Lowered;
            }
            else
            {
                onSilentDrop(packet);
            }

            return true;
        };
    }

    /// <summary>The pair's account with the server's path MTU state, for assertion messages.</summary>
    private static string Describe(TcpPair pair)
    {
        var server = pair.ServerConnection;
        return server is null
            ? pair.Describe()
            : $"{pair.Describe()} server[mss={server.SendMss} una={server.SendUnacknowledged} nxt={server.SendNext} max={server.SendMax} cwnd={server.CongestionWindow} "
              + $"rtos={server.Stats.RetransmissionTimeouts} probes={server.Stats.PathMtuProbes} lost={server.Stats.PathMtuProbesLost} up={server.Stats.PathMtuIncreases} "
              + $"blackholes={server.Stats.PathMtuBlackHoles} recovery={server.InLossRecovery} sacked={server.SackedSegments}/{server.ScoreboardSegments}]";
    }
}

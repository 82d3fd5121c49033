using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Packetization-layer path MTU discovery (RFC 4821, RFC 8899), sans-IO: a link that silently drops the server's
/// segments above its MTU (a PMTU black hole: no ICMP) is found by the retransmission timeouts of full-sized segments
/// and the transfer completes at the base MSS; probes of real data raise the MSS again when the path widens, with SACK
/// and without it (where duplicate ACKs naming the probe tell it lost, RFC 4821 §7.5); a lost probe is not congestion;
/// an ICMP report quoting a probe narrows the search to the reported MTU; random loss is no black hole; forged
/// acknowledgments and reports change nothing.
/// </summary>
[Trait("Category", "Stack")]
public sealed class PathMtuProbingTests
{
    private const int Ceiling = 1400;
    private const int NarrowMtu = 1100;

    /// <summary>A link that carries more than the base MSS but not the ceiling: a search after a black hole ends inside it.</summary>
    private const int MiddleMtu = 1300;
    private const int ServerBytes = 400_000;
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A send buffer four times the peer's receive window, as Linux autotunes one: a probe is made of queued data beyond
    /// the flight (RFC 4821 §7.4), and a buffer no larger than the window holds only the flight once the window limits it.
    /// </summary>
    private static readonly TcpConfig Config = TcpConfig.Default with { MaxSegmentSize = Ceiling, SendBufferSize = 4 * TcpConfig.Default.ReceiveBufferSize };

    /// <summary>
    /// A 10 MB/s link: a flight's segments arrive one after another and each out-of-order one draws its own duplicate
    /// ACK, as on a real link. On an unpaced simulated link a whole flight arrives at one instant and the receiver answers
    /// it with one ACK, which leaves a sender without SACK no duplicate ACKs to count.
    /// </summary>
    private static readonly LinkConditions Paced = LinkConditions.Perfect with { BandwidthBytesPerSecond = 10_000_000 };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_black_hole_must_be_found_and_the_transfer_must_complete_byte_exact_at_the_base_mss(bool sack)
    {
        var pair = new TcpPair(seed: 4821, Paced, Config with { SelectiveAcknowledgment = sack }, clientBytes: 1_000, serverBytes: ServerBytes);
        pair.Network.SetLinkConditions(pair.Server.Address, pair.Client.Address, Paced with { Mtu = NarrowMtu });

        Assert.True(pair.DriveToClose(Limit), Describe(pair));

        Assert.Equal(ServerBytes, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        var server = pair.ServerConnection!;
        Assert.Equal(1, server.Stats.PathMtuBlackHoles);
        Assert.Equal(Config.BaseSegmentSize, server.SendMss);
        Assert.Equal(0, server.Stats.PathMtuReductions);

        // The search up from the base found every size above it too big for the link's packets with option room, and
        // each lost probe was told from congestion without a timeout: by SACK, or without it by the duplicate ACKs of the
        // segments sent after it.
        Assert.True(Config.BlackHoleTimeouts == server.Stats.RetransmissionTimeouts, Describe(pair));
        Assert.InRange(server.Stats.PathMtuProbes, 1, 10);
        Assert.InRange(server.Stats.PathMtuProbesLost, 1, server.Stats.PathMtuProbes);
        Assert.Equal(0, server.Stats.PathMtuIncreases);
        Assert.Equal(0, server.Stats.FastRetransmits);
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

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_path_that_widens_after_a_black_hole_must_be_probed_up_to_the_ceiling(bool sack)
    {
        var config = Config with { PathMtuRaiseInterval = TimeSpan.FromMilliseconds(500), SelectiveAcknowledgment = sack };
        var pair = new TcpPair(seed: 8899, Paced, config, clientBytes: 1_000, serverBytes: 4_000_000);
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
        Assert.Equal(0, server.Stats.PathMtuProbesLost);
        Assert.Equal(config.BlackHoleTimeouts, server.Stats.RetransmissionTimeouts);
    }

    /// <summary>
    /// Without SACK a lost probe is told by duplicate ACKs naming its first byte; a stranger who knows the 4-tuple sends
    /// such ACKs for every probe, from outside the peer's window (ahead and behind), so that a delivered probe would
    /// count as lost and the search would never get up: the forgeries must be dropped, and the search must reach the
    /// ceiling without a lost probe. The same ACKs with the peer's own sequence number (what only
    /// the peer, or one who sees its segments, can send) do make the probes count as lost: the forgeries would matter.
    /// </summary>
    [Fact]
    public void Forged_duplicate_acks_naming_a_probe_must_not_make_it_count_as_lost()
    {
        var (forged, server) = ProbeUpWithDuplicateAcks(peerSequenceOffset: 1 << 30);
        var (sentAsThePeer, control) = ProbeUpWithDuplicateAcks(peerSequenceOffset: 0);

        Assert.True(forged >= 10, $"{forged} forgeries");
        Assert.Equal(Ceiling, server.SendMss);
        Assert.Equal(0, server.Stats.PathMtuProbesLost);
        Assert.True(sentAsThePeer >= 5, $"{sentAsThePeer} duplicate ACKs sent as the peer");
        Assert.True(control.Stats.PathMtuProbesLost >= 1, $"in-window duplicate ACKs made no probe count as lost: {control.Stats.PathMtu}");
    }

    /// <summary>
    /// A black hole, then a path that carries everything: for each probe as it is sent, four ACKs naming its first byte
    /// with the peer's next sequence number plus <paramref name="peerSequenceOffset"/>, and one from behind the window. Returns how many were injected and the server's control block once the transfer is done.
    /// </summary>
    private static (int Injected, TcpConnection Server) ProbeUpWithDuplicateAcks(int peerSequenceOffset)
    {
        var config = Config with { PathMtuRaiseInterval = TimeSpan.FromMilliseconds(500), SelectiveAcknowledgment = false };
        var pair = new TcpPair(seed: 8899, Paced, config, clientBytes: 1_000, serverBytes: 4_000_000);
        var narrow = true;
        var injected = 0;
        pair.Network.Drop = packet =>
        {
            var server = pair.ServerConnection!;
            if (packet.Source != pair.Server.Address)
            {
                return false;
            }

            if (!narrow && packet.Payload.Length > server.SendMss && packet.Header.SequenceNumber == server.SendMax - packet.Payload.Length)
            {
                // They arrive with the peer's ACKs of the data before the probe and ahead of the probe's own: the first
                // acknowledges up to the probe, the next three repeat it.
                var client = pair.ClientConnection;
                var duplicate = new TcpSegmentRepr
                {
                    SourcePort = server.RemotePort,
                    DestinationPort = server.LocalPort,
                    SequenceNumber = client.SendNext + peerSequenceOffset,
                    AcknowledgmentNumber = packet.Header.SequenceNumber,
                    Flags = TcpFlags.Ack,
                    Window = (ushort)(server.SendWindow >> server.SendWindowShift),
                };
                foreach (var forgery in new[] { duplicate, duplicate, duplicate, duplicate, duplicate with { SequenceNumber = client.SendNext - (1 << 20) } })
                {
                    pair.Network.Inject(new SimPacket(pair.Client.Address, pair.Server.Address, forgery, ReadOnlyMemory<byte>.Empty));
                    injected++;
                }
            }

            return narrow && packet.Size > NarrowMtu;
        };

        Assert.True(pair.Network.Drive(() => pair.ServerConnection is { Stats.PathMtuBlackHoles: 1 }, Limit), Describe(pair));
        narrow = false;
        Assert.True(pair.DriveToClose(Limit), Describe(pair));
        Assert.Equal(4_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        return (injected, pair.ServerConnection!);
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

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_lost_probe_must_not_shrink_the_congestion_window(bool sack)
    {
        // An ICMP report lowers the MSS once; the link then drops every larger packet silently, so each probe up is lost.
        var config = Config with { PathMtuRaiseInterval = TimeSpan.FromMilliseconds(200), SelectiveAcknowledgment = sack };
        var pair = new TcpPair(seed: 4575, Paced, config, clientBytes: 1_000, serverBytes: 4_000_000);
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

    /// <summary>
    /// After a black hole (the router's reports filtered) the reports come back: the probe above the link is reported,
    /// quoting it, with the link's MTU. The report must narrow the search at once to what that MTU carries (RFC 8899
    /// §4.6.2, RFC 4821 §7.6): the next probes stay within it, so no other probe is lost, and the MSS ends at the link's
    /// own within the search's resolution; halving alone would lose a second probe above the link.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_packet_too_big_naming_a_probe_must_narrow_the_search_to_the_reported_mtu(bool sack)
    {
        var config = Config with { SelectiveAcknowledgment = sack };
        var pair = new TcpPair(seed: 8201, Paced, config, clientBytes: 1_000, serverBytes: 2_000_000);
        var reporting = false;
        var verdicts = new List<PacketTooBigVerdict>();
        pair.Network.Drop = packet =>
        {
            if (packet.Source != pair.Server.Address || packet.Size <= MiddleMtu)
            {
                return false;
            }

            if (reporting)
            {
                verdicts.Add(pair.ServerConnection!.HandlePacketTooBig(packet.Header.SourcePort, packet.Header.DestinationPort, packet.Header.SequenceNumber, MiddleMtu, ipv6: false, carrierHeaderLength: 0));
            }

            return true;
        };

        Assert.True(pair.Network.Drive(() => pair.ServerConnection is { Stats.PathMtuBlackHoles: 1 }, Limit), Describe(pair));
        reporting = true;
        Assert.True(pair.DriveToClose(Limit), Describe(pair));

        var server = pair.ServerConnection!;
        var linkMss = TcpConnection.SegmentSizeForPathMtu(MiddleMtu, ipv6: false, carrierHeaderLength: 0);
        Assert.Equal(2_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal([PacketTooBigVerdict.ProbeTooBig], verdicts);
        Assert.Equal(1, server.Stats.PathMtuProbesLost);
        Assert.Equal(0, server.Stats.PathMtuReductions);
        Assert.InRange(server.SendMss, linkMss - config.PathMtuSearchStep, linkMss);
        Assert.Equal(config.BlackHoleTimeouts, server.Stats.RetransmissionTimeouts);
        Assert.Equal(0, server.Stats.FastRetransmits);
    }

    /// <summary>
    /// A search is under way above the base when the path narrows below the MSS the search has already reached, and the
    /// router reports the probe in flight: the MSS must go down to the report's, the probe count as lost, and the search
    /// start over only after the raise interval, from the reported size, never from what the old path carried.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_packet_too_big_below_the_mss_during_a_search_must_lower_the_mss_and_end_the_search(bool sack)
    {
        var config = Config with { SelectiveAcknowledgment = sack, PathMtuRaiseInterval = TimeSpan.FromMilliseconds(300) };
        var pair = new TcpPair(seed: 4821, Paced, config, clientBytes: 1_000, serverBytes: 4_000_000);
        var linkMtu = MiddleMtu;
        PacketTooBigVerdict? verdict = null;
        Instant? loweredAt = null;
        Instant? nextProbeAt = null;
        long probesLostBefore = 0;
        pair.Network.Drop = packet =>
        {
            var server = pair.ServerConnection!;
            if (packet.Source != pair.Server.Address)
            {
                return false;
            }

            var isProbe = packet.Payload.Length > server.SendMss && packet.Header.SequenceNumber == server.SendMax - packet.Payload.Length;
            if (verdict is null && isProbe && server.SendMss > config.BaseSegmentSize)
            {
                // The search has raised the MSS once and sent its next probe: the path narrows under it.
                linkMtu = NarrowMtu;
                probesLostBefore = server.Stats.PathMtuProbesLost;
                verdict = server.HandlePacketTooBig(packet.Header.SourcePort, packet.Header.DestinationPort, packet.Header.SequenceNumber, NarrowMtu, ipv6: false, carrierHeaderLength: 0);
                loweredAt = pair.Network.Now;
                return true;
            }

            if (loweredAt is not null && nextProbeAt is null && isProbe)
            {
                nextProbeAt = pair.Network.Now;
            }

            return packet.Size > linkMtu;
        };

        Assert.True(pair.DriveToClose(Limit), Describe(pair));

        var server = pair.ServerConnection!;
        Assert.Equal(4_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(PacketTooBigVerdict.Lowered, verdict);
        Assert.Equal(1, server.Stats.PathMtuReductions);
        Assert.Equal(TcpConnection.SegmentSizeForPathMtu(NarrowMtu, ipv6: false, carrierHeaderLength: 0), server.SendMss);
        Assert.Equal(server.Stats.PathMtuProbes, server.Stats.PathMtuProbesLost + server.Stats.PathMtuIncreases);
        Assert.True(server.Stats.PathMtuProbesLost > probesLostBefore, Describe(pair));
        Assert.True(nextProbeAt is null || nextProbeAt - loweredAt >= config.PathMtuRaiseInterval, $"lowered at {loweredAt}, next probe at {nextProbeAt}");
    }

    /// <summary>
    /// Reports a stranger can forge about a search under way change nothing: the probe's own sequence number with an MTU
    /// the probe fits, a byte in flight that is not the probe with an MTU between the MSS and the probe, a byte beyond
    /// SND.MAX, other ports. (One who knows a byte in flight can lower the MSS with a smaller MTU, as RFC 5927 §4.1
    /// accepts; <c>PathMtuTests</c> covers that bound.) The same transfer with and without them must probe the same sizes and end at the same MSS.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Forged_packet_too_big_reports_about_a_probe_must_change_nothing(bool sack)
    {
        var clean = SearchAfterBlackHole(sack, forge: false);
        var forged = SearchAfterBlackHole(sack, forge: true);

        Assert.True(forged.Refused >= 8, $"{forged.Refused} forgeries refused");
        Assert.Equal(0, clean.Refused);
        Assert.Equal(clean.Probes, forged.Probes);
        Assert.Equal(clean.Counts, forged.Counts);
        Assert.Equal(clean.Mss, forged.Mss);
    }

    private static (List<int> Probes, PathMtuCounts Counts, int Mss, int Refused) SearchAfterBlackHole(bool sack, bool forge)
    {
        var pair = new TcpPair(seed: 6994, Paced, Config with { SelectiveAcknowledgment = sack }, clientBytes: 1_000, serverBytes: 2_000_000);
        var probes = new List<int>();
        var refused = 0;
        pair.Network.Drop = packet =>
        {
            var server = pair.ServerConnection!;
            if (packet.Source != pair.Server.Address)
            {
                return false;
            }

            var start = packet.Header.SequenceNumber;
            if (server.Stats.PathMtuBlackHoles > 0 && packet.Payload.Length > server.SendMss && start == server.SendMax - packet.Payload.Length)
            {
                probes.Add(packet.Payload.Length);
                if (forge)
                {
                    var (source, destination) = (packet.Header.SourcePort, packet.Header.DestinationPort);
                    var probePacket = packet.Size + packet.Header.Options.PaddedLength;

                    // Carries the MSS (with the engine's option room), not the probe: a report that would narrow the
                    // search if it quoted the probe, and lower nothing.
                    var betweenMssAndProbe = server.SendMss + 80;
                    var verdicts = new[]
                    {
                        server.HandlePacketTooBig(source, destination, start, probePacket, ipv6: false, carrierHeaderLength: 0),
                        server.HandlePacketTooBig(source, destination, start + 1, 9000, ipv6: false, carrierHeaderLength: 0),
                        server.HandlePacketTooBig(source, destination, server.SendMax, betweenMssAndProbe, ipv6: false, carrierHeaderLength: 0),
                        server.HandlePacketTooBig(source, destination, server.SendMax + 100_000, betweenMssAndProbe, ipv6: false, carrierHeaderLength: 0),
                        server.HandlePacketTooBig((ushort)(source + 1), destination, start, betweenMssAndProbe, ipv6: false, carrierHeaderLength: 0),
                        server.HandlePacketTooBig(source, (ushort)(destination + 1), start, betweenMssAndProbe, ipv6: false, carrierHeaderLength: 0),
                        server.SendUnacknowledged < start
                            ? server.HandlePacketTooBig(source, destination, server.SendUnacknowledged, betweenMssAndProbe, ipv6: false, carrierHeaderLength: 0)
                            : PacketTooBigVerdict.NotSmaller,
                    };
                    Assert.DoesNotContain(verdicts, verdict => verdict is PacketTooBigVerdict.Lowered or PacketTooBigVerdict.ProbeTooBig);
                    refused += verdicts.Length;
                }
            }

            return packet.Size > MiddleMtu;
        };

        Assert.True(pair.DriveToClose(Limit), Describe(pair));
        Assert.Equal(2_000_000, pair.ClientApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(1, pair.ServerConnection!.Stats.PathMtuBlackHoles);
        return (probes, pair.ServerConnection.Stats.PathMtu, pair.ServerConnection.SendMss, refused);
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

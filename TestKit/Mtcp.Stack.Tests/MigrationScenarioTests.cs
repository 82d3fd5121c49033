using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The scenarios thesis chapters 3 and 4 draw, each run on the multi-host simulator (client, S1, S2, S3) and each
/// ending with the client holding exactly the reference stream and every endpoint closed.
/// </summary>
[Trait("Category", "Migration")]
public sealed class MigrationScenarioTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(30);
    private static readonly ServerEndpoint S1 = MigrationTestbed.EndpointOf(0);
    private static readonly ServerEndpoint S2 = MigrationTestbed.EndpointOf(1);
    private static readonly ServerEndpoint S3 = MigrationTestbed.EndpointOf(2);

    [Theory]
    [InlineData(ReferenceService.Stream)]
    [InlineData(ReferenceService.File)]
    [InlineData(ReferenceService.RequestResponse)]
    public void One_migration_must_deliver_the_reference_stream_byte_for_byte_and_stay_invisible_to_the_client_application(ReferenceService service)
    {
        var bed = new MigrationTestbed(1, LinkConditions.Perfect, new TestbedOptions { Service = service });
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);
        Assert.True(bed.Migrate(1), bed.Describe());

        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.MigrationsCompleted);
        Assert.Equal(S2, bed.Connection.CurrentServer);
        Assert.Equal([TcpEvent.Connected, TcpEvent.PeerClosed], bed.ClientApp.Events.Where(e => e is not (TcpEvent.Readable or TcpEvent.Writable or TcpEvent.Closed)));
    }

    [Theory]
    [InlineData("fd00:51::", "fd00:51::", true)]
    [InlineData("2001:db8:1::", "2001:db8:2::", false)]
    public void IPv6_migration_must_keep_the_stream_exact_with_sack_and_window_scaling_when_the_servers_share_a_64(string firstPrefix, string otherPrefix, bool sameSubnet)
    {
        // The special SYN's TCP_MIGRATED_CONN names an origin on the destination's /64 by its low 64 bits, so MSS, window
        // scale and SACK-permitted fit beside it; an origin on another /64 travels whole and leaves room for the MSS only.
        var bed = new MigrationTestbed(31, LinkConditions.Perfect, new TestbedOptions
        {
            ClientAddress = IpAddress.Parse("2001:db8:c::1"),
            ServerAddress = index => IpAddress.Parse((index == 0 ? firstPrefix : otherPrefix) + (0x11 + index).ToString("x", System.Globalization.CultureInfo.InvariantCulture)),
            ServerCount = 2,
        });
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);
        Assert.True(bed.Connection.CurrentControlBlock.SackAgreed);

        // The client keeps its port, as the runtime does by default: an explicit client port adds the 2 bytes that an
        // origin on another /64 has no room for.
        bed.Connection.BeginMigration(bed.Network.Now, bed.Endpoint(1), new SeqNumber(0x1234_5678), localPort: null);
        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1);

        var migrated = bed.Connection.CurrentControlBlock;
        Assert.Equal(bed.Endpoint(1), bed.Connection.CurrentServer);
        Assert.Equal(sameSubnet, migrated.SackAgreed);
        Assert.Equal(sameSubnet ? bed.Options.Tcp.WindowScaleShift!.Value : 0, migrated.ReceiveWindowShift);
        Finish(bed);
        Assert.Equal(1, bed.Connection.Stats.MigrationsCompleted);
    }

    [Fact]
    public void IPv6_migration_to_another_64_on_a_port_of_its_own_must_go_out_without_the_mss_and_keep_the_stream_exact()
    {
        // TCP_MIGRATED_CONN naming an IPv6 origin on another /64 with the client's port takes 38 of the 40 option bytes:
        // beside it no SYN option fits, not even the MSS (4). The special SYN goes out with the MTCP option alone, and the
        // new server sends segments of the default MSS (RFC 9293 §3.7.1) rather than the SYN not going out at all.
        var bed = new MigrationTestbed(32, LinkConditions.Perfect, new TestbedOptions
        {
            ClientAddress = IpAddress.Parse("2001:db8:c::1"),
            ServerAddress = index => IpAddress.Parse(index == 0 ? "2001:db8:1::11" : "2001:db8:2::12"),
            ServerCount = 2,
        });
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);
        var port = (ushort)(bed.Connection.CurrentControlBlock.LocalPort + 1);

        bed.Connection.BeginMigration(bed.Network.Now, bed.Endpoint(1), new SeqNumber(0x1234_5678), port);
        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1);

        var migrated = bed.Connection.CurrentControlBlock;
        Assert.Equal(bed.Endpoint(1), bed.Connection.CurrentServer);
        Assert.Equal(port, migrated.LocalPort);
        Assert.False(migrated.SackAgreed);
        Assert.Equal(0, migrated.ReceiveWindowShift);
        Run(bed, () => bed.Servers[1].Sessions.Count == 1);
        Assert.Equal(536, bed.Servers[1].Sessions.Single().Connection.SendMss);
        Finish(bed);
        Assert.Equal(1, bed.Connection.Stats.MigrationsCompleted);
    }

    [Fact]
    public void Fig_3_5_to_3_8_and_4_10_reads_since_the_snapshot_must_be_replayed_from_the_read_log_and_unread_bytes_must_follow()
    {
        // Figs 3.5-3.7: the server read messages after its last export_state; fig 3.8/4.10: more arrived, acknowledged
        // and unread. The state reply carries [rcv_seq_snapshot, last_ack_sent): the log, then the unread bytes.
        var bed = new MigrationTestbed(2, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, SnapshotEvery = 8 });
        var s1 = (RequestResponseServerSession)Run(bed, () => bed.Servers[0].Sessions.Count > 0, () => bed.Servers[0].Sessions[0]);
        Run(bed, () => s1.MessagesRead >= 20 && s1.MessagesRead % 8 != 0 && s1.Connection.ReadLogLength > 0);
        s1.Paused = true;
        var logged = s1.Connection.ReadLogLength;
        Run(bed, () => s1.Connection.BytesReadable >= 2 * bed.Options.MessageSize && s1.Connection.LastAckSent == s1.Connection.ReceiveNext);
        var unread = s1.Connection.BytesReadable;
        var snapshotCount = s1.MessagesRead / 8 * 8;
        Assert.True(bed.Migrate(1));

        Run(bed, () => bed.Servers[1].Sessions.Count == 1);

        var reply = Replies(bed).Single();
        Assert.Equal(logged + unread, reply.RcvStateLength);
        var (requests, _) = RequestResponseServerSession.Reference(bed.Options.SessionBytes / bed.Options.MessageSize, bed.Options.MessageSize, MigrationTestbed.RequestKey);
        Assert.Equal(requests.AsSpan(snapshotCount * bed.Options.MessageSize, reply.RcvStateLength).ToArray(), reply.ReadBufferState.ToArray());
        var s2 = (RequestResponseServerSession)bed.Servers[1].Sessions.Single();
        Assert.Equal(ConnectionOrigin.Migrated, s2.Imported.Origin);
        s1.Paused = false;
        Finish(bed);
        Assert.True(s1.Emigrated, "the origin's application must see EMIGRATED");
        Assert.Equal(bed.Options.SessionBytes / bed.Options.MessageSize, s2.MessagesRead);
    }

    [Theory]
    [InlineData(ReferenceService.Stream)]
    [InlineData(ReferenceService.File)]
    public void Migrations_while_the_client_window_is_closed_must_keep_every_unread_byte_of_each_server_left(ReferenceService service)
    {
        // A client reading slower than the network: its receive buffer is full and each server's send buffer holds
        // bytes beyond the client's rcv_nxt (fig. 4.9 scenario 1). Each hop leaves a block full of unread bytes that
        // must be read, in order, before the next server's (4.2.3 client step 4), even when the previous one is
        // still being drained.
        var bed = new MigrationTestbed(4, LinkConditions.Perfect, new TestbedOptions { Service = service, SnapshotEvery = 2, SessionBytes = 1024 * 1024 });
        var window = bed.Options.Tcp.ReceiveBufferSize;
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        bed.ClientApp.Paused = true;
        foreach (var (destination, hop) in new[] { (1, 1), (2, 2), (0, 3) })
        {
            Run(bed, () => bed.Connection.CurrentControlBlock.BytesReadable > window - bed.Options.Tcp.MaxSegmentSize);
            Assert.True(bed.Migrate(destination), bed.Describe());
            Run(bed, () => bed.Connection.Stats.MigrationsCompleted == hop);
        }

        Assert.True(bed.Connection.BytesReadable > 2 * window, bed.Describe());
        bed.ClientApp.Paused = false;
        Finish(bed);
        Assert.Equal(3, bed.Connection.Stats.MigrationsCompleted);
    }

    [Fact]
    public void Fig_3_9_and_4_9_scenario_1_unacknowledged_bytes_up_to_the_snapshot_must_move_to_the_new_server()
    {
        // snd_max_seen < snd_seq_snapshot: transfer snd_seq_snapshot - snd_max_seen bytes, discard none.
        var bed = new MigrationTestbed(3, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SnapshotEvery = 1, SessionBytes = 256 * 1024 });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        bed.ClientApp.Paused = true;
        var s1 = bed.Servers[0].Sessions.Single();
        Run(bed, () => s1.Connection.BytesUnacknowledged > 16 * 1024 && bed.Connection.CurrentControlBlock.BytesReadable > 32 * 1024);
        Assert.True(bed.Migrate(1));

        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1);

        var reply = Replies(bed).Single();
        Assert.True(reply.SndStateLength > 0, $"write-buffer state {reply.SndStateLength}");
        Assert.Equal(0u, reply.SndBytesDiscard);
        var offset = reply.SndMaxSeen - (s1.Connection.InitialSendSequence + 1);
        Assert.Equal(bed.Expected.AsSpan(offset, reply.SndStateLength).ToArray(), reply.WriteBufferState.ToArray());
        bed.ClientApp.Paused = false;
        Finish(bed);
    }

    [Fact]
    public void Fig_3_10_and_4_9_scenario_2_bytes_the_client_has_past_the_snapshot_must_be_discarded_when_rewritten()
    {
        // snd_max_seen > snd_seq_snapshot: transfer nothing; the new server drops snd_bytes_discard rewritten bytes.
        var bed = new MigrationTestbed(4, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SnapshotEvery = 16, SessionBytes = 256 * 1024 });
        var s1 = Run(bed, () => bed.Servers[0].Sessions.Count == 1, () => bed.Servers[0].Sessions[0]);
        Run(bed, () => s1.Snapshots >= 5 && (s1.Connection.WriteEnd - (s1.Connection.InitialSendSequence + 1)) % (16 * 1024) != 0);
        s1.Paused = true;
        Run(bed, () => s1.Connection.BytesUnacknowledged == 0);
        var written = s1.Connection.WriteEnd - (s1.Connection.InitialSendSequence + 1);
        Assert.True(bed.Migrate(1));

        Run(bed, () => bed.Servers[1].Sessions.Count == 1);

        var reply = Replies(bed).Single();
        Assert.Equal(0, reply.SndStateLength);
        Assert.True(reply.SndBytesDiscard > 0, "the client must be past the snapshot");
        var snapshotOffset = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(reply.AppState.Span) * bed.Options.ChunkSize;
        Assert.Equal(written, snapshotOffset + (int)reply.SndBytesDiscard);
        Finish(bed);
    }

    [Fact]
    public void Fig_4_11_and_4_12_acks_from_the_origin_while_migrating_must_be_ignored_and_made_up_by_the_implicit_ack()
    {
        // The client keeps its bytes until the switch; the origin's last_ack_sent, relayed by the new server, frees them.
        var bed = new MigrationTestbed(5, new LinkConditions { Latency = TimeSpan.FromMilliseconds(10) }, new TestbedOptions
        {
            Service = ReferenceService.RequestResponse,
            SessionBytes = 256 * 1024,
            ControlLatency = TimeSpan.FromMilliseconds(30),
        });
        Run(bed, () => bed.ClientApp.Received >= 32 * 1024);
        Assert.True(bed.Migrate(1));

        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1);

        Assert.True(bed.Connection.Stats.AcksIgnoredWhileMigrating > 0, "the origin's ACKs must arrive during the migration");
        Finish(bed);
    }

    [Fact]
    public void Section_4_2_2_an_active_close_after_the_snapshot_must_be_replayed_so_the_FIN_exchange_does_not_deadlock()
    {
        // S1 exported its state in ESTABLISHED, then wrote the rest and closed; the client got the FIN but has not
        // closed yet. S2 resumes from ESTABLISHED, replays ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2, and both ends close.
        var bed = new MigrationTestbed(6, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Stream, SnapshotEvery = 8, SessionBytes = 60 * 1024 });
        bed.ClientApp.HoldClose = true;
        Run(bed, () => bed.ClientApp.PeerClosed && bed.Servers[0].Sessions.Single().Connection.State == TcpState.FinWait2);
        Assert.Equal(TcpState.CloseWait, bed.Connection.State);
        Assert.True(bed.Migrate(1));

        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1 && bed.Servers[1].Sessions.Count == 1);

        var s2 = bed.Servers[1].Sessions.Single().Connection;
        Assert.Equal(
            [new TcpStateTransition(TcpStateCode.Established, TcpStateCode.FinWait1), new TcpStateTransition(TcpStateCode.FinWait1, TcpStateCode.FinWait2)],
            s2.ReplayedTransitions.ToArray());
        bed.ClientApp.HoldClose = false;
        Finish(bed);
    }

    [Fact]
    public void A_connection_the_client_half_closed_must_migrate_in_CLOSE_WAIT_and_the_new_server_must_answer_every_request_then_close()
    {
        // The client sent every request and its FIN at once (nc -N); S1 answered some and holds the rest with the FIN
        // (CLOSE-WAIT). The state reply's log carries ESTABLISHED -> CLOSE-WAIT, so S2 replays the FIN after the
        // handshake: its application reads the requests left, answers them, sees the end of the stream and closes.
        var bed = new MigrationTestbed(5, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, SessionBytes = 48 * 1024, SnapshotEvery = 8 });
        bed.ClientApp.HalfCloseAfterSending = true;
        var s1 = (RequestResponseServerSession)Run(bed, () => bed.Servers[0].Sessions.Count == 1 && bed.Servers[0].Sessions[0].Snapshots > 0, () => bed.Servers[0].Sessions[0]);
        s1.Paused = true;
        Run(bed, () => s1.Connection.State == TcpState.CloseWait && bed.Connection.State == TcpState.FinWait2);
        Assert.True(bed.Migrate(1), bed.Describe());

        var s2 = (RequestResponseServerSession)Run(bed, () => bed.Servers[1].Sessions.Count == 1, () => bed.Servers[1].Sessions[0]);

        Assert.Contains(new TcpStateTransition(TcpStateCode.Established, TcpStateCode.CloseWait), s2.Connection.ReplayedTransitions);
        Assert.Equal(TcpState.FinWait2, bed.Connection.State);
        Finish(bed);
        var messages = bed.Options.SessionBytes / bed.Options.MessageSize;
        Assert.True(s1.MessagesRead < messages, $"S1 must have left requests to S2 (read {s1.MessagesRead} of {messages})");
        Assert.Equal(messages, s2.MessagesRead);
    }

    [Fact]
    public void A_connection_the_server_half_closed_before_its_snapshot_must_resume_in_FIN_WAIT_and_keep_reading_the_client_across_migrations()
    {
        // The server wrote its greeting, shut down its sending side and exported (so_state SS_CANTSENDMORE), then reads
        // the client's upload. Resumed from that snapshot the application never closes again: each destination queues
        // the FIN itself (FIN-WAIT-1), reads the rest of the upload and ends when the client closes.
        var bed = new MigrationTestbed(6, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.Upload, SessionBytes = 256 * 1024, SnapshotEvery = 4 });
        var s1 = (UploadServerSession)Run(bed, () => bed.Servers[0].Sessions.Count == 1, () => bed.Servers[0].Sessions[0]);
        Run(bed, () => bed.ClientApp.PeerClosed && s1.Connection.State == TcpState.FinWait2 && s1.BytesRead >= 32 * 1024);
        Assert.True(bed.Migrate(1), bed.Describe());
        var s2 = (UploadServerSession)Run(bed, () => bed.Servers[1].Sessions.Count == 1, () => bed.Servers[1].Sessions[0]);
        Assert.True(s2.Connection.State is TcpState.FinWait1 or TcpState.FinWait2, bed.Describe());

        Run(bed, () => s2.BytesRead >= 128 * 1024);
        Assert.True(bed.Migrate(2), bed.Describe());

        Finish(bed);
        Assert.Equal(2, bed.Connection.Stats.MigrationsCompleted);
        var s3 = (UploadServerSession)bed.Servers[2].Sessions.Single();
        output.WriteLine($"S1 read {s1.BytesRead}, S2 {s2.BytesRead}, S3 {s3.BytesRead}");
        var upload = new byte[bed.Options.SessionBytes];
        StreamPattern.Fill(MigrationTestbed.RequestKey, 0, upload);
        Assert.Equal(upload.Length, s3.BytesRead);
        Assert.Equal(UploadServerSession.DigestOf(upload), s3.Digest);
        Assert.Single(bed.ClientApp.Events, e => e == TcpEvent.PeerClosed);
    }

    [Fact]
    public void After_the_switch_the_old_block_must_blackhole_and_the_origin_must_stay_silent()
    {
        // Thesis 4.2.3 step 4 (BLACKHOLE: nothing sent back) and S1's close "without disturbing the client".
        var bed = new MigrationTestbed(17, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var oldPort = bed.Connection.Cid.ClientPort;
        Assert.True(bed.Migrate(1));
        Run(bed, () => bed.Servers[1].Sessions.Count == 1);
        var answers = 0;
        bed.Network.OnDeliver = (_, p) => answers += (p.Source == bed.Client.Address && p.Destination == S1.Address) || (p.Source == S1.Address && p.Destination == bed.Client.Address) ? 1 : 0;
        var segment = new TcpSegmentRepr { SourcePort = S1.Port, DestinationPort = oldPort, SequenceNumber = new SeqNumber(1), AcknowledgmentNumber = new SeqNumber(1), Flags = TcpFlags.Ack, Window = 1000 };

        bed.Network.Inject(new SimPacket(S1.Address, bed.Client.Address, segment, new byte[100]));
        bed.Network.Inject(new SimPacket(bed.Client.Address, S1.Address, segment with { SourcePort = oldPort, DestinationPort = S1.Port }, new byte[100]));
        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.BlackholedSegments);
        Assert.Equal(1, bed.Servers[0].Host.Stats.SilencedSegments);
        Assert.Equal(2, answers);
    }

    [Fact]
    public void A_request_for_an_unknown_connection_must_be_rejected_with_CB_NOT_FOUND_and_disturb_nothing()
    {
        var bed = new MigrationTestbed(7, LinkConditions.Perfect, new TestbedOptions());
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var unknown = new ConnectionId(bed.Client.Address, 12345, S1.Address, S1.Port);
        InjectSpecialSyn(bed, S2, unknown, authenticator: 0x0123456789ABCDEF);

        Run(bed, () => bed.Servers[1].Host.Stats.MigrationsRefused == 1);

        Assert.Equal(1, bed.Servers[1].Host.Stats.RefusalReasons["state reject CbNotFound"]);
        Assert.Equal(StateRejectReason.CbNotFound, Rejects(bed).Single().Reason);
        Finish(bed);
        Assert.Equal(0, bed.Connection.Stats.MigrationsStarted);
    }

    [Fact]
    public void A_forged_special_SYN_must_be_rejected_with_AUTH_FAILED_and_leave_the_connection_where_it_is()
    {
        // An off-path attacker who knows the 4-tuple but not the key cannot pull the connection to another server.
        var bed = new MigrationTestbed(8, LinkConditions.Perfect, new TestbedOptions());
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        InjectSpecialSyn(bed, S2, bed.Connection.Cid, authenticator: 0x0123456789ABCDEF);

        Run(bed, () => bed.Servers[1].Host.Stats.MigrationsRefused == 1);

        Assert.Equal(StateRejectReason.AuthFailed, Rejects(bed).Single().Reason);
        Finish(bed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
        Assert.Equal(0, bed.Servers[0].Host.Stats.MigrationsOut);
    }

    [Fact]
    public void A_request_while_the_origin_is_in_LAST_ACK_must_be_rejected_with_INVALID_STATE_and_the_client_must_stay()
    {
        var bed = new MigrationTestbed(9, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        var dropped = false;
        bed.Network.Drop = p => p.Source == S1.Address && p.Header.Has(TcpFlags.Fin) && !dropped && (dropped = true);
        Run(bed, () => bed.Servers[0].Sessions.Count == 1 && bed.Servers[0].Sessions[0].Connection.State == TcpState.LastAck);
        Assert.Contains(bed.Connection.State, new[] { TcpState.FinWait1, TcpState.FinWait2 });
        Assert.True(bed.Migrate(1));

        Finish(bed);

        Assert.Equal(StateRejectReason.InvalidState, Rejects(bed).Single().Reason);
        Assert.Equal(1, bed.Connection.Stats.MigrationsFailed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_state_reply_that_never_comes_must_time_out_and_leave_the_connection_on_its_server()
    {
        var bed = new MigrationTestbed(10, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        bed.Control.Withheld.Add(ControlMessageType.StateReply);
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Migrate(1));

        Run(bed, () => bed.Connection.Stats.MigrationsFailed == 1);

        Assert.Equal(1, bed.Servers[1].Host.Stats.RefusalReasons["no state reply in time"]);
        bed.Control.Withheld.Clear();
        Finish(bed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_migration_to_an_unreachable_server_must_fail_and_leave_the_connection_working()
    {
        var bed = new MigrationTestbed(11, LinkConditions.Perfect, new TestbedOptions());
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Client.TryMigrate(bed.Network.Now, new ServerEndpoint(IpAddress.Parse("10.0.0.99"), 80)));

        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.MigrationsFailed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
    }

    [Fact]
    public void An_authenticated_trigger_from_the_origin_must_move_the_connection_to_the_server_it_names()
    {
        var bed = new MigrationTestbed(12, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.File });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Servers[0].Host.SendTrigger(bed.Connection.Cid, S3));

        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.TriggersAccepted);
        Assert.Equal(S3, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_trigger_from_a_third_server_without_a_destination_must_let_the_client_choose_an_alternate_server()
    {
        var bed = new MigrationTestbed(13, LinkConditions.Perfect, new TestbedOptions());
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.Equal([S2, S3], bed.Connection.AlternateServers);
        Assert.True(bed.Servers[0].Host.TryIssueTriggerKey(bed.Connection.Cid, out var triggerKey));
        bed.Servers[2].Host.SendTrigger(bed.Connection.Cid, triggerKey);

        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.TriggersAccepted);
        Assert.Equal(S2, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_forged_trigger_must_be_ignored_and_counted()
    {
        var bed = new MigrationTestbed(14, LinkConditions.Perfect, new TestbedOptions());
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var cid = bed.Connection.Cid;
        bed.Network.Inject(new SimPacket(S3.Address, bed.Client.Address, new TcpSegmentRepr
        {
            SourcePort = S3.Port,
            DestinationPort = cid.ClientPort,
            Flags = TcpFlags.Syn,
            Options = new TcpOptions { MigrateTrigger = new MtcpMigrateTrigger(0xBAD, S1, new MtcpTriggerDestination(null, 0)) },
        }, ReadOnlyMemory<byte>.Empty));

        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.ForgedTriggersIgnored);
        Assert.Equal(0, bed.Connection.Stats.MigrationsStarted);
    }

    [Fact]
    public void A_connection_must_be_able_to_migrate_back_to_a_server_it_already_left()
    {
        var bed = new MigrationTestbed(15, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, SessionBytes = 128 * 1024 });
        Run(bed, () => bed.ClientApp.Received >= 16 * 1024);
        Assert.True(bed.Migrate(1));
        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1 && bed.ClientApp.Received >= 48 * 1024);
        Assert.True(bed.Migrate(0));

        Finish(bed);

        Assert.Equal(2, bed.Connection.Stats.MigrationsCompleted);
        Assert.Equal(S1, bed.Connection.CurrentServer);
        Assert.Equal(1, bed.Servers[0].Host.Stats.MigrationsOut);
        Assert.Equal(1, bed.Servers[0].Host.Stats.MigrationsIn);
    }

    [Fact]
    public void Several_migrations_in_a_row_under_loss_must_keep_the_stream_exact()
    {
        var conditions = new LinkConditions { Latency = TimeSpan.FromMilliseconds(3), LossRate = 0.1, DuplicateRate = 0.02, ReorderRate = 0.05 };
        var bed = new MigrationTestbed(16, conditions, new TestbedOptions { Service = ReferenceService.RequestResponse, SessionBytes = 256 * 1024, SnapshotEvery = 5 });
        int[] route = [1, 2, 0, 1, 2];
        for (var hop = 0; hop < route.Length; hop++)
        {
            var threshold = (hop + 1) * 32 * 1024;
            Run(bed, () => bed.ClientApp.Received >= threshold && !bed.Connection.IsMigrating);
            Assert.True(bed.Migrate(route[hop]), bed.Describe());
        }

        Finish(bed);

        Assert.Equal(route.Length, bed.Connection.Stats.MigrationsCompleted);
        Assert.Equal(S3, bed.Connection.CurrentServer);
    }

    private static void InjectSpecialSyn(MigrationTestbed bed, ServerEndpoint destination, ConnectionId cid, ulong authenticator) =>
        bed.Network.Inject(new SimPacket(bed.Client.Address, destination.Address, new TcpSegmentRepr
        {
            SourcePort = 61000,
            DestinationPort = destination.Port,
            SequenceNumber = new SeqNumber(4242),
            Flags = TcpFlags.Syn,
            Window = 65535,
            Options = new TcpOptions { MigratedConnection = new MtcpMigratedConnection(new ServerEndpoint(cid.ServerAddress, cid.ServerPort), cid.ClientPort, new SeqNumber(1), authenticator) },
        }, ReadOnlyMemory<byte>.Empty));

    private static IEnumerable<StateReply> Replies(MigrationTestbed bed) => bed.Control.Delivered.Select(d => d.Message).OfType<StateReply>();

    private static IEnumerable<StateReject> Rejects(MigrationTestbed bed) => bed.Control.Delivered.Select(d => d.Message).OfType<StateReject>();

    private static void Run(MigrationTestbed bed, Func<bool> condition) => Assert.True(bed.RunUntil(condition, Limit), bed.Describe());

    private static T Run<T>(MigrationTestbed bed, Func<bool> condition, Func<T> result)
    {
        Run(bed, condition);
        return result();
    }

    private void Finish(MigrationTestbed bed)
    {
        Assert.True(bed.RunToFinish(Limit), bed.Describe());
        output.WriteLine(bed.Describe());
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(bed.Expected.Length, bed.ClientApp.Received);
        Assert.All(bed.Sessions, s => Assert.Equal(TcpState.Closed, s.Connection.State));
    }
}

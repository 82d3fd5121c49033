using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Stack.Tests.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Buddy replication, sans-IO: ack gating on the replicated point (a client byte is acknowledged only once the buddy
/// holds it), the serving node's <see cref="ConnectionReplicator"/> and the buddy's <see cref="ReplicaStore{TOrigin}"/>.
/// </summary>
[Trait("Category", "Stack")]
public sealed class ReplicationTests
{
    private static readonly TcpConfig ServerConfig = TcpConfig.Default with { RetainReadLog = true, DelayedAckTimeout = TimeSpan.Zero };
    private static readonly TcpConfig ClientConfig = TcpConfig.Default with { DelayedAckTimeout = TimeSpan.Zero };
    private static readonly TimeSpan AckTimeout = TimeSpan.FromMilliseconds(500);
    private static readonly ConnectionId Cid = new(IpAddress.Parse("10.0.0.1"), 40000, IpAddress.Parse("10.0.0.11"), 80);

    [Fact]
    public void Ack_must_never_pass_the_replicated_point_while_the_data_still_flows()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var start = link.Server.ReceiveNext;
        link.Server.AcknowledgeReplicatedUpTo(start);
        var replicated = start;
        link.Drop = (from, header) =>
        {
            if (from == link.Server)
            {
                Assert.True(header.AcknowledgmentNumber <= replicated, $"ACK {header.AcknowledgmentNumber} passed the replicated point {replicated}");
            }

            return false;
        };

        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 100_000));
        link.Exchange();

        // The client's first window reached the server; none of it is acknowledged, and the held ACKs are not
        // taken for losses.
        Assert.True(link.Server.BytesReadable > 0);
        Assert.Equal(start, link.Client.SendUnacknowledged);
        Assert.Equal(0, link.Client.Stats.DuplicateAcks);

        // A buddy one exchange behind: each round it holds what had arrived by the previous one.
        for (var round = 0; round < 100 && link.Client.SendUnacknowledged != start + 100_000; round++)
        {
            var held = link.Server.ReceivedDataEnd;
            replicated = held;
            link.Server.AcknowledgeReplicatedUpTo(held);
            link.Exchange();
            Assert.Equal(held, link.Client.SendUnacknowledged);
        }

        Assert.Equal(100_000, link.Server.BytesReadable);
        Assert.Equal(start + 100_000, link.Client.SendUnacknowledged);
        Assert.Equal(0, link.Client.Stats.Retransmissions);
        Assert.Equal(0, link.Client.Stats.DuplicateAcks);
    }

    [Fact]
    public void Held_back_bytes_must_keep_the_window_right_edge_so_the_client_sends_more_than_the_receive_buffer()
    {
        var small = ServerConfig with { ReceiveBufferSize = 4 * 1024 };
        var link = new DirectLink(small, ClientConfig);
        var start = link.Server.ReceiveNext;
        link.Server.AcknowledgeReplicatedUpTo(start);
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 40_000));
        link.Exchange();
        var buffer = new byte[64 * 1024];
        var read = 0;
        for (var round = 0; round < 20; round++)
        {
            read += link.Server.Read(buffer);
            link.Exchange();
        }

        // Window updates went out as the application read, nothing acknowledged: the client sent its whole
        // congestion window, over three times the receive buffer.
        Assert.True(read > 3 * 4 * 1024, $"read {read}");
        Assert.Equal(start, link.Client.SendUnacknowledged);
        link.Server.StopAckGating();
        link.Exchange();
        Assert.Equal(link.Server.ReceiveNext, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void Without_gating_every_ACK_must_carry_RCV_NXT()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        link.Drop = (from, header) =>
        {
            if (from == link.Server)
            {
                Assert.Equal(link.Server.ReceiveNext, header.AcknowledgmentNumber);
            }

            return false;
        };

        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 20_000));
        link.Server.Write(MigrationSnapshotTests.Pattern(2, 0, 20_000));
        link.Exchange();
        Assert.Null(link.Server.ReplicatedUpTo);
        Assert.Equal(link.Server.ReceiveNext, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void A_buddy_fed_by_the_replicator_must_hold_the_snapshot_and_every_byte_since_and_release_the_ACK()
    {
        var (link, replicator, store, start) = GatedLink();
        byte[] credential = [1, 2, 3];

        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 5_000));
        link.Server.Write(MigrationSnapshotTests.Pattern(2, 0, 3_000));
        link.Exchange();
        link.Server.Read(new byte[2_000]);
        link.Server.ExportState([9, 9]);
        replicator.Update(link.Now, link.Server, credential);
        Deliver(replicator, store, link.Server);

        link.Client.Write(MigrationSnapshotTests.Pattern(1, 5_000, 4_500));
        link.Exchange();
        replicator.Update(link.Now, link.Server, credential);
        Assert.True(replicator.Unacknowledged > 1, "the read log goes in pieces, without waiting for acks");
        Deliver(replicator, store, link.Server);
        link.Exchange();

        Assert.True(store.TryGetState(Cid, out var state, out var origin));
        Assert.Equal("origin", origin);
        Assert.Equal([9, 9], state.AppState.ToArray());
        Assert.Equal(start + 2_000, state.RcvSeqSnapshot);
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 2_000, 7_500), state.ReadBufferState.ToArray());
        Assert.Equal(start + 9_500, state.LastAckSent);
        Assert.Equal(credential, state.MigrationCredential.ToArray());
        Assert.Equal(start + 9_500, link.Client.SendUnacknowledged);
        Assert.Equal(1u, replicator.StatesSent);
    }

    [Fact]
    public void An_ack_naming_an_update_never_sent_must_acknowledge_nothing()
    {
        var (link, replicator, store, start) = GatedLink();
        byte[] credential = [1, 2, 3];
        replicator.Update(link.Now, link.Server, credential);
        Deliver(replicator, store, link.Server);

        // The client's bytes go out as read logs the buddy has not acknowledged; an ack beyond the last update (forged,
        // or from a buddy confused about what it was sent) would cover them all.
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 3_000));
        link.Exchange();
        replicator.Update(link.Now, link.Server, credential);
        var unacknowledged = replicator.Unacknowledged;
        replicator.HandleAck(new ReplicaAck(ulong.MaxValue, Cid, ReplicaAckStatus.Held), link.Server);
        replicator.HandleAck(new ReplicaAck(1_000, Cid, ReplicaAckStatus.Held), link.Server);
        link.Exchange();

        Assert.Equal(unacknowledged, replicator.Unacknowledged);
        Assert.Equal(start, link.Server.ReplicatedUpTo);
        Assert.Equal(start, link.Client.SendUnacknowledged);

        // The buddy's own acks still acknowledge what it holds.
        Deliver(replicator, store, link.Server);
        link.Exchange();
        Assert.Equal(start + 3_000, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void A_buddy_that_missed_an_update_must_ask_for_the_whole_state_and_get_it()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece: 1_000, readLogsInFlight: 1_000, ReplicaStateSchedule.EverySnapshot, AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        link.Server.AcknowledgeReplicatedUpTo(link.Server.ReceiveNext);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);

        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 3_000));
        link.Exchange();
        replicator.Update(link.Now, link.Server, []);
        Assert.True(replicator.PollOutgoing(out _), "the first read-log piece is lost");
        Deliver(replicator, store, link.Server);
        Assert.Equal(link.Server.ReceiveNext - 3_000, link.Client.SendUnacknowledged);

        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        link.Exchange();

        Assert.Equal(2u, replicator.StatesSent);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 3_000), state.ReadBufferState.ToArray());
        Assert.Equal(link.Server.ReceiveNext, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void A_released_connection_must_leave_the_buddy()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece: 1_000, readLogsInFlight: 1_000, ReplicaStateSchedule.EverySnapshot, AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        Assert.Equal(1, store.Count);

        replicator.Release();
        Deliver(replicator, store, link.Server);

        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void A_replica_must_answer_a_state_request_only_with_the_connections_own_authenticator()
    {
        var authenticator = AuthenticationFixture.Authenticator();
        var cid = AuthenticationFixture.Cid;
        var link = new DirectLink(ServerConfig, ClientConfig);
        var credential = ServerMigration.IssueCredential(authenticator, cid, AuthenticationFixture.ClientIsn, AuthenticationFixture.ServerIsn, out var secret);
        var replicator = new ConnectionReplicator(cid, maxPiece: 1_000, readLogsInFlight: 1_000, ReplicaStateSchedule.EverySnapshot, AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 2_000));
        link.Exchange();
        replicator.Update(link.Now, link.Server, credential.ToBytes());
        Deliver(replicator, store, link.Server);

        var rcvNxt = link.Client.ReceiveNext;
        var good = AuthenticationFixture.Request(new ConnectionAuthenticator(secret).MigratedConnection(cid, AuthenticationFixture.NewEndpointCid, rcvNxt, 0), rcvNxt);
        var forged = AuthenticationFixture.Request(0x1234_5678, rcvNxt);

        Assert.Equal(StateRejectReason.AuthFailed, Assert.IsType<StateReject>(store.AnswerStateRequest(forged, authenticator, out _)).Reason);
        var reply = Assert.IsType<StateReply>(store.AnswerStateRequest(good, authenticator, out var check));
        Assert.Equal(MigratedConnectionCheck.Accepted, check);
        Assert.Equal(AuthenticationFixture.NewEndpointCid, reply.NewEndpointCid);
        Assert.Equal(7ul, reply.RequestId);
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 2_000), reply.ReadBufferState.ToArray());
        Assert.True(ServerMigration.TryAdoptCredential(reply, authenticator, out _));

        // The attempt is spent: the same request again is a replay.
        Assert.IsType<StateReject>(store.AnswerStateRequest(good, authenticator, out var replayed));
        Assert.Equal(MigratedConnectionCheck.Replayed, replayed);
    }

    [Fact]
    public void A_new_snapshot_must_wait_for_a_whole_state_until_the_replay_it_saves_is_due_and_the_buddy_must_still_hold_every_byte()
    {
        // A request/response session: each request read and answered, then a snapshot exported (as the request server does).
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece: 1_000, readLogsInFlight: 1_000, new ReplicaStateSchedule(MinProgress: 4_000, ProgressPerStateByte: 0, MaxProgress: 1 << 20), AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        var start = link.Server.ReceiveNext;
        link.Server.AcknowledgeReplicatedUpTo(start);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        for (var request = 0; request < 10; request++)
        {
            link.Client.Write(MigrationSnapshotTests.Pattern(1, request * 500, 500));
            link.Exchange();
            replicator.Update(link.Now, link.Server, []);
            Deliver(replicator, store, link.Server);
            Assert.Equal(500, link.Server.Read(new byte[500]));
            link.Server.Write(MigrationSnapshotTests.Pattern(2, request * 100, 100));
            link.Server.ExportState([(byte)request]);
            replicator.Update(link.Now, link.Server, []);
            Deliver(replicator, store, link.Server);
            link.Exchange();
        }

        // The state at the connection's start, then the first snapshot exported (the buddy learns what the application
        // keeps), then the one that saves 4,000 bytes of replay or more (600 a request: request 7's): three, not eleven.
        // Every byte the client sent went as a read log and is acknowledged, and the buddy holds its snapshot and every
        // byte since.
        Assert.Equal(3u, replicator.StatesSent);
        Assert.Equal(5_000, replicator.ReadLogBytesSent);
        Assert.Equal(start + 5_000, link.Client.SendUnacknowledged);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal([7], state.AppState.ToArray());
        Assert.Equal(start + 4_000, state.RcvSeqSnapshot);
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 4_000, 1_000), state.ReadBufferState.ToArray());
    }

    [Fact]
    public void A_state_change_must_go_to_the_buddy_at_once_whatever_the_schedule()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece: 1_000, readLogsInFlight: 1_000, new ReplicaStateSchedule(MinProgress: 1 << 20, ProgressPerStateByte: 8, MaxProgress: 1 << 20), AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        link.Server.AcknowledgeReplicatedUpTo(link.Server.ReceiveNext);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        link.Server.ExportState([1]);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        link.Server.ExportState([2]);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        Assert.Equal(2u, replicator.StatesSent);

        link.Client.Close(link.Now);
        link.Exchange();
        Assert.Equal(TcpState.CloseWait, link.Server.State);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        link.Exchange();

        Assert.Equal(3u, replicator.StatesSent);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal([2], state.AppState.ToArray());
        Assert.Equal(link.Server.ReceiveNext, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void Bytes_that_come_while_the_pipeline_is_full_must_wait_for_an_ack_and_go_in_one_read_log()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece: 8_000, readLogsInFlight: 2, new ReplicaStateSchedule(MinProgress: 1 << 20, ProgressPerStateByte: 0, MaxProgress: 1 << 20), AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        var start = link.Server.ReceiveNext;
        link.Server.AcknowledgeReplicatedUpTo(start);
        link.Server.ExportState([1]);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);

        // Four bursts of 3,000 bytes, each followed by an update: two read logs go, the later bursts wait.
        var inFlight = new List<ControlMessage>();
        for (var burst = 0; burst < 4; burst++)
        {
            link.Client.Write(MigrationSnapshotTests.Pattern(1, burst * 3_000, 3_000));
            link.Exchange();
            replicator.Update(link.Now, link.Server, []);
            while (replicator.PollOutgoing(out var message))
            {
                inFlight.Add(message);
            }
        }

        Assert.Equal([(start, 3_000), (start + 3_000, 3_000)], inFlight.Cast<ReplicaReadLog>().Select(log => (log.From, log.Bytes.Length)));
        Assert.Equal(2, replicator.Unacknowledged);
        Assert.Equal(start, link.Client.SendUnacknowledged);

        // The application reads everything and exports a snapshot the schedule does not send: the read log it releases
        // held bytes the buddy has not got yet.
        Assert.Equal(12_000, link.Server.Read(new byte[12_000]));
        link.Server.ExportState([2]);
        replicator.Update(link.Now, link.Server, []);
        Assert.False(replicator.PollOutgoing(out _));

        // The buddy holds both; its acks free the pipeline, and the next update sends what waited as one message.
        var acks = inFlight.Select(message => store.Apply("origin", message)).OfType<ReplicaAck>().ToList();
        Assert.Equal(2, acks.Count);
        foreach (var ack in acks)
        {
            replicator.HandleAck(ack, link.Server);
        }

        link.Exchange();
        Assert.Equal(start + 6_000, link.Client.SendUnacknowledged);
        replicator.Update(link.Now, link.Server, []);
        Assert.True(replicator.PollOutgoing(out var together));
        var readLog = Assert.IsType<ReplicaReadLog>(together);
        Assert.Equal((start + 6_000, 6_000), (readLog.From, readLog.Bytes.Length));
        Assert.False(replicator.PollOutgoing(out _));

        replicator.HandleAck(Assert.IsType<ReplicaAck>(store.Apply("origin", readLog)), link.Server);
        link.Exchange();
        Assert.Equal(start + 12_000, link.Client.SendUnacknowledged);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal([1], state.AppState.ToArray());
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 12_000), state.ReadBufferState.ToArray());
        Assert.Equal(1u, replicator.StatesSent);
    }

    [Fact]
    public void A_lost_update_must_make_the_whole_state_go_again_once_it_waited_the_ack_timeout()
    {
        var (link, replicator, store, start) = GatedLink();
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        Assert.Null(replicator.AckDeadline);

        // The read log is lost on its way (a channel broken mid-write, a peer the manager marks lost): no ack, no NeedsState.
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 3_000));
        link.Exchange();
        var sentAt = link.Now;
        replicator.Update(link.Now, link.Server, []);
        while (replicator.PollOutgoing(out _))
        {
        }

        Assert.Equal(sentAt + AckTimeout, replicator.AckDeadline);

        // Nothing is due before the deadline, and nothing new goes meanwhile.
        link.Now = sentAt + AckTimeout - TimeSpan.FromMilliseconds(1);
        Assert.False(replicator.HandleAckTimeout(link.Now));
        replicator.Update(link.Now, link.Server, []);
        Assert.False(replicator.PollOutgoing(out _));
        Assert.Equal(start, link.Client.SendUnacknowledged);

        // At the deadline the whole state goes again, carrying the lost bytes, and the client's bytes are acknowledged.
        link.Now = sentAt + AckTimeout;
        Assert.True(replicator.HandleAckTimeout(link.Now));
        Assert.Null(replicator.AckDeadline);
        replicator.Update(link.Now, link.Server, []);
        Assert.Equal(link.Now + AckTimeout, replicator.AckDeadline);
        Deliver(replicator, store, link.Server);
        link.Exchange();

        Assert.Equal(2u, replicator.StatesSent);
        Assert.Equal(1, replicator.AckTimeouts);
        Assert.Null(replicator.AckDeadline);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 3_000), state.ReadBufferState.ToArray());
        Assert.Equal(start + 3_000, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void Acks_that_keep_coming_must_never_make_the_whole_state_go_again_however_long_the_upload()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece: 1_000, readLogsInFlight: 2, ReplicaStateSchedule.EverySnapshot, AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        var start = link.Server.ReceiveNext;
        link.Server.AcknowledgeReplicatedUpTo(start);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);

        // Forty rounds of 300 ms, twelve seconds in all, each one's bytes acknowledged by the buddy 200 ms after they go:
        // every update is acknowledged well within the timeout, though the connection always has one unacknowledged.
        for (var round = 0; round < 40; round++)
        {
            link.Client.Write(MigrationSnapshotTests.Pattern(1, round * 1_500, 1_500));
            link.Exchange();
            replicator.Update(link.Now, link.Server, []);
            var sent = new List<ControlMessage>();
            while (replicator.PollOutgoing(out var message))
            {
                sent.Add(message);
            }

            link.Now += TimeSpan.FromMilliseconds(200);
            Assert.False(replicator.HandleAckTimeout(link.Now));
            foreach (var message in sent)
            {
                replicator.HandleAck(Assert.IsType<ReplicaAck>(store.Apply("origin", message)), link.Server);
            }

            link.Exchange();
            link.Now += TimeSpan.FromMilliseconds(100);
            Assert.False(replicator.HandleAckTimeout(link.Now));
        }

        Assert.Equal(0, replicator.AckTimeouts);
        Assert.Equal(1u, replicator.StatesSent);
        Assert.Equal(start + 60_000, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void An_ack_of_the_oldest_update_must_move_the_deadline_to_the_next_and_that_one_lost_must_still_time_out()
    {
        var (link, replicator, store, start) = GatedLink();
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);

        // Two read logs 400 ms apart; the first reaches the buddy, the second is lost.
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 800));
        link.Exchange();
        var firstAt = link.Now;
        replicator.Update(link.Now, link.Server, []);
        Assert.True(replicator.PollOutgoing(out var first));
        Assert.False(replicator.PollOutgoing(out _));
        link.Now += TimeSpan.FromMilliseconds(400);
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 800, 800));
        link.Exchange();
        var secondAt = link.Now;
        replicator.Update(link.Now, link.Server, []);
        Assert.True(replicator.PollOutgoing(out _));
        Assert.Equal(firstAt + AckTimeout, replicator.AckDeadline);

        // The first's ack, late but before its deadline, acknowledges its bytes and moves the deadline to the second's.
        link.Now += TimeSpan.FromMilliseconds(50);
        replicator.HandleAck(Assert.IsType<ReplicaAck>(store.Apply("origin", first)), link.Server);
        link.Exchange();
        Assert.Equal(start + 800, link.Client.SendUnacknowledged);
        Assert.Equal(secondAt + AckTimeout, replicator.AckDeadline);
        Assert.False(replicator.HandleAckTimeout(firstAt + AckTimeout));

        // The second's deadline passes without its ack: the whole state goes and covers its bytes.
        link.Now = secondAt + AckTimeout;
        Assert.True(replicator.HandleAckTimeout(link.Now));
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        link.Exchange();

        Assert.Equal(2u, replicator.StatesSent);
        Assert.Equal(start + 1_600, link.Client.SendUnacknowledged);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 1_600), state.ReadBufferState.ToArray());
    }

    [Fact]
    public void A_whole_state_lost_on_its_way_must_go_again_once_it_waited_the_ack_timeout()
    {
        var (link, replicator, store, start) = GatedLink();
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 2_500));
        link.Exchange();
        replicator.Update(link.Now, link.Server, []);
        while (replicator.PollOutgoing(out _))
        {
        }

        // The whole state is lost on its way: nothing comes back and the buddy holds nothing; only the deadline brings
        // the state back.
        link.Now += AckTimeout;
        Assert.True(replicator.HandleAckTimeout(link.Now));
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        link.Exchange();

        Assert.Equal(2u, replicator.StatesSent);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 2_500), state.ReadBufferState.ToArray());
        Assert.Equal(start + 2_500, link.Client.SendUnacknowledged);
    }

    [Fact]
    public void Bytes_that_wait_for_the_pipeline_must_fill_read_logs_of_the_largest_size_in_order()
    {
        var (link, replicator, store, start) = OneReadLogInFlight(maxPiece: 5_000);

        // One read log in flight; then 9,000 bytes in bursts of 1,500 wait: they fill a 5,000-byte read log, then a second.
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 1_000));
        link.Exchange();
        replicator.Update(link.Now, link.Server, []);
        Assert.True(replicator.PollOutgoing(out var inFlight));
        for (var burst = 0; burst < 6; burst++)
        {
            link.Client.Write(MigrationSnapshotTests.Pattern(1, 1_000 + (burst * 1_500), 1_500));
            link.Exchange();
            replicator.Update(link.Now, link.Server, []);
            Assert.False(replicator.PollOutgoing(out _));
        }

        var sent = new List<ReplicaReadLog>();
        var next = inFlight;
        for (var round = 0; round < 3; round++)
        {
            replicator.HandleAck(Assert.IsType<ReplicaAck>(store.Apply("origin", next)), link.Server);
            replicator.Update(link.Now, link.Server, []);
            if (!replicator.PollOutgoing(out next))
            {
                break;
            }

            sent.Add(Assert.IsType<ReplicaReadLog>(next));
        }

        Assert.Equal([(start + 1_000, 5_000), (start + 6_000, 4_000)], sent.Select(log => (log.From, log.Bytes.Length)));
        link.Exchange();
        Assert.Equal(start + 10_000, link.Client.SendUnacknowledged);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 10_000), state.ReadBufferState.ToArray());
    }

    [Fact]
    public void Small_requests_that_wait_for_the_pipeline_must_go_together_in_order_in_one_read_log()
    {
        var (link, replicator, store, start) = OneReadLogInFlight(maxPiece: 8_000);

        // One request in flight; thirty more of 100 bytes each wait, in a buffer that grows as they come.
        link.Client.Write(MigrationSnapshotTests.Pattern(1, 0, 100));
        link.Exchange();
        replicator.Update(link.Now, link.Server, []);
        Assert.True(replicator.PollOutgoing(out var inFlight));
        for (var request = 1; request <= 30; request++)
        {
            link.Client.Write(MigrationSnapshotTests.Pattern(1, request * 100, 100));
            link.Exchange();
            replicator.Update(link.Now, link.Server, []);
            Assert.False(replicator.PollOutgoing(out _));
        }

        replicator.HandleAck(Assert.IsType<ReplicaAck>(store.Apply("origin", inFlight)), link.Server);
        replicator.Update(link.Now, link.Server, []);
        Assert.True(replicator.PollOutgoing(out var together));
        var readLog = Assert.IsType<ReplicaReadLog>(together);
        Assert.Equal((start + 100, 3_000), (readLog.From, readLog.Bytes.Length));
        replicator.HandleAck(Assert.IsType<ReplicaAck>(store.Apply("origin", readLog)), link.Server);
        link.Exchange();

        Assert.Equal(start + 3_100, link.Client.SendUnacknowledged);
        Assert.True(store.TryGetState(Cid, out var state, out _));
        Assert.Equal(MigrationSnapshotTests.Pattern(1, 0, 3_100), state.ReadBufferState.ToArray());
    }

    [Theory]
    [InlineData(0, 0, 0, 0, 1, true)]
    [InlineData(4_000, 0, 1 << 20, 3_999, 100, false)]
    [InlineData(4_000, 0, 1 << 20, 4_000, 100, true)]
    [InlineData(4_000, 8, 1 << 20, 4_000, 1_000, false)]
    [InlineData(4_000, 8, 1 << 20, 8_000, 1_000, true)]
    [InlineData(4_000, 8, 1 << 20, 1 << 20, 1 << 20, true)]
    public void A_snapshot_must_be_due_at_the_larger_of_the_minimum_and_the_ratio_and_at_the_maximum_at_the_latest(long min, int ratio, long max, long progress, long lastState, bool due) =>
        Assert.Equal(due, new ReplicaStateSchedule(min, ratio, max).IsDue(progress, lastState));

    /// <summary>A connection whose ACKs wait for its buddy, from where it is now, with a replicator and the buddy's store.</summary>
    private static (DirectLink Link, ConnectionReplicator Replicator, ReplicaStore<string> Store, SeqNumber Start) GatedLink()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece: 1_000, readLogsInFlight: 1_000, ReplicaStateSchedule.EverySnapshot, AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        var start = link.Server.ReceiveNext;
        link.Server.AcknowledgeReplicatedUpTo(start);
        return (link, replicator, store, start);
    }

    /// <summary>
    /// A gated connection whose buddy holds its first state, with one read log in flight at most and read logs of up to
    /// <paramref name="maxPiece"/> bytes; no snapshot is due (its bytes go only as read logs).
    /// </summary>
    private static (DirectLink Link, ConnectionReplicator Replicator, ReplicaStore<string> Store, SeqNumber Start) OneReadLogInFlight(int maxPiece)
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var replicator = new ConnectionReplicator(Cid, maxPiece, readLogsInFlight: 1, new ReplicaStateSchedule(MinProgress: 1 << 20, ProgressPerStateByte: 0, MaxProgress: 1 << 20), AckTimeout);
        var store = new ReplicaStore<string>(16 * 1024 * 1024);
        var start = link.Server.ReceiveNext;
        link.Server.AcknowledgeReplicatedUpTo(start);
        replicator.Update(link.Now, link.Server, []);
        Deliver(replicator, store, link.Server);
        return (link, replicator, store, start);
    }

    private static void Deliver(ConnectionReplicator replicator, ReplicaStore<string> store, TcpConnection origin)
    {
        var acks = new List<ReplicaAck>();
        while (replicator.PollOutgoing(out var message))
        {
            // Through the codec, as the control connection carries them.
            Assert.True(ControlMessageCodec.TryDecode(message.ToArray(), out var decoded, out _));
            if (store.Apply("origin", decoded) is { } ack)
            {
                acks.Add(ack);
            }
        }

        foreach (var ack in acks)
        {
            replicator.HandleAck(ack, origin);
        }
    }
}

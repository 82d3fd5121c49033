using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The server application contract (thesis 3.3.2, 4.2.1) and the origin's packaging of a state reply (thesis 4.2.3
/// step 4, figs 3.7-3.10, 4.9, 4.10) on one endpoint in an exactly known state.
/// </summary>
[Trait("Category", "Migration")]
public sealed class MigrationSnapshotTests
{
    private static readonly TcpConfig ServerConfig = TcpConfig.Default with { RetainReadLog = true, DelayedAckTimeout = TimeSpan.Zero };
    private static readonly TcpConfig ClientConfig = TcpConfig.Default with { DelayedAckTimeout = TimeSpan.Zero };
    private static readonly ConnectionId MigratingCid = new(IpAddress.Parse("10.0.0.1"), 40000, IpAddress.Parse("10.0.0.11"), 80);
    private static readonly ConnectionId NewCid = new(IpAddress.Parse("10.0.0.1"), 40001, IpAddress.Parse("10.0.0.12"), 80);

    [Fact]
    public void ExportState_must_take_the_read_pointer_and_the_write_end_and_release_the_read_log()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        link.Client.Write(Pattern(1, 0, 3000));
        link.Server.Write(Pattern(2, 0, 5000));
        link.Exchange();
        Assert.Equal(1200, link.Server.Read(new byte[1200]));
        Assert.Equal(1200, link.Server.ReadLogLength);

        var snapshot = link.Server.ExportState([7, 7]);

        // rcv_seq_snapshot = rcv_nxt - so_rcv.sb_cc; snd_seq_snapshot = snd_una - so_snd_bytes_dups + so_snd.sb_cc.
        Assert.Equal(link.Server.ReceiveNext - link.Server.BytesReadable, snapshot.RcvSeqSnapshot);
        Assert.Equal(link.Server.SendUnacknowledged + link.Server.BytesUnacknowledged, snapshot.SndSeqSnapshot);
        Assert.Equal(0, link.Server.ReadLogLength);
        Assert.Equal(TcpStateCode.Established, snapshot.TSnapshot.TState);
        Assert.Equal([7, 7], snapshot.AppState.ToArray());
    }

    [Fact]
    public void ImportState_must_say_new_on_a_fresh_connection()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        var imported = link.Server.ImportState();
        Assert.Equal(ConnectionOrigin.New, imported.Origin);
        Assert.True(imported.AppState.IsEmpty);
    }

    [Fact]
    public void Write_buffer_state_must_be_the_unacknowledged_bytes_up_to_the_snapshot_when_snd_max_seen_is_before_it()
    {
        // Fig. 4.9 scenario 1: snd_max_seen < snd_seq_snapshot; the client's rcv_nxt is an implicit ACK via S2.
        var link = new DirectLink(ServerConfig, ClientConfig);
        link.Drop = (from, _) => from == link.Client;
        link.Server.Write(Pattern(2, 0, 6000));
        var snapshot = link.Server.ExportState([1]);
        link.Server.Write(Pattern(2, 6000, 4000));
        link.Exchange();
        var una = link.Server.SendUnacknowledged;
        var clientRcvNxt = una + 2000;

        var reply = Assert.IsType<StateReply>(link.Server.PackageState(Request(clientRcvNxt)));

        Assert.Equal(clientRcvNxt, reply.SndMaxSeen);
        Assert.Equal(0u, reply.SndBytesDiscard);
        Assert.Equal(snapshot.SndSeqSnapshot - clientRcvNxt, reply.SndStateLength);
        Assert.Equal(Pattern(2, 2000, 4000), reply.WriteBufferState.ToArray());
        Assert.Equal(snapshot.SndSeqSnapshot, reply.SndSeqSnapshot);
    }

    [Fact]
    public void Write_buffer_state_must_be_empty_and_count_duplicates_when_the_client_has_passed_the_snapshot()
    {
        // Figs 3.10 and 4.9 scenario 2: snd_max_seen > snd_seq_snapshot; snd_bytes_discard = snd_max_seen - snd_seq_snapshot.
        var link = new DirectLink(ServerConfig, ClientConfig);
        link.Server.Write(Pattern(2, 0, 1000));
        var snapshot = link.Server.ExportState([1]);
        link.Server.Write(Pattern(2, 1000, 4000));
        link.Exchange();
        Assert.Equal(0, link.Server.BytesUnacknowledged);

        var reply = Assert.IsType<StateReply>(link.Server.PackageState(Request(link.Client.ReceiveNext)));

        Assert.Equal(0, reply.SndStateLength);
        Assert.Equal(4000u, reply.SndBytesDiscard);
        Assert.Equal(snapshot.SndSeqSnapshot + 4000, reply.SndMaxSeen);
    }

    [Fact]
    public void Read_buffer_state_must_be_the_read_log_followed_by_the_acknowledged_unread_bytes()
    {
        // Figs 3.7, 3.8, 4.10: [rcv_seq_snapshot, last_ack_sent) = log since the snapshot + unread acknowledged data.
        var link = new DirectLink(ServerConfig, ClientConfig);
        link.Client.Write(Pattern(1, 0, 3000));
        link.Exchange();
        link.Server.Read(new byte[1000]);
        var snapshot = link.Server.ExportState([1]);
        link.Server.Read(new byte[500]);
        Assert.Equal(500, link.Server.ReadLogLength);

        var reply = Assert.IsType<StateReply>(link.Server.PackageState(Request(link.Client.ReceiveNext)));

        Assert.Equal(link.Server.LastAckSent, reply.LastAckSent);
        Assert.Equal(snapshot.RcvSeqSnapshot, reply.RcvSeqSnapshot);
        Assert.Equal(Pattern(1, 1000, 2000), reply.ReadBufferState.ToArray());
    }

    [Fact]
    public void Read_buffer_state_must_stop_at_last_ack_sent()
    {
        // Bytes received but not yet acknowledged stay in the client's send buffer; they are not transferred.
        var link = new DirectLink(ServerConfig with { DelayedAckTimeout = TimeSpan.FromMilliseconds(40) }, ClientConfig);
        link.Client.Write(Pattern(1, 0, 1000));
        link.Exchange();
        link.Elapse(TimeSpan.FromMilliseconds(50));
        var acked = link.Server.LastAckSent;
        link.Client.Write(Pattern(1, 1000, 1000));
        link.Exchange();
        Assert.True(link.Server.ReceiveNext > acked, "the second segment's ACK must still be delayed");

        var reply = Assert.IsType<StateReply>(link.Server.PackageState(Request(link.Client.ReceiveNext)));

        Assert.Equal(acked, reply.LastAckSent);
        Assert.Equal(Pattern(1, 0, 1000), reply.ReadBufferState.ToArray());
    }

    [Fact]
    public void State_transitions_since_the_snapshot_must_be_logged()
    {
        // Thesis 4.2.2: an active close after the snapshot travels as ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2.
        var link = new DirectLink(ServerConfig, ClientConfig);
        link.Server.ExportState([1]);
        link.Server.Close(link.Now);
        link.Exchange();
        Assert.Equal(TcpState.FinWait2, link.Server.State);

        var reply = Assert.IsType<StateReply>(link.Server.PackageState(Request(link.Client.ReceiveNext)));

        Assert.Equal(
            [new TcpStateTransition(TcpStateCode.Established, TcpStateCode.FinWait1), new TcpStateTransition(TcpStateCode.FinWait1, TcpStateCode.FinWait2)],
            reply.TStateTransitions.ToArray());
    }

    [Fact]
    public void A_request_for_a_connection_in_SYN_RECEIVED_must_be_rejected_with_invalid_state()
    {
        var listener = TcpConnection.Listen(ServerConfig, 80, new SeqNumber(1));
        listener.HandleSegment(Instant.FromMilliseconds(1), new TcpSegmentRepr { SourcePort = 1, DestinationPort = 80, Flags = TcpFlags.Syn, Window = 1000 }, []);
        Assert.Equal(TcpState.SynReceived, listener.State);

        var reject = Assert.IsType<StateReject>(listener.PackageState(Request(new SeqNumber(1))));

        Assert.Equal(StateRejectReason.InvalidState, reject.Reason);
    }

    [Theory]
    [InlineData(TcpState.LastAck)]
    [InlineData(TcpState.TimeWait)]
    [InlineData(TcpState.Closed)]
    public void A_request_in_a_state_without_data_to_carry_must_be_rejected_with_invalid_state(TcpState state)
    {
        var link = StateOf(state);
        Assert.Equal(state, link.Server.State);

        var reject = Assert.IsType<StateReject>(link.Server.PackageState(Request(link.Client.ReceiveNext)));

        Assert.Equal(StateRejectReason.InvalidState, reject.Reason);
        Assert.Equal(NewCid, reject.NewEndpointCid);
    }

    [Theory]
    [InlineData(TcpState.CloseWait)]
    [InlineData(TcpState.FinWait1)]
    [InlineData(TcpState.FinWait2)]
    public void A_request_in_a_state_waiting_for_a_FIN_must_be_served(TcpState state)
    {
        var link = StateOf(state);
        Assert.Equal(state, link.Server.State);
        Assert.IsType<StateReply>(link.Server.PackageState(Request(link.Client.ReceiveNext)));
    }

    [Fact]
    public void A_migrated_away_endpoint_must_fail_reads_and_writes_with_EMIGRATED()
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        link.Server.CompleteMigrationAway();

        Assert.Throws<ConnectionMigratedException>(() => link.Server.Write([1, 2, 3]));
        Assert.Throws<ConnectionMigratedException>(() => link.Server.Read(new byte[10]));
        Assert.Throws<ConnectionMigratedException>(() => link.Server.ExportState([1]));
        var events = new List<TcpEvent>();
        while (link.Server.PollEvent(out var e))
        {
            events.Add(e);
        }

        Assert.Contains(TcpEvent.MigratedAway, events);
        Assert.False(link.Server.PollTransmit(link.Now, new byte[100], out _, out _), "a migrated-away endpoint must not disturb the client");
    }

    [Fact]
    public void A_reinstated_endpoint_must_discard_so_snd_bytes_dups_of_the_application_rewrites()
    {
        var origin = new DirectLink(ServerConfig, ClientConfig);
        origin.Server.Write(Pattern(2, 0, 1000));
        origin.Server.ExportState([9]);
        origin.Server.Write(Pattern(2, 1000, 3000));
        origin.Exchange();
        var reply = Assert.IsType<StateReply>(origin.Server.PackageState(Request(origin.Client.ReceiveNext)));
        var destination = TcpConnection.Listen(ServerConfig, 80, new SeqNumber(777));
        destination.HandleSegment(origin.Now, new TcpSegmentRepr { SourcePort = 40001, DestinationPort = 80, SequenceNumber = new SeqNumber(1), Flags = TcpFlags.Syn, Window = 65535 }, []);

        destination.ReinstateState(reply);

        Assert.Equal(3000, destination.SoSndBytesDups);
        Assert.Equal(ConnectionOrigin.Migrated, destination.ImportState().Origin);
        Assert.Equal([9], destination.ImportState().AppState.ToArray());
        Assert.Equal(3000, destination.Write(Pattern(2, 1000, 3000)));
        Assert.Equal(0, destination.BytesUnacknowledged);
        Assert.Equal(0, destination.SoSndBytesDups);
    }

    internal static StateRequest Request(SeqNumber clientRcvNxt) => new(1, MigratingCid, NewCid, clientRcvNxt, new byte[8]);

    internal static byte[] Pattern(ulong key, long offset, int length)
    {
        var bytes = new byte[length];
        StreamPattern.Fill(key, offset, bytes);
        return bytes;
    }

    private static DirectLink StateOf(TcpState state)
    {
        var link = new DirectLink(ServerConfig, ClientConfig);
        switch (state)
        {
            case TcpState.CloseWait:
                link.Client.Close(link.Now);
                break;
            case TcpState.FinWait1:
                link.Drop = (from, _) => from == link.Client;
                link.Server.Close(link.Now);
                break;
            case TcpState.FinWait2:
                link.Server.Close(link.Now);
                break;
            case TcpState.LastAck:
                link.Client.Close(link.Now);
                link.Exchange();
                link.Drop = (from, _) => from == link.Client;
                link.Server.Close(link.Now);
                break;
            case TcpState.TimeWait:
                link.Server.Close(link.Now);
                link.Exchange();
                link.Client.Close(link.Now);
                break;
            case TcpState.Closed:
                link.Server.Abort(link.Now);
                break;
            default:
                break;
        }

        link.Exchange();
        return link;
    }
}

using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The one server endpoint (<see cref="MtcpServerEndpoint{TPeer}"/>) that both the sans-IO host and the actor runtime
/// drive, against a real <see cref="MtcpClientConnection"/>: segments are handed across by hand so that each test
/// chooses which one is late.
/// </summary>
[Trait("Category", "Migration")]
public sealed class ServerEndpointTests
{
    private const string Destination = "control connection to S2";
    private static readonly TcpConfig Config = TcpConfig.Default with { SendBufferSize = 16 * 1024, ReceiveBufferSize = 16 * 1024 };
    private static readonly Instant Start = Instant.FromMilliseconds(1_000);
    private readonly byte[] _payload = new byte[Config.MaxSegmentSize];

    [Fact]
    public void State_request_arriving_in_SYN_RECEIVED_must_be_held_and_answered_with_the_state_once_the_handshake_completes()
    {
        var origin = SynReceived(out var client);
        Assert.Equal(TcpState.Established, client.State);
        Assert.Equal(ServerEndpointPhase.Handshaking, origin.Phase);

        // The client's ACK is late; its migration's state request overtakes it over the control connection.
        Assert.True(client.PollTransmit(Start, _payload, out _, out var lateAck, out _));
        var plan = Migrate(client, deadline: null, out _);
        origin.HandleStateRequest(Start, Destination, plan.Request!);

        Assert.False(origin.PollControl(out _, out _));

        origin.HandleSegment(Start, lateAck, ReadOnlySpan<byte>.Empty);

        Assert.Equal(ServerEndpointPhase.Established, origin.Phase);
        Assert.True(origin.PollControl(out var peer, out var answer));
        Assert.Equal(Destination, peer);
        var reply = Assert.IsType<StateReply>(answer);
        Assert.Equal(plan.Request!.RequestId, reply.RequestId);
        Assert.Contains(Events(origin), e => e is ServerEndpointEvent.Accepted { Migrated: false });
    }

    [Fact]
    public void Held_state_request_must_be_answered_INVALID_STATE_once_the_ACK_is_a_retransmission_timeout_late()
    {
        var origin = SynReceived(out var client);
        var plan = Migrate(client, deadline: null, out _);
        origin.HandleStateRequest(Start, Destination, plan.Request!);
        var heldUntil = Start + origin.Connection.RetransmissionTimeout;
        Assert.True(origin.PollTimeout() <= heldUntil);

        // The ACK was lost, and the migrating client sends no other: the destination learns it now, not at its timeout.
        origin.HandleTimeout(heldUntil);

        Assert.True(origin.PollControl(out _, out var answer));
        Assert.Equal(StateRejectReason.InvalidState, Assert.IsType<StateReject>(answer).Reason);
    }

    [Fact]
    public void Held_state_request_must_be_answered_CB_NOT_FOUND_when_the_handshake_never_completes()
    {
        var origin = SynReceived(out var client);
        var plan = Migrate(client, deadline: null, out _);
        origin.HandleStateRequest(Start, Destination, plan.Request!);

        origin.Abort(Start);

        Assert.True(origin.PollControl(out _, out var answer));
        Assert.Equal(StateRejectReason.CbNotFound, Assert.IsType<StateReject>(answer).Reason);
    }

    [Fact]
    public void Destination_must_hold_the_special_SYN_until_the_state_is_reinstated_then_ack_it_and_answer_the_SYN()
    {
        var origin = Established(out var client);
        var plan = Migrate(client, Start + TimeSpan.FromSeconds(1), out var specialSyn);
        var newCid = plan.Request!.NewEndpointCid;
        var destination = new MtcpServerEndpoint<string>(Config, newCid, ServerIsn + 5000, Authenticator(), () => [S1], plan);

        destination.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);
        destination.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);

        Assert.Equal(ServerEndpointPhase.AwaitingState, destination.Phase);
        Assert.Empty(Transmitted(destination));
        Assert.Equal(plan.Deadline, destination.PollTimeout());

        origin.HandleStateRequest(Start, "control connection to S1", plan.Request!);
        Assert.True(origin.PollControl(out _, out var answer));
        destination.HandleStateReply(Start, "control connection to S1", Assert.IsType<StateReply>(answer));

        Assert.True(destination.PollControl(out var acked, out var ack));
        Assert.Equal("control connection to S1", acked);
        Assert.Equal(Cid, Assert.IsType<StateAck>(ack).MigratingCid);
        var synAck = Assert.Single(Transmitted(destination));
        Assert.True(synAck.Has(TcpFlags.Syn | TcpFlags.Ack));
        Assert.NotNull(synAck.Options.OrigConnectionInfo);

        origin.HandleStateAck(Start, (StateAck)ack);
        Assert.Equal(ServerEndpointPhase.MigratedAway, origin.Phase);
        Assert.Contains(Events(origin), e => e is ServerEndpointEvent.MigratedAway);
    }

    [Fact]
    public void A_migration_must_name_its_origin_destination_and_the_connections_first_Cid_on_both_servers()
    {
        var origin = Established(out var client);
        var plan = Migrate(client, Start + TimeSpan.FromSeconds(1), out var specialSyn);
        var newCid = plan.Request!.NewEndpointCid;
        var destination = new MtcpServerEndpoint<string>(Config, newCid, ServerIsn + 5000, Authenticator(), () => [S1], plan);
        destination.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);
        origin.HandleStateRequest(Start, "control connection to S1", plan.Request!);
        Assert.True(origin.PollControl(out _, out var answer));
        destination.HandleStateReply(Start + TimeSpan.FromMilliseconds(3), "control connection to S1", Assert.IsType<StateReply>(answer));
        Assert.True(destination.PollControl(out _, out var ack));
        origin.HandleStateAck(Start, (StateAck)ack);

        // The client's port (and so the current Cid) changed with the hop; the first Cid did not.
        Assert.NotEqual(Cid, newCid);
        Assert.Equal(Cid, origin.FirstCid);
        Assert.Equal(Cid, destination.FirstCid);
        var service = new ServerEndpoint(Cid.ServerAddress, Cid.ServerPort);
        var target = new ServerEndpoint(newCid.ServerAddress, newCid.ServerPort);
        var reinstated = Assert.Single(Events(destination).OfType<ServerEndpointEvent.Reinstated>());
        Assert.Equal(service, reinstated.Origin);
        Assert.Equal(TimeSpan.FromMilliseconds(3), reinstated.StateWait);
        Assert.Equal(target, Assert.Single(Events(origin).OfType<ServerEndpointEvent.MigratedAway>()).Destination);
    }

    [Fact]
    public void A_state_ack_for_no_reply_sent_here_must_not_drop_the_connection()
    {
        // The same Cid names every incarnation of the connection on this 4-tuple: an ack this endpoint's replies did not
        // ask for (a stale one, a fence meant for an incarnation that left before this one came back) must not close it.
        var origin = Established(out var client);

        origin.HandleStateAck(Start, new StateAck(0, Cid));
        origin.HandleStateAck(Start, new StateAck(7, Cid));

        Assert.Equal(ServerEndpointPhase.Established, origin.Phase);
        Assert.DoesNotContain(Events(origin), e => e is ServerEndpointEvent.MigratedAway);
        Assert.True(origin.TryCreateTrigger(null, out _));
    }

    [Fact]
    public void A_takeover_notice_must_drop_the_connection_only_at_the_incarnation_of_its_epoch()
    {
        // A buddy that took the connection over from the replica of this endpoint (epoch 0: no migration yet) tells it so.
        var origin = Established(out _);

        // A flood naming other incarnations or other connections changes nothing.
        for (var epoch = 1u; epoch <= 1_000; epoch++)
        {
            origin.HandleTakenOver(Start, new ConnectionTakenOver(epoch, Cid, epoch));
            origin.HandleTakenOver(Start, new ConnectionTakenOver(epoch, Cid with { ClientPort = (ushort)(40000 + epoch) }, 0));
        }

        Assert.Equal(ServerEndpointPhase.Established, origin.Phase);
        Assert.Empty(Events(origin));

        origin.HandleTakenOver(Start, new ConnectionTakenOver(5, Cid, 0));

        Assert.Equal(ServerEndpointPhase.MigratedAway, origin.Phase);
        Assert.Null(Assert.Single(Events(origin).OfType<ServerEndpointEvent.MigratedAway>()).Destination);
        Assert.Equal(Start + Config.TwoMsl, origin.PollTimeout());
    }

    [Fact]
    public void A_takeover_notice_for_the_incarnation_a_connection_migrated_from_must_not_drop_it_where_it_went()
    {
        // The connection moved on (here to S2, as it comes back to a node on the same 4-tuple): the notice naming the
        // incarnation it left, late, must not touch the one serving it now.
        var origin = Established(out var client);
        var plan = Migrate(client, deadline: null, out var specialSyn);
        var destination = new MtcpServerEndpoint<string>(Config, plan.Request!.NewEndpointCid, ServerIsn + 5000, Authenticator(), () => [S1], plan);
        destination.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);
        origin.HandleStateRequest(Start, "control connection to S1", plan.Request!);
        Assert.True(origin.PollControl(out _, out var answer));
        destination.HandleStateReply(Start, "control connection to S1", Assert.IsType<StateReply>(answer));
        foreach (var synAck in Transmitted(destination))
        {
            client.HandleSegment(Start, S2, synAck, ReadOnlySpan<byte>.Empty);
        }

        foreach (var ack in Transmitted(client))
        {
            destination.HandleSegment(Start, ack, ReadOnlySpan<byte>.Empty);
        }

        Assert.Equal(ServerEndpointPhase.Established, destination.Phase);

        destination.HandleTakenOver(Start, new ConnectionTakenOver(5, plan.Request!.NewEndpointCid, 0));
        Assert.Equal(ServerEndpointPhase.Established, destination.Phase);
        destination.HandleTakenOver(Start, new ConnectionTakenOver(5, plan.Request!.NewEndpointCid, 1));
        Assert.Equal(ServerEndpointPhase.MigratedAway, destination.Phase);
    }

    [Fact]
    public void A_reinstated_connection_must_tell_the_application_which_server_it_migrated_from()
    {
        var origin = Established(out var client);
        var plan = Migrate(client, Start + TimeSpan.FromSeconds(1), out var specialSyn);
        var destination = new MtcpServerEndpoint<string>(Config, plan.Request!.NewEndpointCid, ServerIsn + 5000, Authenticator(), () => [S1], plan);
        destination.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);
        origin.HandleStateRequest(Start, "control connection to S1", plan.Request!);
        Assert.True(origin.PollControl(out _, out var answer));
        destination.HandleStateReply(Start, "control connection to S1", Assert.IsType<StateReply>(answer));

        var imported = destination.ImportState();

        Assert.Equal(ConnectionOrigin.Migrated, imported.Origin);
        Assert.Equal(new ServerEndpoint(Cid.ServerAddress, Cid.ServerPort), imported.MigratedFrom);
        Assert.Null(origin.ImportState().MigratedFrom);
    }

    [Fact]
    public void Destination_must_refuse_the_special_SYN_with_a_RST_when_no_state_reply_comes_in_time()
    {
        var origin = Established(out var client);
        var plan = Migrate(client, Start + TimeSpan.FromSeconds(1), out var specialSyn);
        var newCid = plan.Request!.NewEndpointCid;
        var destination = new MtcpServerEndpoint<string>(Config, newCid, ServerIsn + 5000, Authenticator(), () => [S1], plan);
        destination.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);

        destination.HandleTimeout(Start + TimeSpan.FromSeconds(1));

        var reset = Assert.Single(Transmitted(destination));
        Assert.True(reset.Has(TcpFlags.Rst));
        Assert.Equal(ServerEndpointPhase.Ended, destination.Phase);
        Assert.Contains(Events(destination), e => e is ServerEndpointEvent.Refused { Reason: "no state reply in time" });

        // A late reply is never acknowledged: the origin keeps the connection.
        origin.HandleStateRequest(Start, "control connection to S1", plan.Request!);
        Assert.True(origin.PollControl(out _, out var answer));
        destination.HandleStateReply(Start, "control connection to S1", (StateReply)answer);
        Assert.False(destination.PollControl(out _, out _));
        Assert.Equal(ServerEndpointPhase.Established, origin.Phase);
    }

    [Fact]
    public void Migrated_away_endpoint_must_stay_silent_for_two_MSL_then_end()
    {
        var origin = Established(out var client);
        var plan = Migrate(client, deadline: null, out _);
        origin.HandleStateRequest(Start, "S2", plan.Request!);
        Assert.True(origin.PollControl(out _, out _));
        origin.Connection.Write(new byte[10]);
        origin.HandleStateAck(Start, new StateAck(1, Cid));

        origin.HandleSegment(Start, ClientSegment(client, TcpFlags.Ack), ReadOnlySpan<byte>.Empty);

        Assert.Empty(Transmitted(origin));
        Assert.Equal(1, origin.SilencedSegments);
        Assert.Equal(Start + Config.TwoMsl, origin.PollTimeout());
        Assert.True(origin.IsNewConnection(ClientSegment(client, TcpFlags.Syn)));
        Assert.False(origin.TryCreateTrigger(null, out _));

        origin.HandleTimeout(Start + Config.TwoMsl);

        Assert.Equal(ServerEndpointPhase.Ended, origin.Phase);
    }

    [Fact]
    public void Endpoint_without_migration_must_refuse_a_special_SYN_and_answer_state_requests_CB_NOT_FOUND()
    {
        Established(out var client);
        var plan = Migrate(client, deadline: null, out var specialSyn);
        var plain = new MtcpServerEndpoint<string>(Config, plan.Request!.NewEndpointCid, ServerIsn, authenticator: null, () => []);

        plain.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);

        Assert.True(Assert.Single(Transmitted(plain)).Has(TcpFlags.Rst));
        Assert.Contains(Events(plain), e => e is ServerEndpointEvent.Refused);
        plain.HandleStateRequest(Start, "S1", plan.Request!);
        Assert.True(plain.PollControl(out _, out var answer));
        Assert.Equal(StateRejectReason.CbNotFound, Assert.IsType<StateReject>(answer).Reason);
    }

    [Fact]
    public void Special_SYN_on_the_origins_own_4_tuple_before_the_state_ack_must_be_dropped_not_challenged()
    {
        var origin = Established(out var client);

        // A client that keeps its port and comes back to this server before the state ack of its last hop reached it:
        // its special SYN arrives on the 4-tuple this endpoint still holds.
        client.BeginMigration(Start, S2, new SeqNumber(1), localPort: Cid.ClientPort);
        var specialSyn = Transmitted(client).Last();
        Assert.NotNull(specialSyn.Options.MigratedConnection);

        origin.HandleSegment(Start, specialSyn, ReadOnlySpan<byte>.Empty);

        // A challenge ACK would draw the client's RST (SYN-SENT, unacceptable ACK) and reset this connection.
        Assert.Empty(Transmitted(origin));
        Assert.Equal(1, origin.SilencedSegments);
        Assert.Equal(ServerEndpointPhase.Established, origin.Phase);

        // A plain SYN on the 4-tuple is still challenged, as TCP does (RFC 9293 §3.10.7.4).
        origin.HandleSegment(Start, specialSyn with { Options = default }, ReadOnlySpan<byte>.Empty);
        Assert.True(Assert.Single(Transmitted(origin)).Has(TcpFlags.Ack));
    }

    /// <summary>The client starts migrating to S2 from a fresh port: its special SYN, and the plan S2 makes for it.</summary>
    private StateRequestPlan Migrate(MtcpClientConnection client, Instant? deadline, out TcpSegmentRepr specialSyn)
    {
        client.BeginMigration(Start, S2, new SeqNumber(1), localPort: 40001);
        specialSyn = Transmitted(client).Last();
        return StateRequestPlan.For(1, specialSyn.Options.MigratedConnection!.Value, new ConnectionId(Client, 40001, S2.Address, S2.Port), S2, Start, deadline);
    }

    private static MtcpServerEndpoint<string> Endpoint(ServerEndpoint service, StateRequestPlan? plan) =>
        new(Config, new ConnectionId(Client, Cid.ClientPort, service.Address, service.Port), ServerIsn, Authenticator(), () => [S2, S3], plan);

    /// <summary>An origin endpoint in SYN-RECEIVED whose client has its SYN+ACK and is established; the client's ACK not yet sent.</summary>
    private MtcpServerEndpoint<string> SynReceived(out MtcpClientConnection client)
    {
        var origin = Endpoint(S1, plan: null);
        client = MtcpClientConnection.Connect(Config, Client, Cid.ClientPort, S1, ClientIsn, Start);
        Deliver(client, origin);
        Deliver(origin, client);
        return origin;
    }

    /// <summary>An origin endpoint with its client past the handshake, the client's ACK delivered.</summary>
    private MtcpServerEndpoint<string> Established(out MtcpClientConnection client)
    {
        var origin = SynReceived(out client);
        Deliver(client, origin);
        Assert.Equal(ServerEndpointPhase.Established, origin.Phase);
        Events(origin);

        // The alternates the SYN+ACK had no room for follow on an ACK of the handshake.
        Deliver(origin, client);
        Assert.Contains(S2, client.AlternateServers);
        return origin;
    }

    private static TcpSegmentRepr ClientSegment(MtcpClientConnection client, TcpFlags flags) => new()
    {
        SourcePort = Cid.ClientPort,
        DestinationPort = S1.Port,
        SequenceNumber = client.CurrentControlBlock.InitialSendSequence + 1,
        AcknowledgmentNumber = ServerIsn + 1,
        Flags = flags,
    };

    private void Deliver(MtcpClientConnection client, MtcpServerEndpoint<string> server)
    {
        foreach (var segment in Transmitted(client))
        {
            server.HandleSegment(Start, segment, ReadOnlySpan<byte>.Empty);
        }
    }

    private void Deliver(MtcpServerEndpoint<string> server, MtcpClientConnection client)
    {
        foreach (var segment in Transmitted(server))
        {
            client.HandleSegment(Start, server.Service, segment, ReadOnlySpan<byte>.Empty);
        }
    }

    private List<TcpSegmentRepr> Transmitted(IPolledEndpoint endpoint)
    {
        var segments = new List<TcpSegmentRepr>();
        while (endpoint.PollTransmit(Start, _payload, out _, out var header, out _))
        {
            segments.Add(header);
        }

        return segments;
    }

    private static List<ServerEndpointEvent> Events(MtcpServerEndpoint<string> endpoint)
    {
        var events = new List<ServerEndpointEvent>();
        while (endpoint.PollEndpointEvent(out var e))
        {
            events.Add(e);
        }

        return events;
    }
}

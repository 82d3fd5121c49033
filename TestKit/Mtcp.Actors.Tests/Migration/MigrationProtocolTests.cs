using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Migration;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Transports;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Actors.Tests.Runtime.RuntimeTestSupport;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// The migration protocol of the runtime's actors, with TestProbes standing in for the control connections and the
/// service directory: two server runtimes and a client runtime in one ActorSystem on an in-memory fabric. Migrations
/// are authenticated per connection (docs/threat-model.md): the state requests these tests hand the origin are the
/// ones the client's real special SYNs produced at the destination.
/// </summary>
[Trait("Category", "Actors")]
public sealed class MigrationProtocolTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServicePort = 7000;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly IpAddress OriginAddress = IpAddress.Parse("10.2.0.1");
    private static readonly IpAddress DestinationAddress = IpAddress.Parse("10.2.0.2");
    private static readonly IpAddress ClientAddress = IpAddress.Parse("10.2.0.9");
    private static readonly Address OriginNode = new("akka.tcp", "mtcp", "127.0.0.1", 2551);

    private readonly InMemoryPacketFabric _fabric = new();
    private readonly MtcpRuntime _origin;
    private readonly MtcpRuntime _destination;
    private readonly MtcpRuntime _client;
    private readonly TestProbe _originControl;
    private readonly TestProbe _destinationControl;
    private readonly TestProbe _destinationDirectory;
    private readonly TestProbe _controlConnection;
    private readonly MigrationAuthenticator _authenticator = MigrationAuthenticator.FromKey("protocol test cluster key, 32 b."u8);

    public MigrationProtocolTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(FastCloseConfig)))
    {
        _origin = MtcpRuntime.Start(Sys, _fabric, NodeConfig(OriginAddress.ToString()), "origin");
        _destination = MtcpRuntime.Start(Sys, _fabric, NodeConfig(DestinationAddress.ToString()), "destination");
        _client = MtcpRuntime.Start(Sys, _fabric, NodeConfig(ClientAddress.ToString(), extra: "mtcp.tcp.connect-timeout = 3s"), "client");
        _originControl = CreateTestProbe("origin-control");
        _destinationControl = CreateTestProbe("destination-control");
        _destinationDirectory = CreateTestProbe("destination-directory");
        _controlConnection = CreateTestProbe("control-connection");
    }

    private ServerEndpoint Origin => new(OriginAddress, ServicePort);

    private ServerEndpoint Destination => new(DestinationAddress, ServicePort);

    /// <summary>
    /// Enables migration everywhere; the destination's directory probe maps the origin's service to <see cref="OriginNode"/>
    /// and announces <paramref name="destinationAlternates"/> (default: the origin) as the destination's alternates.
    /// </summary>
    private async Task EnableMigrationAsync(IReadOnlyList<ServerEndpoint>? destinationAlternates = null)
    {
        var enablingOrigin = _origin.EnableMigrationAsync(new MigrationSupport(_authenticator, _originControl.Ref));
        await AnswerUseControlAuthenticatorAsync(_originControl);
        await enablingOrigin;
        var enabling = _destination.EnableMigrationAsync(new MigrationSupport(_authenticator, _destinationControl.Ref, _destinationDirectory.Ref));
        await AnswerUseControlAuthenticatorAsync(_destinationControl);
        var subscribe = await _destinationDirectory.ExpectMsgAsync<SubscribeAlternateServers>(Patience);
        subscribe.Subscriber.Tell(new AlternateServersChanged(new AlternateServerList(destinationAlternates ?? [Origin]), new ControlMappings([new(Origin, OriginNode)])));
        await enabling;
        await _client.EnableMigrationAsync(new MigrationSupport(_authenticator));
    }

    /// <summary>The control manager's part in enabling migration: it is given the cluster key's authenticator for sealing.</summary>
    private async Task AnswerUseControlAuthenticatorAsync(TestProbe controlManager)
    {
        var use = await controlManager.ExpectMsgAsync<UseControlAuthenticator>(Patience);
        Assert.Same(_authenticator, use.Authenticator);
        controlManager.Reply(ControlAuthenticatorInUse.Instance);
    }

    /// <summary>A connection from the client to <paramref name="server"/>, both ends.</summary>
    private async Task<(MtcpClient Client, MtcpStream Stream, MtcpConnection Server, MtcpListener Listener)> ConnectAsync(MtcpRuntime server)
    {
        var listener = new MtcpListener(server, ServicePort);
        await listener.StartAsync();
        var accepting = listener.AcceptAsync();
        var client = new MtcpClient(_client);
        var stream = await client.ConnectAsync(new IPEndPoint(server.LocalAddress.ToIPAddress(), ServicePort));
        return (client, stream, await accepting.AsTask().WaitAsync(Patience), listener);
    }

    /// <summary>
    /// The state request the client's special SYN makes the destination send (its MIGRATED_CONN authenticator under the
    /// connection's secret), taken from the destination's control probe; that migration is then failed (the client
    /// stays on the origin), so the request is unused when it is returned. Needs a listener on the destination.
    /// </summary>
    private async Task<StateRequest> SpecialSynRequestAsync(MtcpClient client)
    {
        var migrating = client.MigrateAsync(Destination);
        var asked = await _destinationControl.ExpectMsgAsync<RequestState>(Patience);
        asked.ReplyTo.Tell(new StateRequestTimedOut(asked.Peer, asked.Request.RequestId, asked.Request.NewEndpointCid, TimeSpan.FromSeconds(1)));
        Assert.Equal(MigrationOutcome.Failed, (await migrating.WaitAsync(Patience)).Outcome);
        return asked.Request;
    }

    private static StateRequest WithId(StateRequest request, ulong requestId) =>
        new(requestId, request.MigratingCid, request.NewEndpointCid, request.ClientRcvNxt, request.Authenticator);

    private async Task<MtcpListener> StartDestinationListenerAsync()
    {
        var listener = new MtcpListener(_destination, ServicePort);
        await listener.StartAsync();
        return listener;
    }

    [Fact]
    public async Task Registry_must_answer_a_state_request_with_the_endpoints_state_reply()
    {
        await EnableMigrationAsync();
        await using var destinationListener = await StartDestinationListenerAsync();
        var (client, stream, server, listener) = await ConnectAsync(_origin);
        await server.Stream.WriteAsync(new byte[1000]);
        server.ExportState("offset 1000"u8);
        var request = await SpecialSynRequestAsync(client);

        _origin.ConnectionRegistry.Tell(new StateRequestReceived(OriginNode, WithId(request, 1)), _controlConnection.Ref);

        var reply = await _controlConnection.ExpectMsgAsync<StateReply>(Patience);
        Assert.Equal(1UL, reply.RequestId);
        Assert.Equal("offset 1000"u8.ToArray(), reply.AppState.ToArray());
        Assert.False(server.IsMigratedAway);
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task Registry_must_reject_a_request_for_an_unknown_connection_with_CbNotFound()
    {
        await EnableMigrationAsync();
        var unknown = new ConnectionId(ClientAddress, 40000, OriginAddress, ServicePort);
        var request = new StateRequest(2, unknown, new ConnectionId(ClientAddress, 40000, DestinationAddress, ServicePort), new SeqNumber(0), new byte[8]);

        _origin.ConnectionRegistry.Tell(new StateRequestReceived(OriginNode, request), _controlConnection.Ref);

        var reject = await _controlConnection.ExpectMsgAsync<StateReject>(Patience);
        Assert.Equal(StateRejectReason.CbNotFound, reject.Reason);
        Assert.Equal(2UL, reject.RequestId);
    }

    [Fact]
    public async Task Endpoint_must_reject_a_request_whose_authenticator_does_not_verify_with_AuthFailed()
    {
        await EnableMigrationAsync();
        await using var destinationListener = await StartDestinationListenerAsync();
        var (client, _, server, listener) = await ConnectAsync(_origin);
        var request = await SpecialSynRequestAsync(client);
        var forged = request.Authenticator.ToArray();
        forged[^1] ^= 1;

        _origin.ConnectionRegistry.Tell(
            new StateRequestReceived(OriginNode, new StateRequest(3, request.MigratingCid, request.NewEndpointCid, request.ClientRcvNxt, forged)),
            _controlConnection.Ref);

        Assert.Equal(StateRejectReason.AuthFailed, (await _controlConnection.ExpectMsgAsync<StateReject>(Patience)).Reason);
        Assert.False(server.IsMigratedAway);
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task Endpoint_must_reject_a_replayed_special_SYN_with_AuthFailed_after_answering_it_once()
    {
        await EnableMigrationAsync();
        await using var destinationListener = await StartDestinationListenerAsync();
        var (client, _, server, listener) = await ConnectAsync(_origin);
        var request = await SpecialSynRequestAsync(client);

        _origin.ConnectionRegistry.Tell(new StateRequestReceived(OriginNode, WithId(request, 7)), _controlConnection.Ref);
        Assert.Equal(7UL, (await _controlConnection.ExpectMsgAsync<StateReply>(Patience)).RequestId);

        // The same special SYN again (a captured one replayed, through any server): its attempt is spent.
        _origin.ConnectionRegistry.Tell(new StateRequestReceived(OriginNode, WithId(request, 8)), _controlConnection.Ref);
        var reject = await _controlConnection.ExpectMsgAsync<StateReject>(Patience);
        Assert.Equal(StateRejectReason.AuthFailed, reject.Reason);
        Assert.Contains(nameof(MigratedConnectionCheck.Replayed), reject.Diagnostic);
        Assert.False(server.IsMigratedAway);
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task Syn_ack_of_the_origin_must_carry_the_connections_migration_secret()
    {
        await EnableMigrationAsync();
        await using var listener = new MtcpListener(_origin, ServicePort);
        await listener.StartAsync();
        var peerAddress = IpAddress.Parse("10.2.0.51");
        var peer = _fabric.Attach(peerAddress);
        var syn = new TcpSegmentRepr { SourcePort = 41001, DestinationPort = ServicePort, SequenceNumber = new SeqNumber(7000), Flags = TcpFlags.Syn, Window = 1024 };
        var bytes = new byte[syn.HeaderLength];
        syn.Emit(bytes, default, peerAddress, OriginAddress);
        Assert.True(peer.Send(OriginAddress, bytes));
        var buffer = new byte[peer.ReceiveBufferLength];

        Assert.Equal(ReceiveOutcome.Received, peer.Receive(buffer, Patience, out var received));
        Assert.True(TcpSegmentRepr.TryParse(received.SliceOf(buffer), OriginAddress, peerAddress, ChecksumPolicy.Verify, out var synAck, out _, out var error), error.ToString());
        var secret = Assert.NotNull(synAck.Options.MigrationSecret);

        // The secret the cluster key gives this connection (its Cid and both ISNs), and no other.
        _authenticator.IssueCredential(new ConnectionId(peerAddress, 41001, OriginAddress, ServicePort), syn.SequenceNumber, synAck.SequenceNumber, out var expected);
        var expectedBytes = new byte[MigrationSecret.Length];
        expected.WriteTo(expectedBytes);
        Assert.Equal(MtcpMigrationSecret.FromBytes(expectedBytes), secret);
    }

    [Fact]
    public async Task Request_for_a_connection_in_SYN_RECEIVED_must_wait_for_the_handshake_and_be_rejected_when_it_never_completes()
    {
        await EnableMigrationAsync();
        await using var listener = new MtcpListener(_origin, ServicePort);
        await listener.StartAsync();
        var peerAddress = IpAddress.Parse("10.2.0.50");
        var peer = _fabric.Attach(peerAddress);
        var syn = new TcpSegmentRepr
        {
            SourcePort = 41000,
            DestinationPort = ServicePort,
            SequenceNumber = new SeqNumber(5000),
            Flags = TcpFlags.Syn,
            Window = 1024,
        };
        var bytes = new byte[syn.HeaderLength];
        syn.Emit(bytes, default, peerAddress, OriginAddress);
        Assert.True(peer.Send(OriginAddress, bytes));
        var buffer = new byte[peer.ReceiveBufferLength];

        // The SYN+ACK shows the endpoint exists (it registered before answering); the handshake is never completed.
        Assert.Equal(ReceiveOutcome.Received, peer.Receive(buffer, Patience, out _));
        var migrating = new ConnectionId(peerAddress, 41000, OriginAddress, ServicePort);
        var newEndpoint = new ConnectionId(peerAddress, 41000, DestinationAddress, ServicePort);

        // Unanswered in SYN-RECEIVED whatever it carries: no authenticator is checked before the handshake completes.
        _origin.ConnectionRegistry.Tell(new StateRequestReceived(OriginNode, new StateRequest(4, migrating, newEndpoint, new SeqNumber(0), new byte[8])), _controlConnection.Ref);

        // The client's ACK may be overtaken by a request over the control connection: the request waits.
        await _controlConnection.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
        var reset = syn with { Flags = TcpFlags.Rst, SequenceNumber = new SeqNumber(5001) };
        var resetBytes = new byte[reset.HeaderLength];
        reset.Emit(resetBytes, default, peerAddress, OriginAddress);
        Assert.True(peer.Send(OriginAddress, resetBytes));

        // The handshake never completes: the endpoint is gone, and so is the connection.
        Assert.Equal(StateRejectReason.CbNotFound, (await _controlConnection.ExpectMsgAsync<StateReject>(Patience)).Reason);
    }

    [Fact]
    public async Task Endpoint_must_reject_a_request_for_a_connection_in_TIME_WAIT_with_InvalidState()
    {
        await EnableMigrationAsync();
        await using var destinationListener = await StartDestinationListenerAsync();
        var timeWait = 2 * Sys.Settings.Config.GetTimeSpan("mtcp.tcp.maximum-segment-lifetime");

        // TIME-WAIT starts when the client's FIN is in, after the client sent it: a reply back within 2 MSL of sending
        // it was decided in TIME-WAIT. A slower round (a loaded machine) proves nothing either way and is run again.
        for (var round = 0; round < 5; round++)
        {
            var (client, stream, server, listener) = await ConnectAsync(_origin);
            var request = await SpecialSynRequestAsync(client);

            // The server closes first, so it ends in TIME-WAIT (2 MSL = 400 ms here) once the client's FIN is in.
            await server.DisposeAsync();
            Assert.Equal(0, await stream.ReadAsync(new byte[1]));
            var finSent = Stopwatch.StartNew();
            await stream.DisposeAsync();
            await Task.Delay(100);

            _origin.ConnectionRegistry.Tell(new StateRequestReceived(OriginNode, WithId(request, 6)), _controlConnection.Ref);

            var reject = await _controlConnection.ExpectMsgAsync<StateReject>(Patience);
            var decidedInTimeWait = finSent.Elapsed < timeWait;
            client.Dispose();
            await listener.DisposeAsync();
            if (decidedInTimeWait)
            {
                Assert.Equal(StateRejectReason.InvalidState, reject.Reason);
                return;
            }
        }

        Assert.Fail("no round answered within 2 MSL of the client's FIN: the machine is too loaded to tell");
    }

    [Fact]
    public async Task Leaving_the_connection_must_end_the_pending_read_at_end_of_stream_when_the_application_asked_for_it_and_still_fail_writes_with_EMIGRATED()
    {
        await EnableMigrationAsync();
        var (client, stream, server, listener) = await ConnectAsync(_origin);
        server.EndOfStreamOnMigration = true;
        var serverRead = server.Stream.ReadAsync(new byte[16]).AsTask();
        var clientPort = (ushort)server.RemoteEndPoint.Port;
        var migratingCid = new ConnectionId(ClientAddress, clientPort, OriginAddress, ServicePort);

        // The buddy took over the incarnation served here (no migration yet: epoch 0): the origin leaves as at a state ack.
        _origin.ConnectionRegistry.Tell(new TakenOverReceived(OriginNode, new ConnectionTakenOver(5, migratingCid, 0)), _controlConnection.Ref);

        Assert.Equal(0, await serverRead.WaitAsync(Patience));
        Assert.True(server.IsMigratedAway, "a read that ended at the migration must find IsMigratedAway already set");
        await Assert.ThrowsAsync<ConnectionMigratedException>(async () => await server.Stream.WriteAsync(new byte[16]));
        Assert.Throws<ConnectionMigratedException>(() => server.ExportState("late"u8));

        // The endpoint stops once it has silenced the 4-tuple: later reads still end, they do not fail as on a lost connection.
        await Task.Delay(300);
        Assert.Equal(0, await server.Stream.ReadAsync(new byte[16]).AsTask().WaitAsync(Patience));
        stream.Abort();
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task A_client_FIN_must_end_reads_without_IsMigratedAway_when_the_application_asked_for_end_of_stream_on_migration()
    {
        await EnableMigrationAsync();
        var (client, stream, server, listener) = await ConnectAsync(_origin);
        server.EndOfStreamOnMigration = true;
        var serverRead = server.Stream.ReadAsync(new byte[16]).AsTask();

        stream.Shutdown(System.Net.Sockets.SocketShutdown.Send);

        Assert.Equal(0, await serverRead.WaitAsync(Patience));
        Assert.False(server.IsMigratedAway, "a client's FIN is not a migration");
        await server.Stream.WriteAsync("after the FIN"u8.ToArray());
        var echoed = new byte[13];
        await stream.ReadExactlyAsync(echoed).AsTask().WaitAsync(Patience);
        Assert.Equal("after the FIN"u8.ToArray(), echoed);
        await server.DisposeAsync();
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task Takeover_notice_must_close_the_origin_endpoint_silently_and_fail_its_application_with_EMIGRATED()
    {
        await EnableMigrationAsync();
        var (client, stream, server, listener) = await ConnectAsync(_origin);
        var resetsBefore = (await _origin.GetStatisticsAsync()).ResetsSent;
        var clientRead = stream.ReadAsync(new byte[16]).AsTask();
        var clientPort = (ushort)server.RemoteEndPoint.Port;
        var cid = new ConnectionId(ClientAddress, clientPort, OriginAddress, ServicePort);

        // A state ack for no reply sent from here (stale, or meant for an incarnation that left) closes nothing; a
        // buddy's notice for another incarnation neither.
        _origin.ConnectionRegistry.Tell(new StateAckReceived(OriginNode, new StateAck(5, cid)), _controlConnection.Ref);
        _origin.ConnectionRegistry.Tell(new TakenOverReceived(OriginNode, new ConnectionTakenOver(5, cid, 1)), _controlConnection.Ref);
        await Task.Delay(300);
        Assert.False(server.IsMigratedAway);

        // The buddy took over the incarnation served here (no migration yet: epoch 0).
        _origin.ConnectionRegistry.Tell(new TakenOverReceived(OriginNode, new ConnectionTakenOver(5, cid, 0)), _controlConnection.Ref);

        await server.MigratedAway.WaitAsync(Patience);
        await Assert.ThrowsAsync<ConnectionMigratedException>(async () => await server.Stream.ReadExactlyAsync(new byte[16]));
        await Assert.ThrowsAsync<ConnectionMigratedException>(async () => await server.Stream.WriteAsync(new byte[16]));
        Assert.Throws<ConnectionMigratedException>(() => server.ExportState("late"u8));

        // The client hears nothing: no FIN, no RST, even when it sends.
        await stream.WriteAsync(new byte[100]);
        await Task.Delay(300);
        Assert.False(clientRead.IsCompleted, "the client saw its connection end: the origin was not silent");
        Assert.Equal(resetsBefore, (await _origin.GetStatisticsAsync()).ResetsSent);
        stream.Abort();
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task State_request_timeout_must_fail_the_migration_and_leave_the_client_on_its_server()
    {
        await EnableMigrationAsync();
        await using var destinationListener = new MtcpListener(_destination, ServicePort);
        await destinationListener.StartAsync();
        var (client, stream, server, listener) = await ConnectAsync(_origin);

        var migrating = client.MigrateAsync(Destination);
        var asked = await _destinationControl.ExpectMsgAsync<RequestState>(Patience);
        Assert.Equal(OriginNode, asked.Peer);
        Assert.Equal((ushort)server.RemoteEndPoint.Port, asked.Request.MigratingCid.ClientPort);
        asked.ReplyTo.Tell(new StateRequestTimedOut(asked.Peer, asked.Request.RequestId, asked.Request.NewEndpointCid, TimeSpan.FromSeconds(1)));

        var report = await migrating.WaitAsync(Patience);
        Assert.Equal(MigrationOutcome.Failed, report.Outcome);
        Assert.Equal(Origin, report.From);
        Assert.False(server.IsMigratedAway);

        // The connection still works, both ways, on the origin.
        await stream.WriteAsync("ping"u8.ToArray());
        var received = new byte[4];
        await server.Stream.ReadExactlyAsync(received).AsTask().WaitAsync(Patience);
        Assert.Equal("ping"u8.ToArray(), received);
        await server.Stream.WriteAsync("pong"u8.ToArray());
        await stream.ReadExactlyAsync(received).AsTask().WaitAsync(Patience);
        Assert.Equal("pong"u8.ToArray(), received);
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task Fresh_connection_must_announce_the_directorys_alternate_servers_right_after_the_handshake()
    {
        await EnableMigrationAsync();
        var (client, _, _, listener) = await ConnectAsync(_destination);

        // Beside the migration secret and SACK-permitted an IPv4 alternate no longer fits on the SYN+ACK: it follows on
        // the server's ACK of the handshake, with no byte of data needed.
        var deadline = DateTime.UtcNow + Patience;
        while ((await client.GetAlternateServersAsync()).Count == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the alternates never reached the client");
            await Task.Delay(TimeSpan.FromMilliseconds(10));
        }

        // The client learned the origin from TCP_MIGRATE, so a migration without a named destination goes there (and
        // fails: the origin has no directory here, so no control mapping to ask the destination's node).
        var report = await client.MigrateAsync().WaitAsync(Patience);
        Assert.Equal(Origin, report.To);
        Assert.Equal(Destination, report.From);
        Assert.Equal(MigrationOutcome.Failed, report.Outcome);
        client.Dispose();
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task Trigger_from_the_server_must_start_an_authenticated_migration_to_the_named_destination()
    {
        await EnableMigrationAsync();
        await using var destinationListener = new MtcpListener(_destination, ServicePort);
        await destinationListener.StartAsync();
        var (client, stream, server, listener) = await ConnectAsync(_origin);
        var ended = new TaskCompletionSource<MigrationReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.MigrationEnded += (_, report) => ended.TrySetResult(report);

        server.TriggerMigration(Destination);

        var asked = await _destinationControl.ExpectMsgAsync<RequestState>(Patience);
        Assert.Equal(OriginAddress, asked.Request.MigratingCid.ServerAddress);
        asked.ReplyTo.Tell(new StateReject(asked.Request.RequestId, asked.Request.NewEndpointCid, StateRejectReason.InvalidState, "test"));
        var report = await ended.Task.WaitAsync(Patience);
        Assert.True(report.Triggered);
        Assert.Equal(Destination, report.To);
        Assert.Equal(MigrationOutcome.Failed, report.Outcome);
        client.Dispose();
        await listener.DisposeAsync();
        _ = stream;
    }

    [Fact]
    public async Task Trigger_from_a_third_party_holding_the_grant_must_start_a_migration_and_a_forged_one_nothing()
    {
        // The connection is at the destination's node, which announced the origin as its alternate; the origin's node is
        // the third party, so its trigger comes from an address the connection never used.
        await EnableMigrationAsync();
        var (client, stream, server, listener) = await ConnectAsync(_destination);
        var ended = new TaskCompletionSource<MigrationReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.MigrationEnded += (_, report) => ended.TrySetResult(report);
        var grant = await server.IssueTriggerGrantAsync().WaitAsync(Patience);
        Assert.NotNull(grant);
        Assert.Equal(DestinationAddress, grant.Cid.ServerAddress);

        _origin.SendMigrationTrigger(grant with { Key = TriggerKey.FromBytes(Enumerable.Repeat((byte)0x5A, TriggerKey.Length).ToArray()) }, ServicePort);
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        Assert.False(ended.Task.IsCompleted, "a trigger under another key started a migration");

        _origin.SendMigrationTrigger(grant, ServicePort);

        // The client chose its alternate, the origin; the origin's node has no control mapping here, so it refuses.
        var report = await ended.Task.WaitAsync(Patience);
        Assert.True(report.Triggered);
        Assert.Equal(Origin, report.To);
        Assert.Equal(Destination, report.From);
        Assert.Equal(MigrationOutcome.Failed, report.Outcome);
        client.Dispose();
        await listener.DisposeAsync();
        _ = stream;
    }

    [Fact]
    public async Task Alternates_displaced_by_the_secret_must_stay_owed_until_data_that_carried_them_is_acknowledged()
    {
        // More alternates than fit beside the migration secret on the SYN+ACK: the rest are owed on later segments.
        var alternates = Enumerable.Range(1, 6).Select(i => new ServerEndpoint(IpAddress.Parse($"10.2.1.{i}"), ServicePort)).ToList();
        await EnableMigrationAsync(alternates);
        await using var listener = await StartDestinationListenerAsync();
        var accepting = listener.AcceptAsync();
        var peerAddress = IpAddress.Parse("10.2.0.52");
        var peer = _fabric.Attach(peerAddress);
        var buffer = new byte[peer.ReceiveBufferLength];
        var clientIsn = new SeqNumber(9000);
        SendFromPeer(new TcpSegmentRepr { SourcePort = 41002, DestinationPort = ServicePort, SequenceNumber = clientIsn, Flags = TcpFlags.Syn, Window = 1024 });
        var synAck = ReceiveAtPeer();
        Assert.NotNull(synAck.Header.Options.MigrationSecret);
        Assert.True((synAck.Header.Options.AlternateServers?.Servers.Count ?? 0) < alternates.Count);

        // The handshake's ACK closes the window: the data the application writes waits, and the server probes with
        // SND.UNA - 1, a segment without data that the network loses here. The client's window update acknowledges
        // nothing beyond the SYN+ACK, so it proves nothing about the alternates.
        var serverIsn = synAck.Header.SequenceNumber;
        var ack = new TcpSegmentRepr { SourcePort = 41002, DestinationPort = ServicePort, SequenceNumber = clientIsn + 1, AcknowledgmentNumber = serverIsn + 1, Flags = TcpFlags.Ack, Window = 0 };
        SendFromPeer(ack);
        var server = await accepting.AsTask().WaitAsync(Patience);
        await server.Stream.WriteAsync("owed"u8.ToArray());
        var probe = ReceiveAtPeer();
        Assert.Empty(probe.Payload);
        Assert.NotNull(probe.Header.Options.AlternateServers);
        SendFromPeer(ack with { Window = 1024 });

        var data = ReceiveAtPeer();
        for (var withoutData = 0; data.Payload.Length == 0 && withoutData < 10; withoutData++)
        {
            data = ReceiveAtPeer();
        }

        Assert.Equal("owed"u8.ToArray(), data.Payload);
        Assert.NotNull(data.Header.Options.AlternateServers);
        server.Dispose();

        void SendFromPeer(TcpSegmentRepr segment)
        {
            var bytes = new byte[segment.HeaderLength];
            segment.Emit(bytes, default, peerAddress, DestinationAddress);
            Assert.True(peer.Send(DestinationAddress, bytes));
        }

        (TcpSegmentRepr Header, byte[] Payload) ReceiveAtPeer()
        {
            Assert.Equal(ReceiveOutcome.Received, peer.Receive(buffer, Patience, out var received));
            Assert.True(TcpSegmentRepr.TryParse(received.SliceOf(buffer), DestinationAddress, peerAddress, ChecksumPolicy.Verify, out var header, out var payloadOffset, out var error), error.ToString());
            return (header, received.SliceOf(buffer)[payloadOffset..].ToArray());
        }
    }
}

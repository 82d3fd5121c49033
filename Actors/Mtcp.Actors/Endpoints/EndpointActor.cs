using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// One connection endpoint: owns one <see cref="TcpConnection"/> and is its only driver, in the sans-IO order the
/// engine asks for. Every input (a segment, an application command, the timer) is fed in with the time; then the
/// actor drains the engine's segments into the transport, its events into the application's stream, and arms its
/// one keyed timer at the engine's next deadline. Behaviours model the endpoint's lifecycle only (connecting,
/// active, closing); the TCP state machine stays in the engine.
/// </summary>
/// <remarks>
/// Segments go straight from this actor to the transport, which is thread-safe: a hop through the packet actor
/// would cost a message and a copy per segment and funnel every connection's output through one mailbox.
/// Migration adds two lifecycle behaviours on the server side: awaiting state (a special SYN, thesis 4.2.3 at S2:
/// the SYN is answered only once the origin's state is reinstated) and migrated away (at S1 after the state ack:
/// silent for 2 MSL). The migration rules themselves are <see cref="ServerMigration"/>'s, shared with the sans-IO host.
/// </remarks>
internal sealed class EndpointActor : ReceiveActor, IWithTimers
{
    private const string SilenceTimerKey = "migrated-away-silence";

    private readonly EndpointContext _context;
    private readonly ConnectionKey _key;
    private readonly TcpConnection _connection;
    private readonly SegmentEncoder _encoder;
    private readonly EndpointChannel _channel;
    private readonly TaskCompletionSource<EndpointChannel>? _connectCompletion;
    private readonly CancellationToken _connectCancellation;
    private CancellationTokenRegistration _connectCancellationRegistration;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly StreamEvents _stream;
    private readonly ConnectionId _cid;
    private readonly Func<TcpSegmentRepr, int, TcpSegmentRepr> _decorateSynAck;

    /// <summary>A server endpoint's migration credential, secret and owed alternates; null without migration.</summary>
    private readonly EndpointAuthentication? _authentication;
    private readonly EngineDeadline _deadline = new();

    /// <summary>The special SYN waiting for the origin's state, and when the request went out.</summary>
    private (StateRequest Request, TcpSegmentRepr Syn, Instant Sent)? _awaitingState;

    private MtcpOrigConnectionInfo? _origInfo;

    /// <summary>For a special SYN: the state request the listener sent (or why it refused), see <see cref="StateRequestPlan"/>.</summary>
    private readonly StateRequestPlan? _statePlan;

    /// <summary>State requests that came while the handshake was not done; answered once it is (or the endpoint ends).</summary>
    private readonly List<(ServeStateRequest Serve, IActorRef Requester)> _deferredRequests = [];

    /// <summary>Set when this endpoint ends without a word to the peer (a refused special SYN already answered by RST, or migrated away).</summary>
    private bool _silent;

    public EndpointActor(EndpointContext context, ConnectionKey key, TaskCompletionSource<EndpointChannel>? connectCompletion, CancellationToken connectCancellation, StateRequestPlan? statePlan = null)
    {
        _context = context;
        _key = key;
        _statePlan = statePlan;
        _connectCompletion = connectCompletion;
        _connectCancellation = connectCancellation;
        _encoder = new SegmentEncoder(context.LocalAddress, context.MaxPayload);
        _channel = new EndpointChannel(Self, context.LocalAddress, key);
        _cid = context.ConnectionIdOf(key);

        // A server endpoint that may migrate keeps the bytes read since the last snapshot (thesis 3.3.3).
        var tcp = context.Tcp with { MaxSegmentSize = context.MaxPayload, RetainReadLog = connectCompletion is null && context.Migration is not null };
        var iss = context.NextIss(key);
        _connection = connectCompletion is null
            ? TcpConnection.Listen(tcp, key.LocalPort, iss)
            : TcpConnection.Connect(tcp, key.LocalPort, key.RemotePort, iss, context.Clock.Now);
        _stream = new StreamEvents(_channel, new TcpConnectionBuffers(_connection));
        _authentication = connectCompletion is null && context.Migration is { } migration ? new EndpointAuthentication(migration.Authenticator) : null;
        _decorateSynAck = DecorateSynAck;
        Connecting();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// The passive side of one connection, created by its listener for the first SYN of a 4-tuple; for a special SYN,
    /// with the listener's <paramref name="statePlan"/>.
    /// </summary>
    public static Props Accepting(EndpointContext context, ConnectionKey key, StateRequestPlan? statePlan) =>
        FactoryProps.Create(() => new EndpointActor(context, key, null, CancellationToken.None, statePlan));

    /// <summary>The active side; completes <paramref name="connected"/> once established (or fails it). Sends its SYN on <see cref="OpenActive"/>.</summary>
    public static Props Connecting(EndpointContext context, ConnectionKey key, TaskCompletionSource<EndpointChannel> connected, CancellationToken cancellation) =>
        FactoryProps.Create(() => new EndpointActor(context, key, connected, cancellation));

    protected override void PreStart()
    {
        if (_connectCancellation.CanBeCanceled)
        {
            _connectCancellationRegistration = _connectCancellation.UnsafeRegister(static self => ((IActorRef)self!).Tell(ConnectCancelled.Instance), Self);
        }

        if (_connectCompletion is null)
        {
            _context.Registry?.Tell(new RegisterEndpoint(_cid, Self));
        }

        base.PreStart();
    }

    private void Connecting()
    {
        ReceiveEngineInput();
        Receive<OpenActive>(_ => Drive(_context.Clock.Now));
        Receive<ConnectCancelled>(_ =>
        {
            _connectCompletion?.TrySetCanceled(_connectCancellation);
            var now = _context.Clock.Now;
            _connection.Abort(now);
            Drive(now);
        });
    }

    private void Active()
    {
        ReceiveEngineInput();
        Receive<ReadRequested>(_ => OnRead());
        Receive<WriteRequested>(_ =>
        {
            _stream.ServeWrite();
            Drive(_context.Clock.Now);
        });
        Receive<ExportRequested>(OnExport);
        Receive<CloseRequested>(_ =>
        {
            var now = _context.Clock.Now;
            _connection.Close(now);
            Become(Closing);
            Drive(now);
        });
    }

    /// <summary>The application closed its side; the engine still delivers what the peer sends until its FIN.</summary>
    private void Closing()
    {
        ReceiveEngineInput();
        Receive<ReadRequested>(_ => OnRead());
        Receive<ExportRequested>(OnExport);
    }

    /// <summary>
    /// A special SYN is in (thesis 4.2.3 at S2): the endpoint is in SYN-RECEIVED but does not answer until the
    /// origin's state is reinstated. The client's retransmitted SYNs are dropped meanwhile; the reply answers them.
    /// </summary>
    private void AwaitingState()
    {
        Receive<InboundSegment>(segment => segment.Release());
        Receive<EngineTick>(_ => { });
        Receive<StateReply>(OnStateReply);
        Receive<StateReject>(reject => Refuse($"the origin rejected the state request: {reject.Reason} {reject.Diagnostic}"));
        Receive<StateRequestTimedOut>(timedOut => Refuse($"no state reply from {timedOut.Peer} within {timedOut.Timeout}"));
        Receive<StateRequestFailed>(failed => Refuse($"the state request to {failed.Peer} failed: {failed.Reason}"));
        Receive<AbortRequested>(_ => Refuse("aborted"));
        Receive<ServeStateRequest>(OnServeStateRequest);
    }

    /// <summary>
    /// The connection left for another server (thesis 4.2.3, S1 after the state ack): nothing is sent, segments from
    /// the client are dropped unanswered for 2 MSL so that it never sees a RST from the server it left. A fresh SYN
    /// from the same 4-tuple (the client coming back) ends the silence and goes to the listener.
    /// </summary>
    private void MigratedAway()
    {
        Receive<InboundSegment>(segment =>
        {
            if ((segment.Header.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) == TcpFlags.Syn)
            {
                _context.Table.RemoveEndpoint(_key, Self);
                if (_context.Table.TryGetListener(_key.LocalPort, out var listener))
                {
                    listener.Tell(segment);
                }
                else
                {
                    segment.Release();
                }

                Context.Stop(Self);
                return;
            }

            segment.Release();
        });
        Receive<SilenceOver>(_ => Context.Stop(Self));
        Receive<ServeStateRequest>(OnServeStateRequest);
        ReceiveAny(_ => { });
    }

    private void ReceiveEngineInput()
    {
        Receive<InboundSegment>(OnSegment);
        Receive<EngineTick>(_ => OnTick());
        Receive<AbortRequested>(_ =>
        {
            var now = _context.Clock.Now;
            _connection.Abort(now);
            Drive(now);
        });
        Receive<ServeStateRequest>(OnServeStateRequest);
        Receive<MigrateAway>(OnMigrateAway);
        Receive<TriggerRequested>(OnTrigger);
        Receive<TriggerKeyRequested>(_ => Sender.Tell(new TriggerKeyAnswer(
            !_connection.IsMigratedAway && _authentication is { } authentication && authentication.TryDeriveTriggerKey(_cid, out var key)
                ? new MigrationTriggerGrant(_cid, key)
                : null)));
    }

    private void OnSegment(InboundSegment segment)
    {
        var now = _context.Clock.Now;
        var header = segment.Header;
        var wasSynReceived = _connection.State == TcpState.SynReceived;
        try
        {
            _connection.HandleSegment(now, header, segment.Payload);
        }
        finally
        {
            segment.Release();
        }

        _authentication?.OnInbound(header);
        if (_connectCompletion is null && _connection.State == TcpState.SynReceived && !wasSynReceived && header.Options.MigratedConnection is not null)
        {
            AwaitState(now, header);
            return;
        }

        if (!wasSynReceived && _connection.State == TcpState.SynReceived)
        {
            // The connection's first SYN: this server is its origin and issues its migration secret.
            _authentication?.Issue(_cid, _connection.InitialReceiveSequence, _connection.InitialSendSequence);
        }

        if (_connectCompletion is null)
        {
            // The client's ACK of a migrated endpoint's SYN+ACK carries β (thesis 4.2.3, last step).
            ServerMigration.CompleteHandshake(_connection, wasSynReceived, header);
        }

        Drive(now);
    }

    /// <summary>Thesis 4.2.3 at S2: the listener has asked the origin's node for the connection's state; wait for the answer.</summary>
    private void AwaitState(Instant now, in TcpSegmentRepr syn)
    {
        _awaitingState = (default!, syn, now);
        Become(AwaitingState);
        if (_statePlan is not { Request: { } request } plan)
        {
            Refuse(_statePlan?.Refusal ?? "the listener sent no state request for this special SYN");
            return;
        }

        _awaitingState = (request, syn, plan.Decided);
    }

    /// <summary>Thesis 4.2.3 at S2, steps 2-5: reinstate, ack the state (to the control connection that sent it), then answer the SYN.</summary>
    private void OnStateReply(StateReply reply)
    {
        if (_awaitingState is not { } awaiting || reply.RequestId != awaiting.Request.RequestId || reply.NewEndpointCid != _cid)
        {
            return;
        }

        var now = _context.Clock.Now;
        var reinstating = Stopwatch.GetTimestamp();
        if (_authentication is null || !_authentication.TryAdopt(reply))
        {
            Refuse("the state reply carries no migration credential this server can use");
            return;
        }

        try
        {
            _origInfo = ServerMigration.Reinstate(_connection, reply);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // No state ack: the origin keeps the connection.
            Refuse($"the state reply could not be reinstated: {e.Message}");
            return;
        }

        MigrationMetrics.Reinstate.Record(Stopwatch.GetElapsedTime(reinstating).TotalMilliseconds);
        Sender.Tell(new StateAck(reply.RequestId, awaiting.Request.MigratingCid));
        MigrationMetrics.StateWait.Record((now - awaiting.Sent).TotalMilliseconds);
        MigrationMetrics.StateBytes.Record(reply.GetEncodedLength());
        _awaitingState = null;
        Become(Connecting);
        Drive(now);
    }

    /// <summary>The special SYN is refused with a RST: the client stays on its old server (thesis 4.2.3).</summary>
    private void Refuse(string reason)
    {
        if (_awaitingState is not { } awaiting)
        {
            return;
        }

        _awaitingState = null;
        _log.Warning("endpoint {0}: migrated connection refused: {1}", _key, reason);
        MigrationMetrics.Refused.Add(1);
        if (TcpConnection.TryMakeReset(awaiting.Syn, 0, out var reset) && !_context.Transport.Send(_key.RemoteAddress, _encoder.Encode(reset, _key.RemoteAddress)))
        {
            _context.Counters.SendDropped();
        }

        _silent = true;
        Context.Stop(Self);
    }

    /// <summary>Thesis 4.2.3 at S1: this endpoint owns the engine, so it packages (or rejects) the state itself.</summary>
    private void OnServeStateRequest(ServeStateRequest serve) => Serve(serve, Sender);

    /// <remarks>
    /// A request for an endpoint still in SYN-RECEIVED waits for the handshake: the client names this endpoint's Cid
    /// only once it has our SYN+ACK, so its ACK is on the way, and a migration started right after the previous one
    /// can overtake it over the control connection. Answering INVALID_STATE then would fail a sound migration.
    /// </remarks>
    private void Serve(ServeStateRequest serve, IActorRef requester)
    {
        if (_connectCompletion is null && _connection.State == TcpState.SynReceived)
        {
            _deferredRequests.Add((serve, requester));
            return;
        }

        var request = serve.Request;
        var preparing = Stopwatch.GetTimestamp();
        var answer = _authentication is not null
            ? _authentication.Answer(_connection, new ServerEndpoint(_context.LocalAddress, _key.LocalPort), request)
            : new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.CbNotFound, "migration is not enabled here");
        if (answer is StateReject { Reason: StateRejectReason.AuthFailed } refused)
        {
            _log.Warning("endpoint {0}: state request {1} refused: {2}", _key, request.RequestId, refused.Diagnostic);
        }

        if (answer is StateReply)
        {
            MigrationMetrics.Prepare.Record(Stopwatch.GetElapsedTime(preparing).TotalMilliseconds);
        }

        requester.Tell(answer);
    }

    private void ServeDeferredRequests()
    {
        var deferred = _deferredRequests.ToArray();
        _deferredRequests.Clear();
        foreach (var (serve, requester) in deferred)
        {
            Serve(serve, requester);
        }
    }

    /// <summary>Thesis 4.2.3 at S1, on the state ack: close without FIN or RST; the application sees EMIGRATED.</summary>
    private void OnMigrateAway(MigrateAway migrateAway)
    {
        if (_connection.IsMigratedAway || _connection.State == TcpState.Closed)
        {
            return;
        }

        // The application's calls fail first, so that no read or write reaches the engine after it left.
        var emigrated = new ConnectionMigratedException($"the connection {_cid} migrated to another server (EMIGRATED)");
        _channel.Reader.FailWith(emigrated);
        _channel.Writer.FailWith(emigrated);
        _connection.CompleteMigrationAway();
        while (_connection.PollEvent(out _))
        {
        }

        _channel.MigratedAway.TrySetResult();
        _context.Registry?.Tell(new UnregisterEndpoint(_cid, Self));
        MigrationMetrics.MigratedAway.Add(1);
        _silent = true;
        _deadline.Cancel(Timers);
        var silence = _context.Tcp.MaximumSegmentLifetime + _context.Tcp.MaximumSegmentLifetime;
        Timers.StartSingleTimer(SilenceTimerKey, SilenceOver.Instance, silence);
        Become(MigratedAway);
    }

    /// <summary>MIGRATE_TRIGGER (thesis 3.2.1): asks this connection's client to migrate; the client checks its authenticator.</summary>
    private void OnTrigger(TriggerRequested trigger)
    {
        if (_authentication is null || _connection.IsMigratedAway
            || !_authentication.TryCreateTrigger(_cid, new ServerEndpoint(_context.LocalAddress, _key.LocalPort), trigger.Destination, out var segment))
        {
            return;
        }

        if (!_context.Transport.Send(_key.RemoteAddress, _encoder.Encode(segment, _key.RemoteAddress)))
        {
            _context.Counters.SendDropped();
        }
    }

    private void OnExport(ExportRequested export)
    {
        try
        {
            _connection.ExportState(export.AppState);
        }
        catch (ConnectionMigratedException)
        {
            // Raced with the state ack; the application learns of it from its next call.
        }
        catch (InvalidOperationException e)
        {
            _log.Warning("endpoint {0}: export_state refused: {1}", _key, e.Message);
        }
    }

    /// <summary>
    /// A server's SYN+ACK carries TCP_MIGRATE with the alternates, the migration secret at the origin, and
    /// orig-connection-info when migrated in; the next segments carry the alternates the SYN+ACK had no room for.
    /// </summary>
    private TcpSegmentRepr DecorateSynAck(TcpSegmentRepr header, int payloadLength)
    {
        return _authentication is null ? header : _authentication.Decorate(header, payloadLength, _origInfo, _context.View.Alternates.Servers);
    }

    private void OnTick()
    {
        _deadline.Fired();
        var now = _context.Clock.Now;
        if (_connection.PollTimeout() is { } due && due <= now)
        {
            _connection.HandleTimeout(now);
        }

        Drive(now);
    }

    private void OnRead()
    {
        _stream.ServeRead();

        // Reading may have opened the window enough to announce it (RFC 1122 §4.2.3.3).
        Drive(_context.Clock.Now);
    }

    /// <summary>The engine's outputs in the order it asks: segments, events (which may read, write and so send more), deadline.</summary>
    private void Drive(Instant now)
    {
        do
        {
            Transmit(now);
        }
        while (DrainEvents());

        if (_connection.State == TcpState.Closed)
        {
            Context.Stop(Self);
            return;
        }

        ArmTimer(now);
    }

    private void Transmit(Instant now)
    {
        var remote = _key.RemoteAddress;
        var rewrite = _connectCompletion is null ? _decorateSynAck : null;
        while (_encoder.TryPoll(_connection, now, remote, rewrite, out var segment))
        {
            if (!_context.Transport.Send(remote, segment))
            {
                // IP is best effort: the engine's retransmission recovers the segment.
                _context.Counters.SendDropped();
            }
        }
    }

    private bool DrainEvents()
    {
        var any = false;
        while (_connection.PollEvent(out var e))
        {
            any = true;
            switch (e)
            {
                case TcpEvent.Connected:
                    OnConnected();
                    break;
                case TcpEvent.Closed:
                    OnClosed();
                    break;
                default:
                    if (_stream.Serve(e) is { } failure)
                    {
                        FailAll(failure);
                    }

                    break;
            }
        }

        return any;
    }

    private void OnConnected()
    {
        _connectCancellationRegistration.Unregister();
        Become(Active);
        if (_connectCompletion is null)
        {
            _channel.Imported = _connection.ImportState();
            Context.Parent.Tell(new EndpointEstablished(_channel));
            ServeDeferredRequests();
        }
        else if (!_connectCompletion.TrySetResult(_channel))
        {
            // The caller cancelled while the handshake was in flight: nobody will use this connection.
            _connection.Abort(_context.Clock.Now);
        }
    }

    private void OnClosed()
    {
        _stream.EndIfPeerFinished();
        FailAll("the connection is closed");
    }

    private void FailAll(string reason, Exception? cause = null)
    {
        _connectCompletion?.TrySetException(new IOException($"connecting to {_key.RemoteAddress}:{_key.RemotePort} failed: {reason}", cause));
        _channel.Reader.Fail(reason, cause);
        _channel.Writer.Fail(reason, cause);
    }

    private void ArmTimer(Instant now) => _deadline.Arm(Timers, _connection.PollTimeout(), now);

    protected override void PostStop()
    {
        _connectCancellationRegistration.Unregister();
        _context.Table.RemoveEndpoint(_key, Self);
        if (!_silent && _connection.State is not (TcpState.Closed or TcpState.Listen or TcpState.TimeWait))
        {
            // Stopped from outside (a crash, the runtime shutting down): tell the peer, as an aborting socket would.
            try
            {
                var now = _context.Clock.Now;
                _connection.Abort(now);
                Transmit(now);
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or InvalidOperationException or ArgumentException)
            {
                _log.Debug("endpoint {0}: could not send the RST while stopping: {1}", _key, e.Message);
            }
        }

        FailAll("the connection's endpoint stopped");
        if (_connection.State == TcpState.SynReceived)
        {
            _connection.Abort(_context.Clock.Now);
        }

        ServeDeferredRequests();
        base.PostStop();
    }
}

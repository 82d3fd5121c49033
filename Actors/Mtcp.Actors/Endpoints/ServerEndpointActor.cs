using System.Diagnostics;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Actors.Replication;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// The server end of one connection, created by its listener for the first SYN of a 4-tuple: it drives one
/// <see cref="MtcpServerEndpoint{TPeer}"/>, the same sans-IO endpoint <see cref="MtcpServerHost"/> drives, its peers
/// addressed by their control connections' actors. Every input (a segment, a control message, an application
/// command, the timer) goes in with the time; then the actor drains segments into the transport, stream events into
/// the application's channel, control messages to their control connections and endpoint events into metrics and
/// logs, and arms its one timer. Every migration decision (hold a special SYN, refuse it, reinstate, hold a state
/// request during the handshake, serve it, go silent after migrating away) is the sans-IO endpoint's.
/// </summary>
/// <remarks>
/// Segments go straight from this actor to the transport, which is thread-safe: a hop through the packet actor
/// would cost a message and a copy per segment and funnel every connection's output through one mailbox.
/// </remarks>
internal sealed class ServerEndpointActor : UntypedActor, IWithTimers
{
    private readonly EndpointContext _context;
    private readonly ConnectionKey _key;
    private readonly MtcpServerEndpoint<IActorRef> _endpoint;
    private readonly EndpointDriver _driver;
    /// <summary>Made on the first line logged: most endpoints log none, and an adapter per actor costs its path's string.</summary>
    private ILoggingAdapter? _log;
    private readonly Action _onConnected;
    private readonly Action<string> _onFailed;
    private bool _registered;

    /// <summary>Buddy replication of this connection (<c>mtcp.migration.replication = buddy</c>); null when off.</summary>
    private readonly ConnectionReplicator? _replicator;

    /// <summary>Replica updates sent to the buddy and not yet acknowledged, with when they went (for <c>mtcp.replication.ack.delay</c>).</summary>
    private readonly Queue<(ulong Update, Instant At)> _replicaSentAt = new();

    /// <summary>
    /// When the client's bytes reached this endpoint, by where each input's bytes end, until a read log or an ack covers
    /// them (for <c>mtcp.replication.pipeline_wait.duration</c>); <see cref="_arrivedUpTo"/>: the end seen last.
    /// </summary>
    private readonly Queue<(SeqNumber End, Instant At)> _arrivals = new();
    private SeqNumber? _arrivedUpTo;

    /// <summary>The directory's view the buddy was chosen from; another view means choosing again.</summary>
    private AlternateServersChanged? _replicationView;
    private Address? _buddy;
    private bool _buddyUnreachable;
    private bool _countedUnreplicated;

    /// <summary>Client-stored state of this connection (<c>mtcp.migration.replication = client</c>); null when off.</summary>
    private readonly ClientStateSealer? _sealer;
    private bool _clientStateTooLargeLogged;

    /// <summary>
    /// The client's special SYN coming back on this 4-tuple before the state ack reached this origin: the endpoint
    /// does not answer it, and it goes to the listener as soon as this endpoint has migrated away.
    /// </summary>
    private InboundSegment? _returningSyn;

    public ServerEndpointActor(EndpointContext context, ConnectionKey key, StateRequestPlan? plan, SeqNumber? iss)
    {
        _context = context;
        _key = key;
        _endpoint = new MtcpServerEndpoint<IActorRef>(context.TcpTo(key.RemoteAddress), context.ConnectionIdOf(key), iss ?? context.NextIss(key), context.Migration?.Authenticator, () => _context.View.Alternates.Servers, plan);
        if (context.Migration is { Replication: { } replication, Authenticator: not null })
        {
            _replicator = new ConnectionReplicator(_endpoint.Cid, replication.MaxPiece, replication.ReadLogsInFlight, replication.StateSchedule, replication.AckTimeout);
        }

        if (context.Migration is { ClientState: { } clientState, Authenticator: not null })
        {
            _sealer = new ClientStateSealer(_endpoint.Cid, clientState.MaxLength, RandomNumberGenerator.Fill);
        }

        var channel = new EndpointChannel(Self, context.LocalAddress, key, _endpoint.Cid);
        _driver = new EndpointDriver(context, _endpoint, channel, new TcpConnectionBuffers(_endpoint.Connection));

        // A server's connection is accepted on the endpoint's own event, once β is applied, not on the engine's Connected.
        _onConnected = () => { };
        _onFailed = reason => _driver.FailStream(reason);
    }

    /// <summary>
    /// One switch over the message types, built once with the type rather than a handler table per actor: an actor is
    /// created per connection and per migration, and <see cref="ReceiveActor"/>'s tables were a tenth of a node's
    /// allocation per migration. A message the current phase does not take is unhandled, as before.
    /// </summary>
    protected override void OnReceive(object message)
    {
        // Every input goes into the endpoint with the time it arrived.
        var now = _context.Clock.Now;
        switch (message)
        {
            case InboundSegment segment:
                OnSegment(segment);
                break;
            case InboundBurst burst:
                OnBurst(burst);
                break;
            case SynCookieReturned returned:
                _endpoint.AcceptCookie(now, returned.Syn);
                Drive(now);
                break;
            case EngineTick:
                _driver.OnTick(now);
                ResendIfAckOverdue(now);
                Drive(now);
                break;
            case PacketTooBigReceived report when _endpoint.Phase != ServerEndpointPhase.MigratedAway:
                OnPacketTooBig(report);
                break;
            case AbortRequested:
                _endpoint.Abort(now);
                Drive(now);
                break;

            // The application's calls; after migrating away its channel fails them (EMIGRATED) before they get here.
            case ReadRequested when _endpoint.Phase != ServerEndpointPhase.MigratedAway:
                _driver.Stream.ServeRead();

                // Reading may have opened the window enough to announce it (RFC 1122 §4.2.3.3).
                Drive(now);
                break;
            case WriteRequested when _endpoint.Phase != ServerEndpointPhase.MigratedAway:
                _driver.Stream.ServeWrite();
                Drive(now);
                break;
            case CloseRequested when _endpoint.Phase != ServerEndpointPhase.MigratedAway:
                _endpoint.Connection.Close(now);
                Drive(now);
                break;

            // One the application sent while the connection migrated away, before its channel knew: the connection lives
            // on at its new server, so there is nothing to do here (and nothing for the dead-letter log).
            case ReadRequested or WriteRequested or CloseRequested:
                break;
            case ExportRequested export:
                OnExport(export);
                break;

            // Origin side (thesis 4.2.3 at S1): the registry forwards a peer's request with its control connection as sender.
            case ServeStateRequest serve:
                OnServeStateRequest(serve.Request, Sender);
                break;
            case MigrateAway migrateAway:
                _endpoint.HandleStateAck(now, migrateAway.Ack);
                Drive(now);
                break;
            case TakenOverReceived takenOver:
                _endpoint.HandleTakenOver(now, takenOver.Notice);
                Drive(now);
                break;

            // Destination side (thesis 4.2.3 at S2): the answer to the state request the listener sent.
            case StateReply reply:
                OnStateReply(reply);
                break;
            case StateReject reject:
                _endpoint.HandleStateReject(now, reject);
                Drive(now);
                break;
            case StateRequestTimedOut timedOut:
                _endpoint.HandleStateRequestFailed(now, $"no state reply from {timedOut.Peer} within {timedOut.Timeout}");
                Drive(now);
                break;
            case StateRequestFailed failed:
                _endpoint.HandleStateRequestFailed(now, $"the state request to {failed.Peer} failed: {failed.Reason}");
                Drive(now);
                break;
            case ReplicaAckReceived received:
                OnReplicaAck(now, received);
                break;
            case ReplicationPathLost lost:
                OnReplicationPathLost(now, lost);
                break;
            case EndpointRetired:
                Context.Stop(Self);
                break;
            case TriggerRequested trigger:
                OnTrigger(trigger);
                break;
            case TriggerKeyRequested:
                Sender.Tell(new TriggerKeyAnswer(
                    _endpoint.TryDeriveTriggerKey(out var triggerKey) ? new MigrationTriggerGrant(_endpoint.Cid, triggerKey) : null));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private ILoggingAdapter Log => _log ??= Context.GetLogger();

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// The passive side of one connection; for a special SYN, with the state request its listener sent; for an ACK
    /// that returned a SYN cookie, with the cookie as its ISS (<paramref name="iss"/>; null: a fresh one, RFC 6528).
    /// </summary>
    public static Props Props(EndpointContext context, ConnectionKey key, StateRequestPlan? plan, SeqNumber? iss = null) =>
        FactoryProps.Create(() => new ServerEndpointActor(context, key, plan, iss));

    protected override void PreStart()
    {
        if (_context.Registry is { } registry)
        {
            registry.Tell(new RegisterEndpoint(_endpoint.Cid, Self));
            _registered = true;
        }

        base.PreStart();
    }

    private void OnSegment(InboundSegment segment)
    {
        var now = _context.Clock.Now;
        if (Handle(now, segment))
        {
            Drive(now);
        }
    }

    /// <summary>
    /// Segments the receive thread read together: the endpoint takes them as one burst (one ACK for their in-order data,
    /// <see cref="TcpConnection.BeginBurst"/>), then sends what became sendable once.
    /// </summary>
    private void OnBurst(InboundBurst burst)
    {
        var now = _context.Clock.Now;
        var handled = false;
        _endpoint.BeginBurst();
        try
        {
            foreach (var segment in burst.Segments)
            {
                handled |= Handle(now, segment);
            }
        }
        finally
        {
            _endpoint.EndBurst();
        }

        if (handled)
        {
            Drive(now);
        }
    }

    /// <summary>One segment for this 4-tuple; true when the endpoint took it (and its outputs are to be driven).</summary>
    private bool Handle(Instant now, InboundSegment segment)
    {
        if (_endpoint.IsNewConnection(segment.Header))
        {
            // The client came back on the 4-tuple this endpoint left (or ended): a new connection, for the listener.
            _driver.Retire(Self, [_key], Timers);
            if (_context.Table.TryGetListener(_key.LocalPort, out var listener))
            {
                listener.Tell(segment);
            }
            else
            {
                segment.Release();
            }

            return false;
        }

        if (_endpoint.Phase == ServerEndpointPhase.Established && IsReturningSpecialSyn(segment.Header))
        {
            _returningSyn?.Release();
            _returningSyn = segment;
            return false;
        }

        try
        {
            _endpoint.HandleSegment(now, segment.Header, segment.Payload);
        }
        finally
        {
            segment.Release();
        }

        return true;
    }

    private void OnReplicaAck(Instant now, ReplicaAckReceived received)
    {
        if (_replicator is not null && received.Buddy.Equals(_buddy))
        {
            MeasureReplicaAck(now, received.Ack);
            _replicator.HandleAck(received.Ack, _endpoint.Connection);
            Drive(now);
        }
    }

    /// <summary>Updates to the buddy or its acks may have been lost with a replication channel: the buddy gets the whole state again.</summary>
    private void OnReplicationPathLost(Instant now, ReplicationPathLost lost)
    {
        if (_replicator is not null && lost.Buddy.Equals(_buddy))
        {
            _replicator.Restart();
            _replicaSentAt.Clear();
            Drive(now);
        }
    }

    private void OnPacketTooBig(PacketTooBigReceived report)
    {
        var verdict = _driver.ApplyPacketTooBig(_endpoint.Connection, report);
        if (verdict is PacketTooBigVerdict.Lowered or PacketTooBigVerdict.ProbeTooBig)
        {
            Log.Info("endpoint {0}: ICMP packet too big, path MTU {1} ({2}): MSS now {3}", _key, report.Mtu, verdict, _endpoint.Connection.SendMss);
            Drive(_context.Clock.Now);
        }
    }

    private void OnServeStateRequest(StateRequest request, IActorRef requester)
    {
        var now = _context.Clock.Now;
        var preparing = Stopwatch.GetTimestamp();
        _endpoint.HandleStateRequest(now, requester, request);
        if (_endpoint.PollControl(out var peer, out var answer))
        {
            // Answered at once (not held for the handshake): the time to package the state is this call's.
            if (answer is StateReply)
            {
                MigrationMetrics.PrepareDuration.Record(Stopwatch.GetElapsedTime(preparing).TotalSeconds);
            }

            peer.Tell(answer);
        }

        Drive(now);
    }

    private void OnStateReply(StateReply reply)
    {
        var now = _context.Clock.Now;
        var reinstating = Stopwatch.GetTimestamp();
        _endpoint.HandleStateReply(now, Sender, reply);
        if (_endpoint.HoldsConnection)
        {
            MigrationMetrics.ReinstateDuration.Record(Stopwatch.GetElapsedTime(reinstating).TotalSeconds);
        }

        Drive(now);
    }

    /// <summary>MIGRATE_TRIGGER (thesis 3.2.1): asks this connection's client to migrate; the client checks its authenticator.</summary>
    private void OnTrigger(TriggerRequested trigger)
    {
        if (_endpoint.TryCreateTrigger(trigger.Destination, out var segment))
        {
            _driver.Send(_endpoint.Cid.ClientAddress, segment);
        }
    }

    private void OnExport(ExportRequested export)
    {
        try
        {
            _endpoint.Connection.ExportState(export.AppState);
        }
        catch (ConnectionMigratedException)
        {
            // Raced with the state ack; the application learns of it from its next call.
        }
        catch (InvalidOperationException e)
        {
            Log.Warning("endpoint {0}: export_state refused: {1}", _key, e.Message);
        }
        finally
        {
            _driver.Stream.ExportTaken();
        }

        // Serving what waited may have read (a window to announce) or written (segments to send).
        if (_endpoint.Phase != ServerEndpointPhase.MigratedAway)
        {
            Drive(_context.Clock.Now);
        }
    }

    /// <summary>The endpoint's outputs in the order it asks: segments, events (which may read, write and so send more), control, deadline.</summary>
    private void Drive(Instant now)
    {
        // Before any segment goes out: the buddy is sent what the input brought, and the ACK waits for its answer; or
        // the client is sent its state, ahead of the ACK of the bytes it covers.
        Replicate();
        SealForClient();
        do
        {
            _driver.Transmit(now);
        }
        while (_driver.DrainEvents(_onConnected, _onFailed) | DrainEndpointEvents());

        while (_endpoint.PollControl(out var peer, out var message))
        {
            peer.Tell(message);
        }

        if (_endpoint.IsEnded)
        {
            Replicate();
            _driver.Retire(Self, [_key], Timers);
            return;
        }

        if (_endpoint.SilentUntil is { } silentUntil)
        {
            // Thesis 4.2.3 at S1 after the state ack: the old 4-tuple is owed 2 MSL of silence and nothing else. The
            // table keeps the 4-tuple and its deadline; the connection's buffers are already back in the pool, and this
            // actor goes once it has silenced what was routed to it before the table changed.
            if (!_driver.IsRetiring)
            {
                Replicate();
                _context.Table.Silence(_key, silentUntil, _endpoint.Connection.SendMax, now);
                _driver.Retire(Self, [_key], Timers);
                if (_returningSyn is { } returning && _context.Table.TryGetListener(_key.LocalPort, out var listener))
                {
                    _returningSyn = null;
                    listener.Tell(returning);
                }
            }

            return;
        }

        // The engine's timer also wakes the replicator when its oldest update's ack is overdue.
        _driver.ArmTimer(Timers, now, _replicator?.AckDeadline);
    }

    /// <summary>
    /// The buddy has not acknowledged the oldest update within <c>mtcp.migration.buddy-ack-timeout</c>: it or its ack was
    /// lost, and the whole state goes again with the next <see cref="Replicate"/> (docs/failover.md).
    /// </summary>
    private void ResendIfAckOverdue(Instant now)
    {
        if (_replicator is not null && _replicator.HandleAckTimeout(now))
        {
            _replicaSentAt.Clear();
            MigrationMetrics.ReplicaAckTimeouts.Add(1);
            // Counted, and logged only at debug: a buddy that stays unreachable times every connection out again each period.
            if (Context.System.Log.IsDebugEnabled)
            {
                Log.Debug("endpoint {0}: no ack from buddy {1} within {2}; it gets the whole state again", _key, _buddy, _context.Migration?.Replication?.AckTimeout);
            }
        }
    }

    /// <summary>
    /// Buddy replication: what changed since the last input goes to the connection's buddy (chosen again whenever the
    /// directory's view changes), and a connection that ended or left this node releases its replica.
    /// </summary>
    private void Replicate()
    {
        if (_replicator is null || _context.Migration is not { ControlManager: { } control, Replication: { } replication })
        {
            return;
        }

        // LAST-ACK and TIME-WAIT have nothing left to migrate (thesis 4.2.3 step 3): the replica goes with the connection.
        if (_endpoint.Phase is ServerEndpointPhase.MigratedAway or ServerEndpointPhase.Ended
            || _endpoint.Connection.State is TcpState.LastAck or TcpState.TimeWait)
        {
            _replicator.Release();
            Send(control);
            return;
        }

        if (_endpoint.Phase != ServerEndpointPhase.Established)
        {
            return;
        }

        ChooseBuddy(control, replication.Self);
        if (_buddy is null)
        {
            return;
        }

        NoteArrivals(_endpoint.Connection.ReceivedDataEnd);
        _replicator.Update(_context.Clock.Now, _endpoint.Connection, _endpoint.CredentialBytes.Span);
        Send(control);
    }

    /// <summary>
    /// Client-stored state (docs/failover.md): when the connection's state changed, the client gets it sealed, in a
    /// CLIENT_STATE segment of its own. A state over <c>mtcp.migration.client-state.max-size</c> is not sent (logged once
    /// per connection): the client keeps the one it holds.
    /// </summary>
    private void SealForClient()
    {
        if (_sealer is null || _endpoint.Phase != ServerEndpointPhase.Established || _context.Migration?.Authenticator is not { } authenticator)
        {
            return;
        }

        var outcome = _sealer.Update(_endpoint.Connection, _endpoint.CredentialBytes.Span, authenticator, out var blob, out var length);
        if (outcome == ClientStateOutcome.Sealed && !_driver.Send(_endpoint.Cid.ClientAddress, ClientStateSealer.Segment(_endpoint.Cid, _endpoint.Connection), blob))
        {
            outcome = ClientStateOutcome.TooLarge;
        }

        if (outcome is ClientStateOutcome.Sealed or ClientStateOutcome.TooLarge)
        {
            MigrationMetrics.ClientStates.Add(1, new KeyValuePair<string, object?>("outcome", outcome == ClientStateOutcome.Sealed ? "sealed" : "too-large"));
        }

        if (outcome == ClientStateOutcome.TooLarge && !_clientStateTooLargeLogged)
        {
            _clientStateTooLargeLogged = true;
            Log.Warning(
                "endpoint {0}: its client-stored state of {1} bytes exceeds mtcp.migration.client-state.max-size or a segment ({2}); the client keeps the older state it holds until one fits",
                _key,
                length,
                _context.Migration.ClientState!.MaxLength);
        }
    }

    private void Send(IActorRef control)
    {
        while (_replicator!.PollOutgoing(out var update))
        {
            if (_buddy is { } buddy)
            {
                control.Tell(new ReplicateTo(buddy, update));
                var kind = new KeyValuePair<string, object?>("kind", update is ReplicaReadLog ? "read-log" : "state");
                MigrationMetrics.ReplicaUpdates.Add(1, kind);
                switch (update)
                {
                    case ReplicaReadLog readLog:
                        MigrationMetrics.ReplicaUpdateBytes.Add(readLog.Bytes.Length, kind);
                        _replicaSentAt.Enqueue((readLog.RequestId, _context.Clock.Now));
                        MeasurePipelineWait(readLog.From);
                        break;
                    case ReplicaState piece:
                        MigrationMetrics.ReplicaUpdateBytes.Add(piece.Piece.Length, kind);
                        _replicaSentAt.Enqueue((piece.RequestId, _context.Clock.Now));
                        break;
                }
            }
        }
    }

    /// <summary>
    /// The buddy's ack of updates up to its request id: how long each waited (the delay the client's ACK saw) and how
    /// many of the client's bytes were held unacknowledged meanwhile (docs/metrics.md).
    /// </summary>
    private void MeasureReplicaAck(Instant now, ReplicaAck ack)
    {
        if (ack.Status != ReplicaAckStatus.Held)
        {
            return;
        }

        var connection = _endpoint.Connection;
        if (connection.ReplicatedUpTo is { } replicated && connection.ReceivedDataEnd > replicated)
        {
            MigrationMetrics.ReplicaGatedSize.Record(connection.ReceivedDataEnd - replicated);
        }

        while (_replicaSentAt.TryPeek(out var sent) && sent.Update <= ack.RequestId)
        {
            _replicaSentAt.Dequeue();
            MigrationMetrics.ReplicaAckDelay.Record((now - sent.At).TotalSeconds);
        }

        // Bytes a whole state carried to the buddy went in no read log: the ack covers them.
        while (_arrivals.TryPeek(out var arrival) && connection.ReplicatedUpTo is { } covered && arrival.End <= covered)
        {
            _arrivals.Dequeue();
        }
    }

    /// <summary>The client's bytes now end at <paramref name="end"/>: those beyond the last end seen came with this input.</summary>
    private void NoteArrivals(SeqNumber end)
    {
        if (_arrivedUpTo is { } seen && end > seen)
        {
            _arrivals.Enqueue((end, _context.Clock.Now));
        }

        _arrivedUpTo = end;
    }

    /// <summary>A read log of the client's bytes from <paramref name="from"/> leaves for the buddy: how long its first byte waited here.</summary>
    private void MeasurePipelineWait(SeqNumber from)
    {
        while (_arrivals.TryPeek(out var arrival) && arrival.End <= from)
        {
            _arrivals.Dequeue();
        }

        if (_arrivals.TryPeek(out var first))
        {
            MigrationMetrics.ReplicaPipelineWait.Record((_context.Clock.Now - first.At).TotalSeconds);
        }
    }

    private void ChooseBuddy(IActorRef control, Address self)
    {
        var view = _context.View;
        if (ReferenceEquals(view, _replicationView))
        {
            return;
        }

        var first = _replicationView is null;
        _replicationView = view;
        var buddy = BuddyChoice.For(view.ControlMappings, self, _endpoint.Cid.ServerPort);
        if (_buddy is { } current && !current.Equals(buddy) && view.Unreachable?.Contains(current) == true)
        {
            // Fencing: the buddy may be dead, or this node cut off from the cluster while the buddy takes the connection
            // over. Until the buddy is removed or back, the client's bytes stay unacknowledged: none is acknowledged
            // that the buddy does not hold.
            _buddyUnreachable = true;
            return;
        }

        if (!first && Equals(buddy, _buddy))
        {
            if (_buddyUnreachable)
            {
                // Back: what was sent meanwhile was dropped, so it gets the whole state again.
                _buddyUnreachable = false;
                _replicator!.Restart();
                _replicaSentAt.Clear();
            }

            return;
        }

        _buddyUnreachable = false;

        if (_buddy is { } previous)
        {
            control.Tell(new ReplicateTo(previous, new ReplicaRelease(0, _endpoint.Cid)));
        }

        _replicator!.Restart();
        _replicaSentAt.Clear();
        _buddy = buddy;
        var connection = _endpoint.Connection;
        if (buddy is null)
        {
            // No other member serves the port: the connection runs unreplicated, and says so (the node logs it too).
            connection.StopAckGating();
            CountUnreplicated(true);
            if (Context.System.Log.IsDebugEnabled)
            {
                Log.Debug("endpoint {0}: no buddy; unreplicated", _key);
            }

            return;
        }

        CountUnreplicated(false);
        if (connection.ReplicatedUpTo is null)
        {
            connection.AcknowledgeReplicatedUpTo(connection.LastAckSent);
        }

        // Chosen on every connection's arrival: the line and its adapter are made only when debug logging is on.
        if (Context.System.Log.IsDebugEnabled)
        {
            Log.Debug("endpoint {0}: buddy {1}", _key, buddy);
        }
    }

    private void CountUnreplicated(bool unreplicated)
    {
        if (unreplicated != _countedUnreplicated)
        {
            _countedUnreplicated = unreplicated;
            MigrationMetrics.Unreplicated.Add(unreplicated ? 1 : -1);
        }
    }

    private bool DrainEndpointEvents()
    {
        var any = false;
        while (_endpoint.PollEndpointEvent(out var e))
        {
            any = true;
            switch (e)
            {
                case ServerEndpointEvent.Accepted:
                    _driver.Channel.Imported = _endpoint.ImportState();
                    _driver.Channel.FirstCid = _endpoint.FirstCid;
                    Context.Parent.Tell(new EndpointEstablished(_driver.Channel));
                    break;
                case ServerEndpointEvent.Refused refused:
                    _context.Refusals.Refuse(RefusalClass.MigrationRefused, $"endpoint {_key}: migrated connection refused: {refused.Reason} {refused.Detail}");
                    MigrationMetrics.Refused.Add(1);
                    break;
                case ServerEndpointEvent.Reinstated reinstated:
                    _driver.Channel.Arrival = new MigrationArrival(reinstated.Origin, reinstated.StateWait, reinstated.StateReplyBytes);
                    MigrationMetrics.StateRequestDuration.Record(reinstated.StateWait.TotalSeconds);
                    MigrationMetrics.StateSize.Record(reinstated.StateReplyBytes);
                    break;
                case ServerEndpointEvent.StateRequestAnswered { Answer: StateReject { Reason: StateRejectReason.AuthFailed } refused } answered:
                    _context.Refusals.Refuse(RefusalClass.StateRequestRefused, $"endpoint {_key}: state request {refused.RequestId} refused: {refused.Diagnostic}");
                    MigrationMetrics.AuthFailed.Add(1, new KeyValuePair<string, object?>("check", answered.Check.ToString()));
                    break;
                case ServerEndpointEvent.MigratedAway away:
                    OnMigratedAway(away.Destination);
                    break;
            }
        }

        return any;
    }

    /// <summary>Thesis 4.2.3 at S1, on the state ack: the application's calls fail with EMIGRATED; the table keeps the 4-tuple silent for 2 MSL.</summary>
    private void OnMigratedAway(ServerEndpoint? destination)
    {
        // MigratedAway first: an application whose reads end at the migration (EndOfStreamOnMigration) tells it from the
        // client's FIN by IsMigratedAway, which must already hold when its read returns.
        _driver.Channel.MigratedAway.TrySetResult(destination);
        var emigrated = new ConnectionMigratedException($"the connection {_endpoint.Cid} migrated to another server (EMIGRATED)");
        _driver.Channel.Reader.Emigrate(emigrated);
        _driver.Channel.Writer.FailWith(emigrated);
        if (_registered)
        {
            _context.Registry!.Tell(new UnregisterEndpoint(_endpoint.Cid, Self));
            _registered = false;
        }

        MigrationMetrics.MigratedAway.Add(1);
    }

    private static bool IsReturningSpecialSyn(in TcpSegmentRepr header) =>
        (header.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) == TcpFlags.Syn && header.Options.MigratedConnection is not null;

    protected override void PostStop()
    {
        // A replica is released only when the connection ends or leaves: a node that stops without either (a crash,
        // a runtime torn down) leaves its buddy the state to take over from.
        CountUnreplicated(false);
        _returningSyn?.Release();
        _context.Table.RemoveEndpoint(_key, Self);
        try
        {
            // Stopped from outside (a crash, the runtime shutting down): the peer gets a RST, as from an aborting
            // socket, unless the endpoint owes it silence; held state requests get their answers.
            var now = _context.Clock.Now;
            _endpoint.Abort(now);
            _driver.Transmit(now);
            while (_endpoint.PollControl(out var peer, out var message))
            {
                peer.Tell(message);
            }
        }
        catch (Exception e) when (e is ObjectDisposedException or IOException or InvalidOperationException or ArgumentException)
        {
            Log.Debug("endpoint {0}: could not send the RST while stopping: {1}", _key, e.Message);
        }

        _driver.Stopped("the connection's endpoint stopped");
        base.PostStop();
    }
}

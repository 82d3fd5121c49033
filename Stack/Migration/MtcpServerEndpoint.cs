using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// What a server decided for a special SYN (thesis 4.2.3 at S2, step 1) before its endpoint exists: the state request
/// to send to the origin's server, or why the SYN is refused. Deciding first lets a driver put the request on the
/// control connection while the endpoint is still being created.
/// </summary>
/// <param name="Decided">when the request was decided: the state wait is measured from here.</param>
/// <param name="Deadline">when to give up waiting for the answer (null: the driver reports the control connection's timeout).</param>
public sealed record StateRequestPlan(StateRequest? Request, string? Refusal, Instant Decided, Instant? Deadline)
{
    /// <summary>
    /// The plan for a special SYN carrying <paramref name="migrated"/> that creates the endpoint
    /// <paramref name="newEndpointCid"/> at <paramref name="service"/>: a state request with <paramref name="requestId"/>
    /// to the origin, or a refusal when the connection names this very endpoint as its server.
    /// </summary>
    public static StateRequestPlan For(ulong requestId, MtcpMigratedConnection migrated, ConnectionId newEndpointCid, ServerEndpoint service, Instant now, Instant? deadline)
    {
        var request = ServerMigration.BuildStateRequest(requestId, migrated, newEndpointCid);
        return new ServerEndpoint(request.MigratingCid.ServerAddress, request.MigratingCid.ServerPort) == service
            ? Refused(now, "the connection is already here")
            : new StateRequestPlan(request, null, now, deadline);
    }

    /// <summary>The special SYN is to be refused for <paramref name="reason"/> (no migration here, no route to the origin).</summary>
    public static StateRequestPlan Refused(Instant now, string reason) => new(null, reason, now, null);

    /// <summary>The origin's service endpoint, the server the request goes to; null for a refusal.</summary>
    public ServerEndpoint? Origin => Request is { } request ? new ServerEndpoint(request.MigratingCid.ServerAddress, request.MigratingCid.ServerPort) : null;
}

/// <summary>
/// The server end of one MTCP connection, sans-IO (thesis 4.2.3, figs 4.1, 4.8): a <see cref="TcpConnection"/> plus
/// every decision a server takes about it in a migration. As origin it issues the connection's migration secret on
/// its SYN+ACK, answers other servers' state requests (held while its own handshake is not done), and on the state
/// ack goes silent for 2 MSL. As destination it holds a special SYN unanswered until the origin's state is
/// reinstated, acks the state, and refuses the SYN with a RST when the state does not come. Control messages go out
/// through <see cref="PollControl"/> to a <typeparamref name="TPeer"/>, the driver's handle on the other server
/// (an address for <see cref="MtcpServerHost"/>, a control connection for the actor runtime).
/// </summary>
/// <remarks>
/// Lifecycle (<see cref="Phase"/>): Handshaking → Established → MigratedAway → Ended at an origin;
/// AwaitingState → Handshaking → Established at a destination; any phase may end (closed, reset, refused).
/// Without an authenticator the endpoint is a plain TCP server: special SYNs are refused and state requests answered
/// CB_NOT_FOUND.
/// </remarks>
/// <typeparam name="TPeer">how the driver addresses another server's control connection.</typeparam>
public sealed class MtcpServerEndpoint<TPeer> : IPolledEndpoint
{
    /// <summary>State requests held while the handshake is not done; one per migration attempt is expected, a few suffice.</summary>
    public const int MaxHeldStateRequests = 8;

    private IMigrationAuthenticator? _authenticator;
    private readonly Func<IReadOnlyList<ServerEndpoint>> _alternates;
    private readonly StateRequestPlan? _plan;
    private readonly ServerEndpointAuthentication _authentication = new();
    private readonly Queue<ServerEndpointEvent> _events = new();
    private readonly Queue<(TPeer Peer, ControlMessage Message)> _control = new();
    private readonly List<(TPeer Requester, StateRequest Request, Instant Until)> _heldRequests = [];

    /// <summary>The special SYN waiting for the origin's state; null once answered or refused.</summary>
    private TcpSegmentRepr? _heldSyn;

    /// <summary>The RST refusing the special SYN, sent once.</summary>
    private TcpSegmentRepr? _refusal;
    private bool _refused;
    private MtcpOrigConnectionInfo? _origInfo;
    private Instant? _silentUntil;
    private bool _silenceOver;

    /// <summary>
    /// The latest state requests answered with the state (at most <see cref="MaxHeldStateRequests"/>): each id and the
    /// server that asked, where a state ack for it sends the connection.
    /// </summary>
    private readonly List<(ulong RequestId, ServerEndpoint Requester)> _stateRepliesSent = [];

    /// <param name="config">TCP settings; the read log is kept whenever the endpoint may migrate (thesis 3.3.3).</param>
    /// <param name="cid">the connection id: the client's address and port, this server's service address and port.</param>
    /// <param name="authenticator">the cluster keys; null: this server takes part in no migration.</param>
    /// <param name="alternates">TCP_ADDSERVERS, read when a SYN+ACK (or a segment owing them) announces them in TCP_MIGRATE.</param>
    /// <param name="plan">for an endpoint created by a special SYN: its state request, decided by the driver.</param>
    public MtcpServerEndpoint(TcpConfig config, ConnectionId cid, SeqNumber iss, IMigrationAuthenticator? authenticator, Func<IReadOnlyList<ServerEndpoint>> alternates, StateRequestPlan? plan = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(alternates);
        Cid = cid;
        _authenticator = authenticator;
        _alternates = alternates;
        _plan = plan;
        Connection = TcpConnection.Listen(config with { RetainReadLog = authenticator is not null }, cid.ServerPort, iss);
    }

    /// <summary>
    /// The cluster keys. Key rotation replaces them while connections live (with the previous key kept, connections
    /// set up before keep migrating); an endpoint created without them never gets them.
    /// </summary>
    public IMigrationAuthenticator? Authenticator
    {
        get => _authenticator;
        set => _authenticator = _authenticator is null ? null : value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The connection's TCP control block: the application's stream and export_state go here.</summary>
    public TcpConnection Connection { get; }

    /// <summary>
    /// The service endpoint this connection migrated from (the server of the special SYN's MIGRATED_CONN, thesis
    /// 4.2.3); null for a new connection.
    /// </summary>
    public ServerEndpoint? MigratedFrom => _plan?.Request is { } request ? EndpointOf(request.MigratingCid) : null;

    /// <summary>import_state (thesis 3.3.2) as the application sees it: the connection's origin and where it migrated from.</summary>
    public ImportedState ImportState() => Connection.ImportState() with { MigratedFrom = MigratedFrom };

    public long RetransmissionTimeouts => Connection.Stats.RetransmissionTimeouts;

    public PathMtuCounts PathMtu => Connection.Stats.PathMtu;

    public ConnectionId Cid { get; }

    /// <summary>
    /// The connection's first Cid, its name on every node across hops (logs carry it): the Cid its credential was
    /// issued under at the origin; <see cref="Cid"/> itself while no credential is held (no migration, or before the
    /// state is reinstated).
    /// </summary>
    public ConnectionId FirstCid => _authentication.FirstCid ?? Cid;

    public ServerEndpoint Service => EndpointOf(Cid);

    private static ServerEndpoint EndpointOf(ConnectionId cid) => new(cid.ServerAddress, cid.ServerPort);

    /// <summary>True: a refused special SYN gets a RST (thesis 4.2.3); false: silence, the client times out.</summary>
    public bool ResetRefusedMigrations { get; init; } = true;

    public ServerEndpointPhase Phase => this switch
    {
        { _refused: true } or { _silenceOver: true } => ServerEndpointPhase.Ended,
        { _heldSyn: not null } => ServerEndpointPhase.AwaitingState,
        { _silentUntil: not null } => ServerEndpointPhase.MigratedAway,
        _ => Connection.State switch
        {
            TcpState.Listen or TcpState.SynReceived => ServerEndpointPhase.Handshaking,
            TcpState.Closed => ServerEndpointPhase.Ended,
            _ => ServerEndpointPhase.Established,
        },
    };

    /// <summary>The endpoint is over and may be forgotten once its last segments are polled.</summary>
    public bool IsEnded => Phase == ServerEndpointPhase.Ended;

    /// <summary>After migrating away: until when the old 4-tuple is owed silence (2 MSL after the state ack); null otherwise.</summary>
    public Instant? SilentUntil => Phase == ServerEndpointPhase.MigratedAway ? _silentUntil : null;

    /// <summary>True while the connection is served here: it has not migrated away and has not ended.</summary>
    public bool HoldsConnection => Phase is ServerEndpointPhase.Handshaking or ServerEndpointPhase.Established;

    /// <summary>
    /// True when <paramref name="segment"/> is a fresh SYN for the 4-tuple of an endpoint that ended or migrated away:
    /// a new connection (the client coming back), for the listener, while this endpoint is forgotten.
    /// </summary>
    public bool IsNewConnection(in TcpSegmentRepr segment) =>
        Phase is ServerEndpointPhase.MigratedAway or ServerEndpointPhase.Ended && IsFreshSyn(segment);

    public void HandleSegment(Instant now, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        switch (Phase)
        {
            case ServerEndpointPhase.AwaitingState:
                // The client's retransmitted special SYNs: the SYN+ACK that follows the reinstatement answers them all.
                return;
            case ServerEndpointPhase.MigratedAway:
            case ServerEndpointPhase.Ended when _refused:
                // Thesis 4.2.3: the client must never see a RST from a server it left (or that refused it).
                SilencedSegments++;
                return;
            case ServerEndpointPhase.Established when IsFreshSyn(segment) && segment.Options.MigratedConnection is not null:
                // The client coming back on this 4-tuple (it keeps its port) before the state ack reached this origin:
                // the challenge ACK TCP would send draws the client's RST (RFC 9293 §3.10.7.3, SYN-SENT), which would
                // reset this connection. Dropped: the client retransmits it, and by then this endpoint has migrated
                // away and the listener takes it.
                SilencedSegments++;
                return;
        }

        if (segment.Options.ClientState)
        {
            // A sealed client-stored state (on a special SYN, answered by the listener) is no stream data; on any
            // other segment it is out of place.
            payload = [];
        }

        var wasListening = Connection.State == TcpState.Listen;
        var wasSynReceived = Connection.State == TcpState.SynReceived;
        Connection.HandleSegment(now, segment, payload);
        _authentication.OnInbound(segment);
        if (wasListening && Connection.State == TcpState.SynReceived)
        {
            OnFirstSyn(now, segment);
            return;
        }

        // The client's ACK of a migrated endpoint's SYN+ACK carries β (thesis 4.2.3, last step).
        var migrated = Connection.AwaitingMigrationHandshake;
        if (ServerMigration.CompleteHandshake(Connection, wasSynReceived, segment))
        {
            _events.Enqueue(new ServerEndpointEvent.Accepted(migrated));

            // Alternates the SYN+ACK had no room for (beside the secret and SACK-permitted) go out at once on an ACK,
            // not only once the application first writes: a client may migrate before any byte comes back.
            if (_authentication.AlternatesOwed)
            {
                Connection.AcknowledgeNow();
            }
        }

        AnswerHeldRequests();
    }

    /// <summary>
    /// The connection's SYN was answered with a SYN cookie (<see cref="StatelessHandshake"/>) and the client's ACK
    /// returned a valid one: the endpoint, created with the cookie as its ISS, takes the SYN rebuilt from that ACK
    /// (<see cref="SynCookies.SynOf"/>) and stands where a held SYN would have left it, its SYN+ACK sent and the
    /// connection's migration secret issued, the same secret the stateless SYN+ACK carried. The ACK goes to
    /// <see cref="HandleSegment"/> next.
    /// </summary>
    public void AcceptCookie(Instant now, in TcpSegmentRepr syn)
    {
        Connection.AcceptCookieSyn(now, syn);
        if (_authenticator is not null)
        {
            _authentication.Issue(_authenticator, Cid, syn.SequenceNumber, Connection.InitialSendSequence);

            // Whether the SYN+ACK had room for every alternate: what is owed follows on the first segments.
            _authentication.Decorate(SynCookies.SynAck(Connection.Config, syn, Connection.InitialSendSequence), 0, null, _alternates());
        }
    }

    /// <summary>
    /// Thesis 4.2.3 at S1: another server asks for this connection's state. A request for an endpoint whose own
    /// handshake is not done is held until it is: the client names this endpoint's Cid only once it has the SYN+ACK,
    /// so its ACK is on the way, and a migration started right after the previous one can overtake that ACK over
    /// the control connection; answering INVALID_STATE would fail a sound migration. The hold lasts one
    /// retransmission timeout: an ACK that has not come by then was lost, and a migrating client sends no other
    /// until its migration ends, so the request is answered (INVALID_STATE) rather than left to time out.
    /// </summary>
    public void HandleStateRequest(Instant now, TPeer requester, StateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Phase is ServerEndpointPhase.AwaitingState or ServerEndpointPhase.Handshaking && _heldRequests.Count < MaxHeldStateRequests)
        {
            _heldRequests.Add((requester, request, now + Connection.RetransmissionTimeout));
            return;
        }

        Answer(requester, request);
    }

    /// <summary>Thesis 4.2.3 at S2, steps 2-5: adopt the credential, reinstate, ack the state to <paramref name="from"/>; the SYN+ACK follows.</summary>
    public void HandleStateReply(Instant now, TPeer from, StateReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        if (_heldSyn is null || _plan?.Request is not { } request || reply.RequestId != request.RequestId || reply.NewEndpointCid != Cid)
        {
            // Too late (the SYN was refused) or not ours: no state ack, so the origin keeps the connection.
            return;
        }

        if (_authenticator is null || !_authentication.TryAdopt(_authenticator, reply))
        {
            Refuse(now, "the state reply carries no migration credential this server can use");
            return;
        }

        try
        {
            _origInfo = ServerMigration.Reinstate(Connection, reply);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // No state ack: the origin keeps the connection.
            Refuse(now, $"the state reply could not be reinstated: {e.Message}");
            return;
        }

        _heldSyn = null;
        _control.Enqueue((from, new StateAck(reply.RequestId, request.MigratingCid)));
        _events.Enqueue(new ServerEndpointEvent.Reinstated(MigratedFrom!.Value, now - _plan.Decided, reply.GetEncodedLength()));
    }

    /// <summary>Destination side: the origin rejected the state request; the special SYN is refused.</summary>
    public void HandleStateReject(Instant now, StateReject reject)
    {
        ArgumentNullException.ThrowIfNull(reject);
        if (_heldSyn is not null && _plan?.Request?.RequestId == reject.RequestId)
        {
            Refuse(now, $"state reject {reject.Reason}", reject.Diagnostic);
        }
    }

    /// <summary>Destination side: the state request got no answer (timeout, peer unreachable, control connection gone).</summary>
    public void HandleStateRequestFailed(Instant now, string reason)
    {
        if (_heldSyn is not null)
        {
            Refuse(now, reason);
        }
    }

    /// <summary>
    /// Thesis 4.2.3 at S1, on the state ack: close without FIN or RST and stay silent for 2 MSL. Only an ack naming a
    /// reply sent from here counts: the same Cid may name a later incarnation of the connection (it came back on the
    /// same 4-tuple), which a stale ack must not close; a buddy's fencing comes as <see cref="HandleTakenOver"/>.
    /// </summary>
    public void HandleStateAck(Instant now, StateAck ack)
    {
        ArgumentNullException.ThrowIfNull(ack);
        var index = _stateRepliesSent.FindIndex(sent => sent.RequestId == ack.RequestId);
        if (ack.MigratingCid != Cid || Phase != ServerEndpointPhase.Established || index < 0)
        {
            return;
        }

        MigrateAway(now, _stateRepliesSent[index].Requester);
    }

    /// <summary>
    /// Fencing (docs/failover.md): the buddy took the connection over from the replica this endpoint sent, of credential
    /// epoch <see cref="ConnectionTakenOver.Epoch"/>; the endpoint drops it as after a planned migration, to a
    /// destination not known here. A notice of another epoch is about another incarnation on the same 4-tuple (one
    /// that left, or this one that came back since) and changes nothing.
    /// </summary>
    public void HandleTakenOver(Instant now, ConnectionTakenOver takenOver)
    {
        ArgumentNullException.ThrowIfNull(takenOver);
        if (takenOver.MigratingCid != Cid || Phase != ServerEndpointPhase.Established || _authentication.Epoch != takenOver.Epoch)
        {
            return;
        }

        MigrateAway(now, destination: null);
    }

    /// <summary>The application (or the driver stopping) gives up: a RST for a connection, a refusal for a held special SYN.</summary>
    public void Abort(Instant now)
    {
        switch (Phase)
        {
            case ServerEndpointPhase.AwaitingState:
                Refuse(now, "aborted");
                break;
            case ServerEndpointPhase.Handshaking or ServerEndpointPhase.Established:
                Connection.Abort(now);
                AnswerHeldRequests();
                break;
        }
    }

    /// <summary>
    /// A MIGRATE_TRIGGER (thesis 3.2.1) asking this connection's client to migrate to <paramref name="destination"/>
    /// (null: the client chooses), signed under the connection's secret; false when it is not held here.
    /// </summary>
    public bool TryCreateTrigger(ServerEndpoint? destination, out TcpSegmentRepr segment)
    {
        segment = default;
        return _authenticator is not null && HoldsConnection && _authentication.TryCreateTrigger(_authenticator, Cid, Service, destination, out segment);
    }

    /// <summary>The connection's migration credential as a state reply carries it, for its buddy's replica; empty before it is issued or adopted.</summary>
    public ReadOnlyMemory<byte> CredentialBytes => _authentication.CredentialBytes;

    /// <summary>The connection's trigger key for its current epoch, for a third party; false when it is not held here.</summary>
    public bool TryDeriveTriggerKey(out TriggerKey key)
    {
        key = default;
        return _authenticator is not null && HoldsConnection && _authentication.TryDeriveTriggerKey(_authenticator, Cid, out key);
    }

    public void BeginBurst() => Connection.BeginBurst();

    public void EndBurst() => Connection.EndBurst();

    public bool PollTransmit(Instant now, Span<byte> payloadBuffer, out IpAddress destination, out TcpSegmentRepr header, out int payloadLength)
    {
        destination = Cid.ClientAddress;
        payloadLength = 0;
        if (_refusal is { } reset)
        {
            _refusal = null;
            header = reset;
            return true;
        }

        // A special SYN is answered only once the state is reinstated (thesis 4.2.3, step 5); after leaving, silence.
        if (Phase is ServerEndpointPhase.AwaitingState or ServerEndpointPhase.MigratedAway || _refused
            || !Connection.PollTransmit(now, payloadBuffer, out header, out payloadLength))
        {
            header = default;
            return false;
        }

        if (_authenticator is not null)
        {
            header = _authentication.Decorate(header, payloadLength, _origInfo, _alternates());
        }

        return true;
    }

    /// <summary>The stream's events, once the connection is served here.</summary>
    public bool PollEvent(out TcpEvent e)
    {
        if (_refused || _silentUntil is not null)
        {
            e = default;
            return false;
        }

        return Connection.PollEvent(out e);
    }

    /// <summary>The endpoint's own events: acceptance, refusal, reinstatement, state requests answered, migration away.</summary>
    public bool PollEndpointEvent([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ServerEndpointEvent? e) => _events.TryDequeue(out e);

    /// <summary>The next control message and the server it is for: state acks and answers to state requests.</summary>
    public bool PollControl(out TPeer peer, out ControlMessage message)
    {
        if (_control.TryDequeue(out var item))
        {
            (peer, message) = item;
            return true;
        }

        peer = default!;
        message = null!;
        return false;
    }

    public Instant? PollTimeout()
    {
        var due = Phase switch
        {
            ServerEndpointPhase.AwaitingState => _plan?.Deadline,
            ServerEndpointPhase.MigratedAway => _silentUntil,
            ServerEndpointPhase.Ended when _refused || _silenceOver => null,
            _ => Connection.PollTimeout(),
        };
        foreach (var held in _heldRequests)
        {
            due = Instant.Earliest(due, held.Until);
        }

        return due;
    }

    public void HandleTimeout(Instant now)
    {
        AnswerHeldRequests(now);
        switch (Phase)
        {
            case ServerEndpointPhase.AwaitingState when _plan?.Deadline <= now:
                Refuse(now, "no state reply in time");
                break;
            case ServerEndpointPhase.MigratedAway when _silentUntil <= now:
                _silenceOver = true;
                break;
            case ServerEndpointPhase.Handshaking or ServerEndpointPhase.Established or ServerEndpointPhase.Ended when Connection.PollTimeout() <= now:
                Connection.HandleTimeout(now);
                AnswerHeldRequests();
                break;
        }
    }

    /// <summary>Segments dropped unanswered because the connection migrated away or its special SYN was refused.</summary>
    public long SilencedSegments { get; private set; }

    private void MigrateAway(Instant now, ServerEndpoint? destination)
    {
        Connection.CompleteMigrationAway();

        // The application learns of it from the event; nothing the engine still had to say reaches it.
        while (Connection.PollEvent(out _))
        {
        }

        _silentUntil = now + Connection.Config.TwoMsl;
        _events.Enqueue(new ServerEndpointEvent.MigratedAway(destination));
        AnswerHeldRequests();
    }

    private void OnFirstSyn(Instant now, in TcpSegmentRepr syn)
    {
        if (syn.Options.MigratedConnection is null)
        {
            // The connection's first SYN: this server is its origin and issues its migration secret.
            if (_authenticator is not null)
            {
                _authentication.Issue(_authenticator, Cid, Connection.InitialReceiveSequence, Connection.InitialSendSequence);
            }

            return;
        }

        // Thesis 4.2.3 at S2: the SYN waits, unanswered, for the origin's state.
        _heldSyn = syn;
        if (_authenticator is null)
        {
            Refuse(now, "this node takes no migrated connections (migration not enabled)");
        }
        else if (_plan is not { Request: not null })
        {
            Refuse(now, _plan?.Refusal ?? "no state request was planned for this special SYN");
        }
    }

    private void Answer(TPeer requester, StateRequest request)
    {
        var check = MigratedConnectionCheck.Forged;
        var answer = _authenticator is null
            ? new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.CbNotFound, "migration is not enabled here")
            : _authentication.Answer(_authenticator, IsEnded ? null : Connection, Service, request, out check);
        _control.Enqueue((requester, answer));
        if (answer is StateReply)
        {
            if (_stateRepliesSent.Count == MaxHeldStateRequests)
            {
                _stateRepliesSent.RemoveAt(0);
            }

            _stateRepliesSent.Add((request.RequestId, EndpointOf(request.NewEndpointCid)));
        }

        _events.Enqueue(new ServerEndpointEvent.StateRequestAnswered(answer, check));
    }

    /// <summary>
    /// Held state requests get their answers once the handshake is done or will never be, and any held past its
    /// time (<paramref name="now"/>) gets one anyway.
    /// </summary>
    private void AnswerHeldRequests(Instant? now = null)
    {
        if (_heldRequests.Count == 0)
        {
            return;
        }

        var all = Phase is not (ServerEndpointPhase.AwaitingState or ServerEndpointPhase.Handshaking);
        var due = _heldRequests.Where(held => all || (now is { } time && held.Until <= time)).ToArray();
        foreach (var held in due)
        {
            _heldRequests.Remove(held);
            Answer(held.Requester, held.Request);
        }
    }

    /// <summary>The special SYN is refused with a RST: the client stays on its old server (thesis 4.2.3).</summary>
    private void Refuse(Instant now, string reason, string detail = "")
    {
        if (_heldSyn is not { } syn)
        {
            return;
        }

        _heldSyn = null;
        _refused = true;
        if (ResetRefusedMigrations && TcpConnection.TryMakeReset(syn, 0, out var reset))
        {
            _refusal = reset;
        }

        // The engine never answered the SYN: closed without a word of its own.
        Connection.Abort(now);
        while (Connection.PollTransmit(now, Span<byte>.Empty, out _, out _))
        {
        }

        _events.Enqueue(new ServerEndpointEvent.Refused(reason, detail));
        AnswerHeldRequests();
    }

    private static bool IsFreshSyn(in TcpSegmentRepr segment) =>
        (segment.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) == TcpFlags.Syn;
}

using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// One server's MTCP endpoints for one service port, sans-IO (thesis 4.2.3, figs 4.1, 4.8): it demultiplexes segments
/// to <see cref="TcpConnection"/>s, answers a special SYN (TCP_MIGRATED_CONN) by asking the origin server for the
/// state and holding the SYN until the reply is reinstated, serves other servers' state requests by looking up the
/// Cid, and silences an endpoint that migrated away. Control messages go out through <see cref="PollControl"/>
/// addressed by the peer server's service address (the driver maps it to a control connection, thesis
/// TCP_CONTROL_MAPPINGS) and come in through <see cref="HandleControl"/>.
/// Migrations are authenticated with the per-connection-secret scheme (docs/threat-model.md): the origin issues the
/// secret on its SYN+ACK, the endpoint holding the connection keeps its <see cref="ConnectionCredential"/>, checks
/// MIGRATED_CONN authenticators under it (a spent attempt number is a replay) and hands it on in the state reply.
/// </summary>
public sealed class MtcpServerHost
{
    private readonly Dictionary<(IpAddress Address, ushort Port), Endpoint> _endpoints = [];
    private readonly List<Endpoint> _order = [];
    private readonly Dictionary<ulong, Endpoint> _pendingByRequest = [];
    private readonly Dictionary<(IpAddress Address, ushort Port), Instant> _silenced = [];
    private readonly Queue<(IpAddress Destination, TcpSegmentRepr Header)> _replies = new();
    private readonly Queue<(IpAddress Peer, ControlMessage Message)> _control = new();
    private readonly Queue<(TcpConnection Connection, ConnectionId Cid)> _accepted = new();
    private IMigrationAuthenticator _authenticator;
    private readonly Func<SeqNumber> _issSource;
    private ulong _nextRequestId;
    private int _nextPoll;

    /// <param name="service">This server's service address and port (the listening socket).</param>
    /// <param name="config">Configuration of every endpoint; <see cref="TcpConfig.RetainReadLog"/> should be on for migration support.</param>
    /// <param name="authenticator">This server's cluster keys: issues connections' secrets, checks forwarded TCP_MIGRATED_CONN authenticators.</param>
    /// <param name="issSource">Initial sequence numbers (seeded by the caller).</param>
    /// <param name="alternateServers">TCP_ADDSERVERS: the cooperating servers announced on SYN+ACKs in TCP_MIGRATE.</param>
    public MtcpServerHost(ServerEndpoint service, TcpConfig config, IMigrationAuthenticator authenticator, Func<SeqNumber> issSource, IReadOnlyList<ServerEndpoint> alternateServers)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        Service = service;
        Config = config;
        _authenticator = authenticator;
        _issSource = issSource;
        AlternateServers = alternateServers;
    }

    public ServerEndpoint Service { get; }

    public TcpConfig Config { get; }

    public IReadOnlyList<ServerEndpoint> AlternateServers { get; }

    /// <summary>
    /// The cluster keys. Key rotation replaces it with one whose previous key is the old current key: connections
    /// set up before keep migrating, new ones get secrets under the new key.
    /// </summary>
    public IMigrationAuthenticator Authenticator
    {
        get => _authenticator;
        set => _authenticator = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>How long a migrated endpoint waits for the origin's state reply before refusing the special SYN.</summary>
    public TimeSpan StateReplyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>True: a refused special SYN gets a RST; false: silence (the client times out).</summary>
    public bool ResetRefusedMigrations { get; init; } = true;

    public MtcpServerStats Stats { get; } = new();

    /// <summary>Every endpoint ever accepted here, in order, including closed and migrated-away ones.</summary>
    public IEnumerable<TcpConnection> Connections => _order.Select(e => e.Tcb);

    /// <summary>Endpoints that still hold a connection (not CLOSED, not migrated away).</summary>
    public int LiveEndpoints => _order.Count(e => e.Tcb.State != TcpState.Closed);

    /// <summary>
    /// A connection the application may now serve: ESTABLISHED, and for a migrated one, reinstated and past β
    /// (accept(2) returns only completed connections). Call <see cref="TcpConnection.ImportState"/> on it.
    /// </summary>
    public bool PollAccepted(out TcpConnection connection, out ConnectionId cid)
    {
        if (_accepted.TryDequeue(out var accepted))
        {
            (connection, cid) = accepted;
            return true;
        }

        connection = null!;
        cid = default;
        return false;
    }

    /// <summary>The next control message and the service address of the server it is for.</summary>
    public bool PollControl(out IpAddress peer, out ControlMessage message)
    {
        if (_control.TryDequeue(out var item))
        {
            (peer, message) = item;
            return true;
        }

        peer = default;
        message = null!;
        return false;
    }

    /// <summary>
    /// Sends a MIGRATE_TRIGGER (thesis 3.2.1) for <paramref name="cid"/>, a connection this server holds, asking its
    /// client to migrate to <paramref name="destination"/> (null: a server of the client's choice among the
    /// alternates). Signed with the connection's trigger key and, for a named destination, endorsed with Auth_dest,
    /// both for the current migration epoch. False when the connection is not held here.
    /// </summary>
    public bool SendTrigger(ConnectionId cid, ServerEndpoint? destination)
    {
        if (!TryGetHeld(cid, out var endpoint) || !endpoint.Authentication.TryCreateTrigger(_authenticator, cid, Service, destination, out var segment))
        {
            return false;
        }

        _replies.Enqueue((cid.ClientAddress, segment));
        return true;
    }

    /// <summary>
    /// The trigger key of <paramref name="cid"/>, a connection this server holds, for the current epoch: what an
    /// authorised third party (another server, an operator tool) needs to trigger this connection's migration
    /// with <see cref="SendTrigger(ConnectionId, TriggerKey)"/> until its next migration, and nothing more.
    /// </summary>
    public bool TryIssueTriggerKey(ConnectionId cid, out TriggerKey key)
    {
        key = default;
        return TryGetHeld(cid, out var endpoint) && endpoint.Authentication.TryDeriveTriggerKey(_authenticator, cid, out key);
    }

    /// <summary>
    /// Sends a MIGRATE_TRIGGER for a connection held elsewhere, signed with the trigger key its holder issued; the
    /// client chooses the destination (naming one would need the holder's Auth_dest endorsement).
    /// </summary>
    public void SendTrigger(ConnectionId cid, TriggerKey key) =>
        _replies.Enqueue((cid.ClientAddress, ServerMigration.ThirdPartyTriggerSegment(cid, Service, key)));

    public void Receive(Instant now, IpAddress source, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        if (segment.DestinationPort != Service.Port)
        {
            RefuseUnknown(source, segment, payload.Length);
            return;
        }

        var key = (source, segment.SourcePort);
        if (_endpoints.TryGetValue(key, out var endpoint) && !(endpoint.Tcb.State == TcpState.Closed && IsFreshSyn(segment)))
        {
            if (IsFreshSyn(segment) && segment.Options.MigratedConnection is not null)
            {
                // A retransmitted (or replayed) special SYN for an endpoint that exists: a duplicate, never a second
                // state request; the endpoint answers it as TCP answers any duplicate SYN.
                Stats.DuplicateSpecialSyns++;
            }

            OnSegmentForEndpoint(now, endpoint, segment, payload);
            return;
        }

        if (_silenced.TryGetValue(key, out var until))
        {
            if (until > now && !IsFreshSyn(segment))
            {
                // The connection migrated away (thesis 4.2.3): no ACK, no RST, nothing that could disturb the client.
                Stats.SilencedSegments++;
                return;
            }

            _silenced.Remove(key);
        }

        if (!IsFreshSyn(segment))
        {
            RefuseUnknown(source, segment, payload.Length);
            return;
        }

        var iss = _issSource();
        var tcb = TcpConnection.Listen(Config, Service.Port, iss);
        tcb.HandleSegment(now, segment, payload);
        endpoint = new Endpoint(tcb, new ConnectionId(source, segment.SourcePort, Service.Address, Service.Port), source);
        if (segment.Options.MigratedConnection is null)
        {
            // The connection's first SYN: this server is its origin and issues its migration secret.
            endpoint.Authentication.Issue(_authenticator, endpoint.Cid, segment.SequenceNumber, iss);
        }

        if (_endpoints.Remove(key, out var previous))
        {
            _order.Remove(previous);
        }

        _endpoints[key] = endpoint;
        _order.Add(endpoint);
        if (segment.Options.MigratedConnection is { } migrated)
        {
            RequestState(now, endpoint, segment, migrated);
        }
    }

    public bool PollTransmit(Instant now, Span<byte> payloadBuffer, out IpAddress destination, out TcpSegmentRepr header, out int payloadLength)
    {
        payloadLength = 0;
        if (_replies.TryDequeue(out var reply))
        {
            (destination, header) = reply;
            return true;
        }

        for (var i = 0; i < _order.Count; i++)
        {
            var index = (_nextPoll + i) % _order.Count;
            var endpoint = _order[index];

            // A special SYN is answered only once the state is reinstated (thesis 4.2.3, step 5).
            if (endpoint.Pending is not null || endpoint.Tcb.IsMigratedAway)
            {
                continue;
            }

            if (endpoint.Tcb.PollTransmit(now, payloadBuffer, out header, out payloadLength))
            {
                _nextPoll = index;
                destination = endpoint.RemoteAddress;
                header = endpoint.Authentication.Decorate(header, payloadLength, endpoint.OrigInfo, AlternateServers);
                return true;
            }
        }

        destination = default;
        header = default;
        return false;
    }

    public Instant? PollTimeout()
    {
        Instant? earliest = null;
        foreach (var endpoint in _order)
        {
            Consider(ref earliest, endpoint.Pending?.Deadline);
            if (!endpoint.Tcb.IsMigratedAway)
            {
                Consider(ref earliest, endpoint.Tcb.PollTimeout());
            }
        }

        return earliest;

        static void Consider(ref Instant? earliest, Instant? candidate)
        {
            if (candidate is { } c && (earliest is not { } e || c < e))
            {
                earliest = c;
            }
        }
    }

    public void HandleTimeout(Instant now)
    {
        foreach (var endpoint in _order.ToArray())
        {
            if (endpoint.Pending is { } pending && pending.Deadline <= now)
            {
                Refuse(endpoint, "no state reply in time");
                continue;
            }

            if (!endpoint.Tcb.IsMigratedAway && endpoint.Tcb.PollTimeout() is { } due && due <= now)
            {
                endpoint.Tcb.HandleTimeout(now);
            }
        }
    }

    /// <summary>A message from the control connection with server <paramref name="peer"/> (thesis 4.2.3).</summary>
    public void HandleControl(Instant now, IpAddress peer, ControlMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        switch (message)
        {
            case StateRequest request:
                _control.Enqueue((peer, HandleStateRequest(now, request)));
                break;
            case StateReply reply:
                HandleStateReply(peer, reply);
                break;
            case StateReject reject:
                HandleStateReject(reject);
                break;
            case StateAck ack:
                HandleStateAck(now, ack);
                break;
            default:
                break;
        }
    }

    /// <summary>
    /// Origin side (S1): look the Cid up (CB_NOT_FOUND), check the authenticator (AUTH_FAILED), then let the
    /// endpoint package its state or reject it (INVALID_STATE). Returns the answer; <see cref="HandleControl"/> also
    /// queues it for the requesting server.
    /// </summary>
    public ControlMessage HandleStateRequest(Instant now, StateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var cid = request.MigratingCid;
        _endpoints.TryGetValue((cid.ClientAddress, cid.ClientPort), out var endpoint);

        // No endpoint under the Cid: a blank authentication state, so that the answer is CB_NOT_FOUND.
        var authentication = endpoint?.Authentication ?? new ServerEndpointAuthentication();
        var answer = authentication.Answer(_authenticator, endpoint?.Tcb, Service, request, out var check);

        if (check == MigratedConnectionCheck.Replayed)
        {
            Stats.ReplayedStateRequestsRejected++;
        }

        if (answer is StateReply)
        {
            Stats.StateRepliesSent++;
            Stats.LargestStateReply = Math.Max(Stats.LargestStateReply, answer.GetEncodedLength());
        }
        else
        {
            Stats.StateRejectsSent++;
        }

        return answer;
    }

    /// <summary>Destination side (S2): a reject refuses the special SYN it answers; the client stays where it is.</summary>
    public void HandleStateReject(StateReject reject)
    {
        ArgumentNullException.ThrowIfNull(reject);
        if (_pendingByRequest.TryGetValue(reject.RequestId, out var rejected))
        {
            Refuse(rejected, $"state reject {reject.Reason}");
        }
    }

    /// <summary>Origin side, on the state ack: the endpoint closes silently and its Cid is silenced for 2 MSL.</summary>
    public void HandleStateAck(Instant now, StateAck ack)
    {
        ArgumentNullException.ThrowIfNull(ack);
        var cid = ack.MigratingCid;
        if (!_endpoints.TryGetValue((cid.ClientAddress, cid.ClientPort), out var endpoint) || endpoint.Tcb.IsMigratedAway)
        {
            return;
        }

        endpoint.Tcb.CompleteMigrationAway();
        _endpoints.Remove((cid.ClientAddress, cid.ClientPort));
        _silenced[(cid.ClientAddress, cid.ClientPort)] = now + Config.MaximumSegmentLifetime + Config.MaximumSegmentLifetime;
        Stats.MigrationsOut++;
    }

    private void RequestState(Instant now, Endpoint endpoint, in TcpSegmentRepr syn, MtcpMigratedConnection migrated)
    {
        var migratingCid = migrated.ToConnectionId(endpoint.RemoteAddress, syn.SourcePort);
        if (new ServerEndpoint(migratingCid.ServerAddress, migratingCid.ServerPort) == Service)
        {
            endpoint.Pending = new PendingState(0, migratingCid, syn, now);
            Refuse(endpoint, "the connection is already here");
            return;
        }

        var request = ServerMigration.BuildStateRequest(++_nextRequestId, migrated, endpoint.Cid);
        endpoint.Pending = new PendingState(request.RequestId, migratingCid, syn, now + StateReplyTimeout);
        _pendingByRequest[request.RequestId] = endpoint;
        _control.Enqueue((migratingCid.ServerAddress, request));
        Stats.StateRequestsSent++;
    }

    /// <summary>Destination side (S2): reinstate, send the state ack to <paramref name="peer"/>, then let the SYN+ACK go.</summary>
    public void HandleStateReply(IpAddress peer, StateReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        if (!_pendingByRequest.Remove(reply.RequestId, out var endpoint) || endpoint.Pending is not { } pending || reply.NewEndpointCid != endpoint.Cid)
        {
            // Too late (the SYN was refused) or not ours: no state ack, so the origin keeps the connection.
            return;
        }

        if (!endpoint.Authentication.TryAdopt(_authenticator, reply))
        {
            Refuse(endpoint, "state reply without a usable migration credential");
            return;
        }

        try
        {
            endpoint.OrigInfo = ServerMigration.Reinstate(endpoint.Tcb, reply);
        }
        catch (ArgumentException e)
        {
            Refuse(endpoint, e.Message);
            return;
        }

        endpoint.Pending = null;
        _control.Enqueue((peer, new StateAck(reply.RequestId, pending.MigratingCid)));
    }

    private void OnSegmentForEndpoint(Instant now, Endpoint endpoint, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        var tcb = endpoint.Tcb;
        var wasSynReceived = tcb.State == TcpState.SynReceived;
        var migrated = tcb.AwaitingMigrationHandshake;
        tcb.HandleSegment(now, segment, payload);
        endpoint.Authentication.OnInbound(segment);

        // The client's ACK of our SYN+ACK carries β (thesis 4.2.3, last step).
        if (!ServerMigration.CompleteHandshake(tcb, wasSynReceived, segment))
        {
            return;
        }

        if (migrated)
        {
            Stats.MigrationsIn++;
        }

        _accepted.Enqueue((tcb, endpoint.Cid));
    }

    /// <summary>The special SYN is refused: the client stays on its old server (thesis 4.2.3).</summary>
    private void Refuse(Endpoint endpoint, string reason)
    {
        if (endpoint.Pending is { } pending)
        {
            _pendingByRequest.Remove(pending.RequestId);
            if (ResetRefusedMigrations && TcpConnection.TryMakeReset(pending.Syn, 0, out var reset))
            {
                _replies.Enqueue((endpoint.RemoteAddress, reset));
            }
        }

        endpoint.Pending = null;
        endpoint.Tcb.Abort(default);
        _endpoints.Remove((endpoint.RemoteAddress, endpoint.Cid.ClientPort));
        _order.Remove(endpoint);
        _nextPoll = 0;
        Stats.MigrationsRefused++;
        Stats.RefusalReasons[reason] = Stats.RefusalReasons.GetValueOrDefault(reason) + 1;
    }

    private bool TryGetHeld(ConnectionId cid, out Endpoint endpoint) =>
        _endpoints.TryGetValue((cid.ClientAddress, cid.ClientPort), out endpoint!) && endpoint.Cid == cid && !endpoint.Tcb.IsMigratedAway;

    private void RefuseUnknown(IpAddress source, in TcpSegmentRepr segment, int payloadLength)
    {
        if (TcpConnection.TryMakeReset(segment, payloadLength, out var reset))
        {
            _replies.Enqueue((source, reset));
        }
    }

    private static bool IsFreshSyn(in TcpSegmentRepr segment) =>
        segment.Has(TcpFlags.Syn) && !segment.Has(TcpFlags.Ack) && !segment.Has(TcpFlags.Rst);

    private sealed record PendingState(ulong RequestId, ConnectionId MigratingCid, TcpSegmentRepr Syn, Instant Deadline);

    private sealed class Endpoint(TcpConnection tcb, ConnectionId cid, IpAddress remoteAddress)
    {
        public TcpConnection Tcb { get; } = tcb;

        public ConnectionId Cid { get; } = cid;

        public IpAddress RemoteAddress { get; } = remoteAddress;

        public PendingState? Pending { get; set; }

        public MtcpOrigConnectionInfo? OrigInfo { get; set; }

        /// <summary>The connection's credential, the secret for the origin's SYN+ACK and the alternates owed.</summary>
        public ServerEndpointAuthentication Authentication { get; } = new();
    }
}

using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// One server's MTCP endpoints for one service port, sans-IO (thesis 4.2.3, figs 4.1, 4.8): a table of
/// <see cref="MtcpServerEndpoint{TPeer}"/>s, the same class the actor runtime drives, one per 4-tuple. It
/// demultiplexes segments to them, sends the state request a special SYN calls for, routes other servers' state
/// requests, replies and acks to the endpoint of their Cid or request, and answers what no endpoint holds. Control messages go out through <see cref="PollControl"/>
/// addressed by the peer server's service address (the driver maps it to a control connection, thesis
/// TCP_CONTROL_MAPPINGS) and come in through <see cref="HandleControl"/>.
/// Migrations are authenticated with the per-connection-secret scheme (docs/threat-model.md): the origin issues the
/// secret on its SYN+ACK, the endpoint holding the connection keeps its <see cref="ConnectionCredential"/>, checks
/// MIGRATED_CONN authenticators under it (a spent attempt number is a replay) and hands it on in the state reply.
/// </summary>
public sealed class MtcpServerHost
{
    private readonly Dictionary<(IpAddress Address, ushort Port), MtcpServerEndpoint<IpAddress>> _endpoints = [];
    private readonly List<MtcpServerEndpoint<IpAddress>> _order = [];
    private readonly Dictionary<ulong, MtcpServerEndpoint<IpAddress>> _pendingByRequest = [];
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
        set
        {
            _authenticator = value ?? throw new ArgumentNullException(nameof(value));
            foreach (var endpoint in _order)
            {
                endpoint.Authenticator = value;
            }
        }
    }

    /// <summary>How long a migrated endpoint waits for the origin's state reply before refusing the special SYN.</summary>
    public TimeSpan StateReplyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>True: a refused special SYN gets a RST; false: silence (the client times out).</summary>
    public bool ResetRefusedMigrations { get; init; } = true;

    public MtcpServerStats Stats { get; } = new();

    /// <summary>
    /// Null: every SYN gets an endpoint. Set: every SYN but a special one is answered statelessly with a SYN cookie
    /// (RFC 4987 §3.6, as Linux's <c>tcp_syncookies = 2</c>), and the endpoint is created only from the client's ACK
    /// returning a valid one; the actor runtime does this once its SYN queue is full.
    /// </summary>
    public SynCookies? SynCookies { get; init; }

    /// <summary>Every endpoint ever accepted here, in order, including closed and migrated-away ones (not refused special SYNs).</summary>
    public IEnumerable<TcpConnection> Connections => _order.Select(e => e.Connection);

    /// <summary>
    /// The endpoints in the table now, in the order they were accepted: what a driver keeping each connection's buddy
    /// up to date (<see cref="ConnectionReplicator"/>) walks, as the actor runtime does per endpoint actor.
    /// </summary>
    public IEnumerable<MtcpServerEndpoint<IpAddress>> Endpoints => _order;

    /// <summary>Endpoints that still hold a connection (not CLOSED, not migrated away).</summary>
    public int LiveEndpoints => _order.Count(e => e.Connection.State != TcpState.Closed);

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
        if (!TryGetHeld(cid, out var endpoint) || !endpoint.TryCreateTrigger(destination, out var segment))
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
        return TryGetHeld(cid, out var endpoint) && endpoint.TryDeriveTriggerKey(out key);
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
        if (_endpoints.TryGetValue(key, out var endpoint) && endpoint.IsEnded && !endpoint.IsNewConnection(segment))
        {
            // Over: the 4-tuple is unknown again (RFC 9293 §3.10.7.1).
            RefuseUnknown(source, segment, payload.Length);
            return;
        }

        if (endpoint is not null && !endpoint.IsNewConnection(segment))
        {
            if (IsFreshSyn(segment) && segment.Options.MigratedConnection is not null)
            {
                // A retransmitted (or replayed) special SYN for an endpoint that exists: a duplicate, never a second
                // state request; the endpoint answers it as TCP answers any duplicate SYN.
                Stats.DuplicateSpecialSyns++;
            }

            var silenced = endpoint.SilencedSegments;
            endpoint.HandleSegment(now, segment, payload);
            Stats.SilencedSegments += endpoint.SilencedSegments - silenced;
            Drain(now, endpoint);
            return;
        }

        var cid = new ConnectionId(source, segment.SourcePort, Service.Address, Service.Port);
        if (SynCookies is { } cookies && segment.Options.MigratedConnection is null)
        {
            ReceiveStateless(now, cookies, cid, segment, payload);
            return;
        }

        if (!IsFreshSyn(segment))
        {
            RefuseUnknown(source, segment, payload.Length);
            return;
        }

        var plan = segment.Options.MigratedConnection is { } migrated
            ? StateRequestPlan.For(++_nextRequestId, migrated, cid, Service, now, now + StateReplyTimeout)
            : null;
        endpoint = new MtcpServerEndpoint<IpAddress>(Config, cid, _issSource(), _authenticator, () => AlternateServers, plan)
        {
            ResetRefusedMigrations = ResetRefusedMigrations,
        };
        if (_endpoints.Remove(key, out var previous) && !previous.Connection.IsMigratedAway)
        {
            _order.Remove(previous);
        }

        _endpoints[key] = endpoint;
        _order.Add(endpoint);
        if (plan is { Request: { } request, Origin: { } origin })
        {
            _pendingByRequest[request.RequestId] = endpoint;
            _control.Enqueue((origin.Address, request));
            Stats.StateRequestsSent++;
        }

        endpoint.HandleSegment(now, segment, payload);
        Drain(now, endpoint);
    }

    /// <summary>With <see cref="SynCookies"/>: a SYN gets a cookie and nothing else; an ACK returning a valid cookie creates the endpoint.</summary>
    private void ReceiveStateless(Instant now, SynCookies cookies, ConnectionId cid, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        if (IsFreshSyn(segment))
        {
            _replies.Enqueue((cid.ClientAddress, StatelessHandshake.SynAck(cookies, Config, now, cid, segment, _authenticator, AlternateServers)));
            Stats.SynCookiesSent++;
            return;
        }

        if (!cookies.TryValidate(now, cid, segment, out var options))
        {
            Stats.SynCookiesRefused += segment.Has(TcpFlags.Ack) && !segment.Has(TcpFlags.Rst) ? 1 : 0;
            RefuseUnknown(cid.ClientAddress, segment, payload.Length);
            return;
        }

        Stats.SynCookiesValidated++;
        var endpoint = new MtcpServerEndpoint<IpAddress>(Config, cid, segment.AcknowledgmentNumber - 1, _authenticator, () => AlternateServers)
        {
            ResetRefusedMigrations = ResetRefusedMigrations,
        };
        var key = (cid.ClientAddress, cid.ClientPort);
        if (_endpoints.Remove(key, out var previous) && !previous.Connection.IsMigratedAway)
        {
            _order.Remove(previous);
        }

        _endpoints[key] = endpoint;
        _order.Add(endpoint);
        endpoint.AcceptCookie(now, SynCookies.SynOf(segment, options));
        endpoint.HandleSegment(now, segment, payload);
        Drain(now, endpoint);
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
            if (_order[index].PollTransmit(now, payloadBuffer, out destination, out header, out payloadLength))
            {
                _nextPoll = index;
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
            earliest = Instant.Earliest(earliest, endpoint.PollTimeout());
        }

        return earliest;
    }

    public void HandleTimeout(Instant now)
    {
        foreach (var endpoint in _order.ToArray())
        {
            if (endpoint.PollTimeout() is { } due && due <= now)
            {
                endpoint.HandleTimeout(now);
                Drain(now, endpoint);
            }
        }
    }

    /// <summary>A message from the control connection with server <paramref name="peer"/> (thesis 4.2.3).</summary>
    public void HandleControl(Instant now, IpAddress peer, ControlMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        switch (message)
        {
            case StateRequest request when TryGetByCid(request.MigratingCid, out var origin):
                origin.HandleStateRequest(now, peer, request);
                Drain(now, origin);
                break;
            case StateRequest request:
                // No endpoint under the Cid: a blank authentication state, so that the answer is CB_NOT_FOUND.
                var answer = new ServerEndpointAuthentication().Answer(_authenticator, null, Service, request, out _);
                _control.Enqueue((peer, answer));
                Stats.StateRejectsSent++;
                break;
            case StateReply reply when _pendingByRequest.Remove(reply.RequestId, out var destination):
                destination.HandleStateReply(now, peer, reply);
                Drain(now, destination);
                break;
            case StateReject reject when _pendingByRequest.Remove(reject.RequestId, out var destination):
                destination.HandleStateReject(now, reject);
                Drain(now, destination);
                break;
            case StateAck ack when TryGetByCid(ack.MigratingCid, out var origin):
                origin.HandleStateAck(now, ack);
                Drain(now, origin);
                break;
            case ConnectionTakenOver takenOver when TryGetByCid(takenOver.MigratingCid, out var origin):
                origin.HandleTakenOver(now, takenOver);
                Drain(now, origin);
                break;
            default:
                break;
        }
    }

    /// <summary>An endpoint's outputs other than segments: control messages, acceptance, and what the stats count.</summary>
    private void Drain(Instant now, MtcpServerEndpoint<IpAddress> endpoint)
    {
        while (endpoint.PollControl(out var peer, out var message))
        {
            _control.Enqueue((peer, message));
        }

        while (endpoint.PollEndpointEvent(out var e))
        {
            switch (e)
            {
                case ServerEndpointEvent.Accepted accepted:
                    Stats.MigrationsIn += accepted.Migrated ? 1 : 0;
                    _accepted.Enqueue((endpoint.Connection, endpoint.Cid));
                    break;
                case ServerEndpointEvent.Refused refused:
                    Stats.MigrationsRefused++;
                    Stats.RefusalReasons[refused.Reason] = Stats.RefusalReasons.GetValueOrDefault(refused.Reason) + 1;
                    _order.Remove(endpoint);
                    _nextPoll = 0;
                    foreach (var (requestId, _) in _pendingByRequest.Where(p => p.Value == endpoint).ToArray())
                    {
                        _pendingByRequest.Remove(requestId);
                    }

                    break;
                case ServerEndpointEvent.StateRequestAnswered { Answer: StateReply reply }:
                    Stats.StateRepliesSent++;
                    Stats.LargestStateReply = Math.Max(Stats.LargestStateReply, reply.GetEncodedLength());
                    break;
                case ServerEndpointEvent.StateRequestAnswered answered:
                    Stats.StateRejectsSent++;
                    Stats.ReplayedStateRequestsRejected += answered.Check == MigratedConnectionCheck.Replayed ? 1 : 0;
                    break;
                case ServerEndpointEvent.MigratedAway:
                    Stats.MigrationsOut++;
                    break;
            }
        }

        // A refused special SYN still owes its RST: it leaves from the replies queue, and the 4-tuple is unknown again.
        if (endpoint.IsEnded && !_order.Contains(endpoint))
        {
            if (endpoint.PollTransmit(now, Span<byte>.Empty, out var destination, out var header, out _))
            {
                _replies.Enqueue((destination, header));
            }

            var key = (endpoint.Cid.ClientAddress, endpoint.Cid.ClientPort);
            if (_endpoints.TryGetValue(key, out var held) && held == endpoint)
            {
                _endpoints.Remove(key);
            }
        }
    }

    private bool TryGetByCid(ConnectionId cid, out MtcpServerEndpoint<IpAddress> endpoint) =>
        _endpoints.TryGetValue((cid.ClientAddress, cid.ClientPort), out endpoint!) && endpoint.Cid == cid;

    private bool TryGetHeld(ConnectionId cid, out MtcpServerEndpoint<IpAddress> endpoint) =>
        TryGetByCid(cid, out endpoint) && endpoint.HoldsConnection;

    private void RefuseUnknown(IpAddress source, in TcpSegmentRepr segment, int payloadLength)
    {
        if (TcpConnection.TryMakeReset(segment, payloadLength, out var reset))
        {
            _replies.Enqueue((source, reset));
        }
    }

    private static bool IsFreshSyn(in TcpSegmentRepr segment) =>
        segment.Has(TcpFlags.Syn) && !segment.Has(TcpFlags.Ack) && !segment.Has(TcpFlags.Rst);
}

using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.Stack.Migration;

/// <summary>
/// The client's end of an MTCP connection (thesis 4.2.3, fig. 4.7): one socket that can hold two TCP control blocks.
/// The application reads and writes one byte stream; underneath, <see cref="BeginMigration"/> opens a second
/// control block to the destination with a special SYN while the old one keeps receiving, stops sending and
/// ignores ACKs (SS_ISMIGRATING). On the destination's SYN+ACK the socket switches: the origin's
/// <c>last_ack_sent</c> acts as an implicit ACK that prunes the send buffer, the unacknowledged rest moves to the new
/// block, the old block goes to BLACKHOLE for 2 MSL, and β rides on the ACK. A failed migration leaves the
/// connection on its old server. Sans-IO like <see cref="TcpConnection"/>: inputs carry the time, outputs name the
/// server each segment goes to.
/// Authentication (docs/threat-model.md): the origin's SYN+ACK gives the connection's migration secret; special SYNs
/// carry MIGRATED_CONN authenticators under it, numbered by attempt over the connection's life, and triggers are
/// checked under it for the current migration epoch (completed migrations).
/// </summary>
public sealed class MtcpClientConnection : IPolledEndpoint
{
    private readonly TcpConfig _config;
    private readonly List<Blackhole> _blackholes = [];
    private readonly Queue<MigrationEvent> _migrationEvents = new();

    /// <summary>Events the old block raised before the switch and the application has not polled yet.</summary>
    private readonly Queue<TcpEvent> _carriedEvents = new();
    private readonly List<ServerEndpoint> _alternateServers = [];

    private Block _current;
    private Migration? _migration;

    /// <summary>The control blocks a burst began on (the current one and a migrating one), ended together whatever switched meanwhile.</summary>
    private (TcpConnection? Current, TcpConnection? Next) _burst;
    private ClientFailover _failover = ClientFailover.Off;

    /// <summary>The failover under way since the current server fell silent; null while it answers.</summary>
    private FailoverAttempt? _failingOver;

    /// <summary>
    /// The blocks left at earlier switches that still hold unread bytes, oldest first: a slow reader can migrate
    /// again before it has read what the previous server delivered, and each block's bytes precede the next's.
    /// </summary>
    private readonly Queue<TcpConnection> _draining = new();

    private bool _connectedReported;
    private bool _peerClosedReported;

    /// <summary>β still to be carried by the new block's segments, until the new server shows it is synchronized.</summary>
    private uint? _betaPending;

    /// <summary>The connection's migration secret, from the origin's SYN+ACK; null until then (or if it gave none).</summary>
    private MigrationSecret? _secret;

    /// <summary>Migrations completed: triggers are bound to it, so one captured before a migration is dead after it.</summary>
    private uint _epoch;

    /// <summary>The attempt number of the next special SYN; never reused, so a captured special SYN cannot be replayed.</summary>
    private uint _nextAttempt;

    /// <summary>Retransmission timeouts of the control blocks this connection left behind at its migrations.</summary>
    private long _retiredRetransmissionTimeouts;
    private PathMtuCounts _retiredPathMtu;

    /// <summary>
    /// The newest sealed state the current server sent (client-stored state, <c>replication = client</c>), and its clear
    /// header; null until one comes, and again after each switch (it names the Cid the connection left).
    /// </summary>
    private byte[]? _clientState;
    private ClientStateBlob _clientStateHeader;

    private MtcpClientConnection(TcpConfig config, IpAddress localAddress, Block current)
    {
        _config = config;
        LocalAddress = localAddress;
        _current = current;
    }

    public IpAddress LocalAddress { get; }

    /// <summary>False for a plain TCP client (set before connecting): it never migrates, and MIGRATE_TRIGGERs are ignored.</summary>
    public bool MigrationEnabled { get; set; } = true;

    /// <summary>
    /// How this connection survives a silent server (set before connecting; needs <see cref="MigrationEnabled"/>):
    /// off by default.
    /// </summary>
    public ClientFailover Failover
    {
        get => _failover;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            _failover = value.Validate();
            _current.Tcb.KeepAliveIdle = value.Enabled ? value.ProbeInterval : TimeSpan.Zero;
        }
    }

    /// <summary>True from the moment the current server fell silent until another took over or the connection gave up.</summary>
    public bool IsFailingOver => _failingOver is not null;

    /// <summary>The server the connection is on now.</summary>
    public ServerEndpoint CurrentServer => _current.Peer;

    /// <summary>The connection id (Cid, thesis 3.2.1) of the current control block.</summary>
    public ConnectionId Cid => new(LocalAddress, _current.Tcb.LocalPort, _current.Peer.Address, _current.Peer.Port);

    /// <summary>
    /// The first alternate that serves this connection's service: another server on the current server's port (TCP_MIGRATE
    /// lists every service endpoint of the other nodes, and a port names the application); null when none is known.
    /// </summary>
    public ServerEndpoint? NextAlternateServer() =>
        _alternateServers.Where(ServesThisConnection).Select(server => (ServerEndpoint?)server).FirstOrDefault();

    private bool ServesThisConnection(ServerEndpoint server) => server != _current.Peer && server.Port == _current.Peer.Port;

    /// <summary>The cooperating servers learned from TCP_MIGRATE on the servers' SYN+ACKs (thesis 4.2.3, fig. 4.6).</summary>
    public IReadOnlyList<ServerEndpoint> AlternateServers => _alternateServers;

    public bool IsMigrating => _migration is not null;

    public MtcpClientStats Stats { get; } = new();

    public long RetransmissionTimeouts => _retiredRetransmissionTimeouts + _current.Tcb.Stats.RetransmissionTimeouts;

    public PathMtuCounts PathMtu => _retiredPathMtu + _current.Tcb.Stats.PathMtu;

    /// <summary>The TCP state of the current control block.</summary>
    public TcpState State => _current.Tcb.State;

    /// <summary>The current control block (for inspection; the application uses this object's Read and Write).</summary>
    public TcpConnection CurrentControlBlock => _current.Tcb;

    public int BytesReadable
    {
        get
        {
            var readable = _current.Tcb.BytesReadable;
            foreach (var block in _draining)
            {
                readable += block.BytesReadable;
            }

            return readable;
        }
    }

    /// <summary>True once the connection can authenticate a migration: it has its secret.</summary>
    public bool CanMigrate => _secret is not null;

    /// <summary>Migrations completed so far (the epoch triggers are bound to).</summary>
    public uint MigrationEpoch => _epoch;

    /// <summary>The clear header of the client-stored state held for the current server; null when none is held.</summary>
    public ClientStateBlob? HeldClientState => _clientState is null ? null : _clientStateHeader;

    /// <summary>
    /// How far past RCV.NXT a CLIENT_STATE segment's sequence number may lie: the server sends it at its SND.MAX, at
    /// most a send buffer ahead, and a blind injection must guess both that and an acceptable ACK (as RFC 5961 asks of
    /// a RST).
    /// </summary>
    private const int ClientStateSequenceWindow = 1 << 22;

    /// <summary>
    /// Active open to <paramref name="server"/> (RFC 9293 §3.10.1); migrations are authenticated with the secret the
    /// server's SYN+ACK carries.
    /// </summary>
    public static MtcpClientConnection Connect(TcpConfig config, IpAddress localAddress, ushort localPort, ServerEndpoint server, SeqNumber iss, Instant now)
    {
        ArgumentNullException.ThrowIfNull(config);
        var tcb = TcpConnection.Connect(config, localPort, server.Port, iss, now);
        return new MtcpClientConnection(config, localAddress, new Block(tcb, server));
    }

    /// <summary>Writes to the socket's send buffer; while migrating the bytes wait in the old block, which does not send them.</summary>
    public int Write(ReadOnlySpan<byte> data) => _current.Tcb.Write(data);

    /// <summary>Reads the stream: what the previous server delivered first, then the current server's bytes.</summary>
    public int Read(Span<byte> destination)
    {
        var count = 0;
        while (_draining.TryPeek(out var draining) && count < destination.Length)
        {
            count += draining.Read(destination[count..]);
            if (draining.BytesReadable > 0)
            {
                return count;
            }

            _draining.Dequeue();
        }

        return count + _current.Tcb.Read(destination[count..]);
    }

    public void Close(Instant now) => _current.Tcb.Close(now);

    /// <summary>
    /// Starts migrating to <paramref name="destination"/> (thesis 4.2.3): a new control block sends a SYN carrying
    /// TCP_MIGRATED_CONN (the current Cid, this side's <c>rcv_nxt</c>, an authenticator). <paramref name="localPort"/>
    /// defaults to the current port; a fresh one avoids reusing a 4-tuple still held by a BLACKHOLE block.
    /// </summary>
    public void BeginMigration(Instant now, ServerEndpoint destination, SeqNumber iss, ushort? localPort = null)
    {
        if (!MigrationEnabled)
        {
            throw new InvalidOperationException("migration is not enabled for this connection");
        }

        if (_migration is not null)
        {
            throw new InvalidOperationException("a migration is already in progress");
        }

        if (destination == _current.Peer)
        {
            throw new ArgumentException("the connection is already on that server", nameof(destination));
        }

        // LAST-ACK too: the client's FIN and, with ack gating on a replicating server, bytes before it may still be
        // unacknowledged, and only another server can take them once this one is gone. The server end is then in
        // FIN-WAIT-1 or FIN-WAIT-2, states a state reply carries.
        var old = _current.Tcb;
        if (old.State is not (TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait or TcpState.Closing or TcpState.LastAck))
        {
            throw new InvalidOperationException($"cannot migrate a connection in {old.State}");
        }

        if (_secret is not { } secret)
        {
            throw new InvalidOperationException("the server gave no migration secret: the connection cannot migrate");
        }

        var port = localPort ?? old.LocalPort;
        var reopened = IndexOfBlackhole(destination, port);
        if (reopened >= 0)
        {
            // The connection goes back to a server it left on the same 4-tuple, still in BLACKHOLE: like a TIME-WAIT
            // 4-tuple reopened (RFC 1122 §4.2.2.13), the new block starts above every sequence number the old one
            // used, so no late segment of either incarnation is taken for the other's. The server does the same.
            iss = SeqNumber.Max(iss, _blackholes[reopened].SendMax + 1);
            _blackholes.RemoveAt(reopened);
        }

        var cid = Cid;
        var rcvNxt = old.ReceiveDataNext;
        var newEndpointCid = new ConnectionId(LocalAddress, port, destination.Address, destination.Port);
        var authenticator = new ConnectionAuthenticator(secret).MigratedConnection(cid, newEndpointCid, rcvNxt, _nextAttempt++);
        var option = MtcpMigratedConnection.ForDestination(destination.Address, _current.Peer, port == old.LocalPort ? null : old.LocalPort, rcvNxt, authenticator);
        var presented = _failingOver is not null ? PresentableClientState(old, option, destination) : null;
        var tcb = TcpConnection.Connect(_config, port, destination.Port, iss, now);
        tcb.KeepAliveIdle = old.KeepAliveIdle;

        // A failover skips a destination that does not answer soon: the next alternate may. A planned migration gives
        // up on a silent destination and stays where it is, rather than holding the connection for a connect timeout.
        var deadline = now + (_failingOver is not null ? _failover.SpecialSynTimeout
            : _failover.DestinationTimeout > TimeSpan.Zero ? _failover.DestinationTimeout
            : _config.ConnectTimeout);
        _migration = new Migration(new Block(tcb, destination), option, now, deadline, presented);
        Stats.MigrationsStarted++;
    }

    /// <summary>
    /// A segment from <paramref name="source"/> to this client's <paramref name="segment"/>.DestinationPort. Routed to
    /// the migrating block, the current block, or a BLACKHOLE block (swallowed); a MIGRATE_TRIGGER is handled here.
    /// </summary>
    public void HandleSegment(Instant now, ServerEndpoint source, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        if (segment.Options.MigrateTrigger is { } trigger)
        {
            OnTrigger(source, segment.DestinationPort, trigger);
            return;
        }

        if (segment.Options.ClientState)
        {
            OnClientState(source, segment, payload);
            return;
        }

        if (_migration is { } migration && migration.Next.Matches(source, segment.DestinationPort))
        {
            OnSegmentForNewBlock(now, migration, segment, payload);
            return;
        }

        if (_current.Matches(source, segment.DestinationPort))
        {
            OnSegmentForCurrentBlock(now, segment, payload);
            return;
        }

        foreach (var hole in _blackholes)
        {
            if (hole.Matches(source, segment.DestinationPort))
            {
                // BLACKHOLE (thesis 4.2.3 step 4): like TIME-WAIT, but nothing is sent back and nothing accepted.
                Stats.BlackholedSegments++;
                return;
            }
        }
    }

    public void BeginBurst()
    {
        _burst = (_current.Tcb, _migration?.Next.Tcb);
        _burst.Current.BeginBurst();
        _burst.Next?.BeginBurst();
    }

    public void EndBurst()
    {
        _burst.Current?.EndBurst();
        _burst.Next?.EndBurst();
        _burst = default;
    }

    /// <summary>The next segment to send and the server it goes to; call until false.</summary>
    public bool PollTransmit(Instant now, Span<byte> payloadBuffer, out ServerEndpoint destination, out TcpSegmentRepr header, out int payloadLength)
    {
        // SS_ISMIGRATING: the old block sends nothing until the migration ends one way or the other.
        if (_migration is null && _current.Tcb.PollTransmit(now, payloadBuffer, out header, out payloadLength))
        {
            destination = _current.Peer;
            if (_betaPending is { } beta)
            {
                header = header with { Options = header.Options with { Beta = beta } };
            }

            return true;
        }

        if (_migration is { } migration && migration.Next.Tcb.PollTransmit(now, payloadBuffer, out header, out payloadLength))
        {
            destination = migration.Next.Peer;
            if (header.Has(TcpFlags.Syn))
            {
                header = header with { Options = header.Options with { MigratedConnection = migration.Option } };
                if (migration.ClientState is { } state && payloadLength == 0 && state.Length <= payloadBuffer.Length)
                {
                    // After a crash: the sealed state rides on the special SYN, for any node of the service to resume from.
                    header = header with { Options = header.Options with { ClientState = true } };
                    state.CopyTo(payloadBuffer);
                    payloadLength = state.Length;
                }

                if (header.Options.BufferLength > TcpSegment.MaxOptionsLength)
                {
                    // An IPv6 origin on another subnet than the destination (36 option bytes) leaves room for the MSS
                    // only: the new block goes without window scaling and SACK, which the server then does not
                    // offer either (RFC 7323 §1.3, RFC 2018 §2), rather than the SYN not going out at all.
                    header = header with { Options = header.Options with { WindowScale = null, SackPermitted = false } };
                }

                if (header.Options.BufferLength > TcpSegment.MaxOptionsLength)
                {
                    // With the client's port too (38 bytes) not even the MSS fits: the server then sends segments of
                    // the default MSS, 536 bytes (RFC 9293 §3.7.1), small but correct on any path. BeginMigration has
                    // already left out the client-state flag where it could not fit beside the option alone.
                    header = header with { Options = header.Options with { MaxSegmentSize = null } };
                }
            }

            return true;
        }

        destination = default;
        header = default;
        payloadLength = 0;
        return false;
    }

    bool IPolledEndpoint.PollTransmit(Instant now, Span<byte> payloadBuffer, out IpAddress destination, out TcpSegmentRepr header, out int payloadLength)
    {
        var polled = PollTransmit(now, payloadBuffer, out var server, out header, out payloadLength);
        destination = server.Address;
        return polled;
    }

    /// <summary>Application events: the stream's, not the control blocks' (a migration is invisible).</summary>
    public bool PollEvent(out TcpEvent e) => _carriedEvents.TryDequeue(out e) || TryTakeEvent(_current.Tcb, out e);

    public bool PollMigrationEvent(out MigrationEvent e) => _migrationEvents.TryDequeue(out e);

    public Instant? PollTimeout()
    {
        var earliest = _migration is { } migration
            ? Instant.Earliest(migration.Deadline, migration.Next.Tcb.PollTimeout())
            : _current.Tcb.PollTimeout();
        foreach (var hole in _blackholes)
        {
            earliest = Instant.Earliest(earliest, hole.Until);
        }

        return Instant.Earliest(Instant.Earliest(earliest, _failingOver?.GiveUpAt), _failingOver?.NextPassAt);
    }

    public void HandleTimeout(Instant now)
    {
        _blackholes.RemoveAll(hole => hole.Until <= now);
        if (_failingOver is { } failingOver && failingOver.GiveUpAt <= now)
        {
            GiveUp(now, failingOver);
            return;
        }

        if (_failingOver is { NextPassAt: { } nextPass } waiting && nextPass <= now)
        {
            _failingOver = waiting with { NextPassAt = null };
            OfferNextFailoverDestination(now);
        }

        if (_migration is { } migration)
        {
            if (migration.Deadline <= now)
            {
                FailMigration(now, migration, $"no SYN+ACK from the destination within {(migration.Deadline - migration.StartedAt).TotalSeconds:0.###} s");
            }
            else if (migration.Next.Tcb.PollTimeout() is { } due && due <= now)
            {
                migration.Next.Tcb.HandleTimeout(now);
                if (migration.Next.Tcb.State == TcpState.Closed)
                {
                    FailMigration(now, migration, "the special SYN went unanswered");
                }
            }

            if (_migration is not null)
            {
                return;
            }
        }

        if (_current.Tcb.PollTimeout() is { } currentDue && currentDue <= now)
        {
            _current.Tcb.HandleTimeout(now);
            if (_failingOver is null && CurrentServerSilent())
            {
                BeginFailover(now);
            }
        }
    }

    /// <summary>
    /// The current server left <see cref="ClientFailover.SilentAfter"/> retransmission timeouts or keep-alive probes in
    /// a row unanswered, on a connection that could migrate.
    /// </summary>
    private bool CurrentServerSilent()
    {
        var tcb = _current.Tcb;
        return _failover.Enabled && MigrationEnabled && _secret is not null
            && tcb.State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait or TcpState.Closing or TcpState.LastAck
            && Math.Max(tcb.TimeoutsSinceHeard, tcb.UnansweredKeepAlives - 1) >= _failover.SilentAfter;
    }

    private void BeginFailover(Instant now)
    {
        var tcb = _current.Tcb;
        var why = tcb.TimeoutsSinceHeard >= _failover.SilentAfter
            ? $"{tcb.TimeoutsSinceHeard} retransmission timeouts in a row, nothing heard"
            : $"{tcb.UnansweredKeepAlives - 1} keep-alive probes unanswered";
        _failingOver = new FailoverAttempt(_current.Peer, now + _failover.GiveUpAfter, [_current.Peer], tcb.LastHeardAt);
        Stats.ServersFallenSilent++;
        _migrationEvents.Enqueue(new MigrationEvent(MigrationEventKind.ServerSilent, _current.Peer, why));
        OfferNextFailoverDestination(now);
    }

    /// <summary>
    /// The next alternate not tried yet in this pass. When every one was tried, another pass follows a special SYN
    /// timeout later, until the give-up time: a buddy answers from its replica only once its own failure detector has
    /// marked the server unreachable, which may come after the client found it silent. Without any alternate (the
    /// server died before a segment carrying TCP_MIGRATE reached the client: its SYN+ACK has no room for one beside the
    /// migration secret) the client waits until the give-up time all the same: the buddy's takeover MIGRATE_TRIGGER,
    /// which names the buddy, is the only way left for the connection to survive.
    /// </summary>
    private void OfferNextFailoverDestination(Instant now)
    {
        if (_failingOver is not { NextPassAt: null } failingOver)
        {
            return;
        }

        foreach (var candidate in _alternateServers)
        {
            if (ServesThisConnection(candidate) && failingOver.Tried.Add(candidate))
            {
                _migrationEvents.Enqueue(new MigrationEvent(MigrationEventKind.FailoverTo, candidate));
                return;
            }
        }

        var nextPass = now + _failover.SpecialSynTimeout;
        if (nextPass < failingOver.GiveUpAt)
        {
            _failingOver = failingOver with { Tried = [failingOver.SilentServer], NextPassAt = nextPass };
            return;
        }

        GiveUp(now, failingOver);
    }

    /// <summary>
    /// The silent server was heard again (a segment that shows it alive: an acknowledgment, data, an answer to a probe)
    /// before any alternate took the connection over: it was slow, not dead, so the failover is called off and the
    /// connection stays, where giving up would abort a live connection. A migration the failover started goes on: it
    /// either completes, as any migration does, or fails and leaves the connection where it is.
    /// </summary>
    private void CallOffFailoverIfHeard()
    {
        if (_failingOver is { } failingOver && failingOver.SilentServer == _current.Peer && _current.Tcb.LastHeardAt > failingOver.LastHeardAt)
        {
            _failingOver = null;
            Stats.FailoversCalledOff++;
            _migrationEvents.Enqueue(new MigrationEvent(MigrationEventKind.ServerHeardAgain, failingOver.SilentServer));
        }
    }

    /// <summary>No alternate took the connection over in time: abort it, and tell the application it timed out.</summary>
    private void GiveUp(Instant now, FailoverAttempt failingOver)
    {
        _failingOver = null;
        if (_migration is { } migration)
        {
            FailMigration(now, migration, "the failover gave up");
        }

        var tried = _alternateServers.Count(candidate => ServesThisConnection(candidate) && candidate != failingOver.SilentServer);
        Stats.FailoversAbandoned++;
        _migrationEvents.Enqueue(new MigrationEvent(
            MigrationEventKind.FailoverAbandoned,
            failingOver.SilentServer,
            tried == 0
                ? "no alternate server of this service is known"
                : $"none of {tried} alternate servers of the service took the connection over"));
        _current.Tcb.GiveUp(now);
    }

    private void OnSegmentForCurrentBlock(Instant now, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        var tcb = _current.Tcb;
        var wasSynSent = tcb.State == TcpState.SynSent;

        if (_betaPending is not null && !segment.Has(TcpFlags.Syn))
        {
            // The new server sends non-SYN segments only once ESTABLISHED, i.e. once it has taken β.
            _betaPending = null;
        }

        if (_migration is not null && segment.Has(TcpFlags.Ack) && segment.AcknowledgmentNumber != tcb.SendUnacknowledged && !segment.Has(TcpFlags.Rst))
        {
            // Thesis 4.2.3, fig. 4.12: an ACK from the old server after the state left it could free bytes the new
            // server never got; its data is still taken. The implicit ACK at the switch makes up for it.
            Stats.AcksIgnoredWhileMigrating++;
            tcb.HandleSegment(now, segment with { AcknowledgmentNumber = tcb.SendUnacknowledged }, payload);
            CallOffFailoverIfHeard();
            return;
        }

        tcb.HandleSegment(now, segment, payload);
        CallOffFailoverIfHeard();
        if (wasSynSent && tcb.State is not (TcpState.SynSent or TcpState.Closed))
        {
            // The origin's SYN+ACK, accepted: it acknowledged our ISN, so it is no blind injection. Only this
            // segment gives the secret, and TCP_MIGRATE rides on it (thesis 4.2.3, fig. 4.6).
            if (_secret is null && segment.Options.MigrationSecret is { } issued)
            {
                Span<byte> bytes = stackalloc byte[MigrationSecret.Length];
                issued.WriteTo(bytes);
                _secret = MigrationSecret.FromBytes(bytes);
            }

            LearnAlternateServers(segment.Options);
        }
        else if (tcb.LastSegmentInWindow)
        {
            // Alternates the SYN+ACK had no room for beside the secret follow on in-window segments.
            LearnAlternateServers(segment.Options);
        }
    }

    private void OnSegmentForNewBlock(Instant now, Migration migration, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        var next = migration.Next.Tcb;
        if (segment.Has(TcpFlags.Syn) && segment.Has(TcpFlags.Ack) && segment.Options.OrigConnectionInfo is null && !segment.Has(TcpFlags.Rst))
        {
            // A SYN+ACK without the origin's sequence information cannot be switched to safely: refuse it.
            FailMigration(now, migration, "SYN+ACK without orig-connection-info");
            return;
        }

        next.HandleSegment(now, segment, payload);
        if (next.State == TcpState.Closed)
        {
            FailMigration(now, migration, "the destination refused the migration");
        }
        else if (next.State != TcpState.SynSent && segment.Options.OrigConnectionInfo is { } info)
        {
            LearnAlternateServers(segment.Options);
            Switch(now, migration, info);
        }
    }

    /// <summary>The switch on the new server's SYN+ACK (thesis 4.2.3, client steps 1-5).</summary>
    private void Switch(Instant now, Migration migration, MtcpOrigConnectionInfo info)
    {
        var old = _current;
        var next = migration.Next.Tcb;
        _migration = null;

        // Step 2(d): t_last_rcv_nxt; step 5: β = t_last_rcv_nxt - snd_max_seen, bytes the client has beyond the
        // new server's copy of the stream.
        var tLastRcvNxt = old.Tcb.ReceiveDataNext;
        var beta = (uint)Math.Max(0, tLastRcvNxt - info.SndMaxSeen);

        // Step 3: the implicit ACK from the origin's last_ack_sent prunes the send buffer; the rest moves over.
        var writeEnd = old.Tcb.WriteEnd;
        var from = SeqNumber.Max(old.Tcb.SendDataStart, SeqNumber.Min(info.LastAckSent, writeEnd));
        var carried = new byte[writeEnd - from];
        old.Tcb.CopyUnacknowledged(from, writeEnd, carried);
        var written = next.Write(carried);
        if (written != carried.Length)
        {
            throw new InvalidOperationException($"the new control block took {written} of {carried.Length} unacknowledged bytes");
        }

        if (old.Tcb.FinQueued)
        {
            var finAcknowledged = old.Tcb.FinAcknowledged || info.LastAckSent == writeEnd + 1;
            if (finAcknowledged && carried.Length == 0)
            {
                next.AdoptAcknowledgedFin(now);
            }
            else
            {
                next.Close(now);
            }
        }

        // Step 4: the old 4-tuple goes to BLACKHOLE for 2 MSL; what the old block received stays readable, ahead of
        // the new bytes. The blackhole keeps only the 4-tuple, the old block's SND.MAX (the floor of a later
        // incarnation's ISS, should the connection come back on this 4-tuple) and its expiry; the old block keeps
        // nothing it will send.
        _blackholes.Add(new Blackhole(old.Peer, old.Tcb.LocalPort, old.Tcb.SendMax, now + _config.TwoMsl));
        old.Tcb.DiscardUnacknowledged();
        if (old.Tcb.BytesReadable > 0)
        {
            _draining.Enqueue(old.Tcb);
        }

        // What the old block raised and the application has not seen yet stays for it, in order.
        while (TryTakeEvent(old.Tcb, out var pending))
        {
            _carriedEvents.Enqueue(pending);
        }

        if (old.Tcb.PeerFinReceived)
        {
            _peerClosedReported = true;
        }

        _retiredRetransmissionTimeouts += old.Tcb.Stats.RetransmissionTimeouts;
        _retiredPathMtu += old.Tcb.Stats.PathMtu;
        _current = migration.Next;
        _clientState = null;
        if (_failingOver is not null)
        {
            _failingOver = null;
            Stats.Failovers++;
        }

        _epoch++;
        _betaPending = beta;
        _connectedReported = true;
        Stats.MigrationsCompleted++;
        _migrationEvents.Enqueue(new MigrationEvent(MigrationEventKind.Completed, migration.Next.Peer));
    }

    private int IndexOfBlackhole(ServerEndpoint peer, ushort localPort)
    {
        for (var i = 0; i < _blackholes.Count; i++)
        {
            if (_blackholes[i].Matches(peer, localPort))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The next event of <paramref name="tcb"/> the application should see: one Connected, one PeerClosed.</summary>
    private bool TryTakeEvent(TcpConnection tcb, out TcpEvent e)
    {
        while (tcb.PollEvent(out e))
        {
            switch (e)
            {
                case TcpEvent.Connected when _connectedReported:
                case TcpEvent.PeerClosed when _peerClosedReported:
                    continue;
                case TcpEvent.Connected:
                    _connectedReported = true;
                    return true;
                case TcpEvent.PeerClosed:
                    _peerClosedReported = true;
                    return true;
                default:
                    return true;
            }
        }

        return false;
    }

    /// <summary>The connection stays on its server; during a failover the next alternate is offered at once.</summary>
    private void FailMigration(Instant now, Migration migration, string detail)
    {
        _migration = null;
        Stats.MigrationsFailed++;
        _migrationEvents.Enqueue(new MigrationEvent(MigrationEventKind.Failed, migration.Next.Peer, detail));
        OfferNextFailoverDestination(now);
    }

    /// <summary>MIGRATE_TRIGGER (thesis 3.2.1): acted on only for the current Cid and with a valid authenticator.</summary>
    private void OnTrigger(ServerEndpoint source, ushort clientPort, MtcpMigrateTrigger trigger)
    {
        if (!MigrationEnabled)
        {
            Stats.TriggersIgnored++;
            return;
        }

        var cid = trigger.ToConnectionId(source, LocalAddress, clientPort);
        ServerEndpoint? named = trigger.Destination is { } target ? target.Server ?? source : null;
        if (cid != Cid || !VerifyTrigger(trigger, cid, source))
        {
            Stats.ForgedTriggersIgnored++;
            return;
        }

        // An authenticated trigger that names a server announces an alternate: one the client keeps, so that a trigger
        // that came while another migration was in flight (a takeover's, naming the buddy) still counts at the next
        // failover pass.
        if (named is { } announced && !_alternateServers.Contains(announced))
        {
            _alternateServers.Add(announced);
        }

        var destination = named ?? NextAlternateServer();
        if (destination is not { } chosen || _migration is not null)
        {
            return;
        }

        Stats.TriggersAccepted++;
        _migrationEvents.Enqueue(new MigrationEvent(MigrationEventKind.TriggerAccepted, chosen));
    }

    /// <summary>
    /// CLIENT_STATE from the current server: a sealed state to keep (client-stored state, docs/failover.md). It cannot be
    /// checked here (only the cluster can open it), so a blind injection is kept out as RFC 5961 keeps out a RST: it
    /// must come from the current server's 4-tuple, acknowledge what this side sent, and lie just past RCV.NXT; and it
    /// must be newer than the one held.
    /// </summary>
    private void OnClientState(ServerEndpoint source, in TcpSegmentRepr segment, ReadOnlySpan<byte> payload)
    {
        var tcb = _current.Tcb;
        var acceptable = MigrationEnabled && !segment.Has(TcpFlags.Syn | TcpFlags.Rst) && segment.Has(TcpFlags.Ack)
            && _current.Matches(source, segment.DestinationPort)
            && tcb.State is not (TcpState.SynSent or TcpState.Closed)
            && segment.AcknowledgmentNumber >= tcb.SendUnacknowledged && segment.AcknowledgmentNumber <= tcb.SendMax
            && segment.SequenceNumber - tcb.ReceiveNext is >= 0 and < ClientStateSequenceWindow;
        if (!acceptable || !ClientStateBlob.TryReadHeader(payload, out var header)
            || (_clientState is not null && header.Sequence <= _clientStateHeader.Sequence))
        {
            Stats.ClientStatesIgnored++;
            return;
        }

        _clientState = payload.ToArray();
        _clientStateHeader = header;
        Stats.ClientStatesHeld++;
    }

    /// <summary>
    /// The held state, if the special SYN of a failover can present it: it must cover every byte of this side's the
    /// server acknowledged (the send buffer keeps only the bytes past the last ACK, and the new server resumes the
    /// client's stream where the state's read log ends).
    /// </summary>
    private byte[]? PresentableClientState(TcpConnection old, MtcpMigratedConnection option, ServerEndpoint destination)
    {
        if (_clientState is not { } state)
        {
            return null;
        }

        if (option.BufferLength + MtcpOption.ClientStateLength > TcpSegment.MaxOptionsLength)
        {
            // An IPv6 origin on another /64 than the destination travels whole (36 or 38 option bytes): the special
            // SYN has no room for the client-state flag (5) beside it, and the state goes unused on this attempt.
            Stats.ClientStatesUnusable++;
            _migrationEvents.Enqueue(new MigrationEvent(
                MigrationEventKind.ClientStateUnusable,
                _current.Peer,
                $"the special SYN to {destination} has no room for it: TCP_MIGRATED_CONN naming an IPv6 origin on another /64 takes {option.BufferLength} of the {TcpSegment.MaxOptionsLength} option bytes, the client-state flag {MtcpOption.ClientStateLength} more"));
            return null;
        }

        var covers = _clientStateHeader.Covers;
        if (covers < old.SendDataStart || covers > old.WriteEnd + 1)
        {
            Stats.ClientStatesUnusable++;
            _migrationEvents.Enqueue(new MigrationEvent(
                MigrationEventKind.ClientStateUnusable,
                _current.Peer,
                $"the held state {_clientStateHeader.Sequence} covers this side's bytes to {covers}, the server acknowledged them to {old.SendDataStart}"));
            return null;
        }

        Stats.ClientStatesPresented++;
        return state;
    }

    private bool VerifyTrigger(MtcpMigrateTrigger trigger, ConnectionId cid, ServerEndpoint source) =>
        _secret is { } secret && new ConnectionAuthenticator(secret).VerifyTrigger(trigger, cid, source, _epoch) == TriggerCheck.Accepted;

    private void LearnAlternateServers(in TcpOptions options)
    {
        if (options.AlternateServers is not { } alternates)
        {
            return;
        }

        foreach (var server in alternates.Servers)
        {
            if (!_alternateServers.Contains(server))
            {
                _alternateServers.Add(server);
            }
        }
    }

    private readonly record struct Block(TcpConnection Tcb, ServerEndpoint Peer)
    {
        public bool Matches(ServerEndpoint source, ushort localPort) => source == Peer && localPort == Tcb.LocalPort;
    }

    /// <summary>
    /// A 4-tuple in BLACKHOLE: segments from <paramref name="Peer"/> to <paramref name="LocalPort"/> are dropped until
    /// <paramref name="Until"/>; <paramref name="SendMax"/> is the left block's SND.MAX.
    /// </summary>
    private readonly record struct Blackhole(ServerEndpoint Peer, ushort LocalPort, SeqNumber SendMax, Instant Until)
    {
        public bool Matches(ServerEndpoint source, ushort localPort) => source == Peer && localPort == LocalPort;
    }

    /// <param name="ClientState">the sealed state the special SYN presents (a failover's, with client-stored state); null for none.</param>
    private sealed record Migration(Block Next, MtcpMigratedConnection Option, Instant StartedAt, Instant Deadline, byte[]? ClientState);

    /// <param name="LastHeardAt">when the silent server was last heard from before it fell silent: a segment heard later calls the failover off.</param>
    /// <param name="NextPassAt">when every alternate was tried: the time of the next pass over them, before <paramref name="GiveUpAt"/>.</param>
    private sealed record FailoverAttempt(ServerEndpoint SilentServer, Instant GiveUpAt, HashSet<ServerEndpoint> Tried, Instant LastHeardAt, Instant? NextPassAt = null);
}

using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// The client end of one connection (thesis 4.2.3, fig. 4.7): it drives one <see cref="MtcpClientConnection"/>, the
/// socket over two control blocks, through the same <see cref="EndpointDriver"/> as <see cref="ServerEndpointActor"/>.
/// With migration off on this runtime it is a plain TCP client: the connection never migrates and ignores triggers. While migrating, both
/// 4-tuples (old and new server) are registered in the connection table to this actor; every segment goes to the
/// server <see cref="MtcpClientConnection.PollTransmit"/> names. A migration keeps the local port where the new
/// 4-tuple is free and takes another only where it is not (<see cref="TryClaimPort"/>; TCP_MIGRATED_CONN carries the
/// old Cid either way). A left 4-tuple stays routed here for 2 MSL (BLACKHOLE), then is freed; going back to the server
/// just left takes that 4-tuple back with sequence numbers above the old incarnation's. The application's stream never sees a migration;
/// <see cref="MigrateRequested"/> and authenticated MIGRATE_TRIGGERs start one, and each end is reported.
/// </summary>
internal sealed class ClientEndpointActor : UntypedActor, IWithTimers
{

    private readonly EndpointContext _context;
    private readonly ConnectionKey _key;
    private readonly MtcpClientConnection _client;
    private readonly EndpointDriver _driver;
    private readonly EndpointChannel _channel;
    private readonly TaskCompletionSource<EndpointChannel> _connectCompletion;
    private readonly CancellationToken _connectCancellation;
    /// <summary>Made on the first line logged: most endpoints log none, and an adapter per actor costs its path's string.</summary>
    private ILoggingAdapter? _log;

    /// <summary>Every 4-tuple this actor holds in the connection table: the current one, a migration's, and left ones for 2 MSL.</summary>
    private readonly HashSet<ConnectionKey> _keys = [];

    /// <summary>The left ones of <see cref="_keys"/> with their release times, which the engine timer also fires for.</summary>
    private readonly TupleHolds<ConnectionKey> _holds = new();

    private ConnectionKey _currentKey;

    private CancellationTokenRegistration _connectCancellationRegistration;
    private readonly Action _onConnected;
    private readonly Action<string> _onFailed;
    private bool _connected;
    private PendingMigration? _migration;
    private Instant _opened;

    public ClientEndpointActor(EndpointContext context, ConnectionKey key, bool migrationEnabled, TaskCompletionSource<EndpointChannel> connected, CancellationToken cancellation)
    {
        _context = context;
        _key = key;
        _connectCompletion = connected;
        _connectCancellation = cancellation;
        _channel = new EndpointChannel(Self, context.LocalAddress, key, new ConnectionId(context.LocalAddress, key.LocalPort, key.RemoteAddress, key.RemotePort));
        _client = MtcpClientConnection.Connect(context.TcpTo(key.RemoteAddress), context.LocalAddress, key.LocalPort, new ServerEndpoint(key.RemoteAddress, key.RemotePort), context.NextIss(key), context.Clock.Now);
        _client.MigrationEnabled = migrationEnabled;
        if (migrationEnabled && context.Migration?.Failover is { } failover)
        {
            _client.Failover = failover;
        }
        _driver = new EndpointDriver(context, _client, _channel, new ClientConnectionBuffers(_client));
        _onConnected = OnConnected;
        _onFailed = FailAll;
        HoldKey(key);
        _currentKey = key;
    }

    /// <summary>
    /// One switch over the message types, built once with the type rather than a <see cref="ReceiveActor"/> handler
    /// table per actor (an actor per connection).
    /// </summary>
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case OpenActive:
                _opened = _context.Clock.Now;
                Drive(_opened);
                break;
            case ConnectCancelled:
                _connectCompletion.TrySetCanceled(_connectCancellation);
                Abort();
                break;
            case InboundSegment segment:
                OnSegment(segment);
                break;
            case InboundBurst burst:
                OnBurst(burst);
                break;
            case ThirdPartyTriggerReceived trigger:
                OnSegment(trigger.Segment);
                break;
            case PacketTooBigReceived report:
                OnPacketTooBig(report);
                break;
            case EngineTick:
                OnTick();
                break;
            case AbortRequested:
                Abort();
                break;
            case ReadRequested:
                _driver.Stream.ServeRead();

                // Reading may have opened the window enough to announce it (RFC 1122 §4.2.3.3).
                Drive(_context.Clock.Now);
                break;
            case WriteRequested:
                _driver.Stream.ServeWrite();
                Drive(_context.Clock.Now);
                break;
            case CloseRequested:
                OnClose();
                break;
            case MigrateRequested request:
                OnMigrateRequested(request);
                break;
            case EndpointRetired:
                Context.Stop(Self);
                break;
            case AlternateServersRequested request:
                request.Completion.TrySetResult(_client.AlternateServers.ToArray());
                break;
            case ReleaseKey release:
                ReleaseNow(release.Key);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnTick()
    {
        var now = _context.Clock.Now;
        var server = _client.CurrentServer;
        var block = _client.CurrentControlBlock;
        block.PeerHostHeard(_context.ServersHeard.LastHeard(server));
        block.PeerHostProbed(_context.ServersHeard.ProbeAwaitingAnswer(server));
        var unanswered = block.UnansweredKeepAlives;
        _driver.OnTick(now);
        if (unanswered == 0 && block.UnansweredKeepAlives == 1)
        {
            _context.ServersHeard.Probed(server, now);
        }

        while (_holds.PollReleased(now, out var released))
        {
            ReleaseNow(released);
        }

        Drive(now);
    }

    private void OnClose()
    {
        var now = _context.Clock.Now;
        _client.Close(now);
        Drive(now);
    }

    private void ReleaseNow(ConnectionKey key)
    {
        if (key != _currentKey && _migration?.Key != key && _keys.Remove(key))
        {
            _context.Table.RemoveEndpoint(key, Self);
            MigrationMetrics.PortsHeld.Add(-1);
        }
    }

    private ILoggingAdapter Log => _log ??= Context.GetLogger();

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The active side; completes <paramref name="connected"/> once established (or fails it). Sends its SYN on <see cref="OpenActive"/>.</summary>
    public static Props Props(EndpointContext context, ConnectionKey key, bool migrationEnabled, TaskCompletionSource<EndpointChannel> connected, CancellationToken cancellation) =>
        FactoryProps.Create(() => new ClientEndpointActor(context, key, migrationEnabled, connected, cancellation));

    protected override void PreStart()
    {
        if (_connectCancellation.CanBeCanceled)
        {
            _connectCancellationRegistration = _connectCancellation.UnsafeRegister(static self => ((IActorRef)self!).Tell(ConnectCancelled.Instance), Self);
        }

        base.PreStart();
    }

    private void OnSegment(InboundSegment segment)
    {
        var now = _context.Clock.Now;
        Handle(now, segment);
        Drive(now);
    }

    /// <summary>
    /// Segments the receive thread read together: the connection takes them as one burst (one ACK for their in-order
    /// data, <see cref="TcpConnection.BeginBurst"/>), then sends what became sendable once.
    /// </summary>
    private void OnBurst(InboundBurst burst)
    {
        var now = _context.Clock.Now;
        _client.BeginBurst();
        try
        {
            foreach (var segment in burst.Segments)
            {
                Handle(now, segment);
            }
        }
        finally
        {
            _client.EndBurst();
        }

        Drive(now);
    }

    private void Handle(Instant now, InboundSegment segment)
    {
        try
        {
            _client.HandleSegment(now, new ServerEndpoint(segment.Key.RemoteAddress, segment.Key.RemotePort), segment.Header, segment.Payload);
        }
        finally
        {
            segment.Release();
        }

        if (_client.CurrentControlBlock.LastHeardAt == now)
        {
            _context.ServersHeard.Heard(_client.CurrentServer, now);
        }
    }

    /// <summary>Only for the control block that sends: during a migration the origin's stops sending (SS_ISMIGRATING).</summary>
    private void OnPacketTooBig(PacketTooBigReceived report)
    {
        if (report.Peer == _client.CurrentServer.Address
            && _driver.ApplyPacketTooBig(_client.CurrentControlBlock, report) is PacketTooBigVerdict.Lowered or PacketTooBigVerdict.ProbeTooBig)
        {
            Drive(_context.Clock.Now);
        }
    }

    private void OnMigrateRequested(MigrateRequested request)
    {
        if (!_connected)
        {
            request.Completion.TrySetException(new InvalidOperationException("the connection is not established"));
            return;
        }

        if (_client.IsMigrating)
        {
            request.Completion.TrySetException(new InvalidOperationException("a migration is already in progress"));
            return;
        }

        var current = _client.CurrentServer;
        var chosen = request.Destination ?? _client.NextAlternateServer();
        if (chosen is not { } destination)
        {
            request.Completion.TrySetException(new InvalidOperationException($"no destination given and no alternate server of port {current.Port} learned from {current}"));
            return;
        }

        StartMigration(destination, request.Completion, triggered: false, failedOver: false);
    }

    /// <summary>Thesis 4.2.3 client step 1: the new 4-tuple is routed here before the special SYN leaves.</summary>
    private void StartMigration(ServerEndpoint destination, TaskCompletionSource<MigrationReport>? completion, bool triggered, bool failedOver)
    {
        var now = _context.Clock.Now;
        var from = _client.CurrentServer;
        if (!TryClaimPort(destination, out var key, out var reclaimed))
        {
            var (first, last) = _context.EphemeralPorts;
            var exhausted = new IOException(
                $"no free local port towards {destination}: each of the {last - first + 1} ports of the ephemeral range {first}-{last} is in use " +
                $"or held for 2 MSL ({_context.Tcp.TwoMsl.TotalSeconds:0.#} s) by a connection that left {destination} on it; widen " +
                "mtcp.runtime.ephemeral-port-first/-last or give the client more local addresses");
            MigrationMetrics.PortsExhausted.Add(1, new KeyValuePair<string, object?>("side", "migration"));
            Log.Warning("client {0}: migration to {1} refused: {2}", _key, destination, exhausted.Message);
            completion?.TrySetException(exhausted);
            return;
        }

        try
        {
            _client.BeginMigration(now, destination, _context.NextIss(key), key.LocalPort);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // A 4-tuple taken back from BLACKHOLE goes back to it; a fresh one is free at once.
            Release(key, reclaimed ? _context.Tcp.TwoMsl : TimeSpan.Zero);
            completion?.TrySetException(e);
            return;
        }

        _migration = new PendingMigration(from, destination, key, now, triggered, failedOver, completion);
        MigrationMetrics.Started.Add(1);
        Drive(now);
    }

    /// <summary>
    /// A 4-tuple towards <paramref name="destination"/> for a migration, routed here. The connection keeps its local
    /// port where that 4-tuple is free (thesis 4.2.3: the new endpoint's Cid differs from the old one only in the
    /// server), so a port is held for 2 MSL only towards the server it left, where the same 4-tuple could be reused.
    /// A 4-tuple this connection itself left in BLACKHOLE is taken back: the new incarnation starts above the old
    /// one's sequence numbers on both ends (RFC 1122 §4.2.2.13), so a connection moving back and forth holds two
    /// 4-tuples, not one per migration. Otherwise the first free port of the ephemeral range.
    /// </summary>
    private bool TryClaimPort(ServerEndpoint destination, out ConnectionKey key, out bool reclaimed)
    {
        key = new ConnectionKey(destination.Address, destination.Port, _currentKey.LocalPort);
        if (TryClaim(key, out reclaimed))
        {
            return true;
        }

        var (first, last) = _context.EphemeralPorts;
        var count = last - first + 1;
        var start = Random.Shared.Next(count);
        for (var attempt = 0; attempt < count; attempt++)
        {
            key = new ConnectionKey(destination.Address, destination.Port, (ushort)(first + ((start + attempt) % count)));
            if (TryClaim(key, out reclaimed))
            {
                return true;
            }
        }

        key = default;
        return false;
    }

    private bool TryClaim(ConnectionKey key, out bool reclaimed)
    {
        reclaimed = false;
        if (key == _currentKey || key == _migration?.Key)
        {
            return false;
        }

        if (_keys.Contains(key))
        {
            // Left in BLACKHOLE by this connection: taken back.
            _holds.TakeBack(key);
            reclaimed = true;
            return true;
        }

        if (_context.Table.IsListening(key.LocalPort) || !_context.Table.TryAddEndpoint(key, Self))
        {
            return false;
        }

        HoldKey(key);
        return true;
    }

    private void HoldKey(ConnectionKey key)
    {
        _keys.Add(key);
        MigrationMetrics.PortsHeld.Add(1);
    }

    /// <summary>
    /// Frees a 4-tuple this connection no longer uses, after <paramref name="after"/> (2 MSL for one it left: BLACKHOLE),
    /// when the engine timer fires at its release time.
    /// </summary>
    private void Release(ConnectionKey key, TimeSpan after)
    {
        if (after <= TimeSpan.Zero)
        {
            Self.Tell(new ReleaseKey(key));
            return;
        }

        var now = _context.Clock.Now;
        _holds.Hold(key, now + after);
        _driver.ArmTimer(Timers, now, _holds.PollTimeout());
    }

    private void Drive(Instant now)
    {
        do
        {
            _driver.Transmit(now);
        }
        while (_driver.DrainEvents(_onConnected, _onFailed) | DrainMigrationEvents(now));

        if (_client.State == TcpState.Closed && !_client.IsMigrating)
        {
            _driver.Retire(Self, _keys, Timers);
            return;
        }

        _driver.ArmTimer(Timers, now, _holds.PollTimeout());
    }

    private void OnConnected()
    {
        _connected = true;
        if (_client.MigrationEnabled)
        {
            MigrationMetrics.HandshakeDuration.Record((_context.Clock.Now - _opened).TotalSeconds);
        }

        _connectCancellationRegistration.Unregister();
        if (!_connectCompletion.TrySetResult(_channel))
        {
            // The caller cancelled while the handshake was in flight: nobody will use this connection.
            _client.CurrentControlBlock.Abort(_context.Clock.Now);
        }
    }

    private bool DrainMigrationEvents(Instant now)
    {
        var any = false;
        while (_client.PollMigrationEvent(out var e))
        {
            any = true;
            switch (e.Kind)
            {
                case MigrationEventKind.TriggerAccepted when !_client.IsMigrating:
                    StartMigration(e.Destination, completion: null, triggered: true, failedOver: false);
                    break;
                case MigrationEventKind.FailoverTo when !_client.IsMigrating:
                    StartMigration(e.Destination, completion: null, triggered: false, failedOver: true);
                    break;
                case MigrationEventKind.ServerSilent:
                    MigrationMetrics.FailoversStarted.Add(1);
                    Log.Warning("client {0}: server {1} fell silent ({2}); failing over to the alternates serving port {3}", _key, e.Destination, e.Detail, e.Destination.Port);
                    break;
                case MigrationEventKind.ServerHeardAgain:
                    MigrationMetrics.FailoversCalledOff.Add(1);
                    Log.Warning("client {0}: server {1} answered again; the failover is called off and the connection stays", _key, e.Destination);
                    break;
                case MigrationEventKind.ClientStateUnusable:
                    Log.Warning("client {0}: the failover from {1} goes without the held client-stored state: {2}", _key, e.Destination, e.Detail);
                    break;
                case MigrationEventKind.FailoverAbandoned:
                    MigrationMetrics.FailoversAbandoned.Add(1);
                    Log.Warning("client {0}: failover from silent server {1} gave up ({2}); the connection is aborted", _key, e.Destination, e.Detail);
                    break;
                case MigrationEventKind.Completed or MigrationEventKind.Failed when _migration is { } migration:
                    _migration = null;
                    var completed = e.Kind == MigrationEventKind.Completed;
                    var left = completed ? _currentKey : migration.Key;
                    if (completed)
                    {
                        _currentKey = migration.Key;
                        _channel.Key = migration.Key;
                    }

                    Release(left, _context.Tcp.TwoMsl);
                    var report = new MigrationReport(
                        completed ? MigrationOutcome.Completed : MigrationOutcome.Failed,
                        migration.From,
                        migration.To,
                        now - migration.Started,
                        migration.Triggered,
                        completed ? null : e.Detail,
                        migration.FailedOver);
                    Report(report);
                    migration.Completion?.TrySetResult(report);

                    // After a switch the stream reads the old block's bytes, then the new one's, and writes to the new one.
                    _driver.Stream.ServeRead();
                    _driver.Stream.ServeWrite();
                    break;
            }
        }

        return any;
    }

    private void Report(MigrationReport report)
    {
        if (report.Outcome == MigrationOutcome.Completed)
        {
            MigrationMetrics.Completed.Add(1);
            MigrationMetrics.Duration.Record(report.Duration.TotalSeconds);
        }
        else
        {
            MigrationMetrics.Failed.Add(1, new KeyValuePair<string, object?>("reason", report.FailureReason));
            Log.Info("client {0}: migration from {1} to {2} failed: {3}", _key, report.From, report.To, report.FailureReason);
        }

        try
        {
            _channel.MigrationReported?.Invoke(report);
        }
        catch (Exception e)
        {
            // An application handler must not take the connection down.
            Log.Error(e, "client {0}: a migration event handler threw", _key);
        }
    }

    private void Abort()
    {
        var now = _context.Clock.Now;
        _client.CurrentControlBlock.Abort(now);
        Drive(now);
    }

    private void FailAll(string reason)
    {
        _connectCompletion.TrySetException(new IOException($"connecting to {_key.RemoteAddress}:{_key.RemotePort} failed: {reason}"));
        _driver.FailStream(reason);
        if (_migration is { } migration)
        {
            _migration = null;
            migration.Completion?.TrySetResult(new MigrationReport(MigrationOutcome.Failed, migration.From, migration.To, _context.Clock.Now - migration.Started, migration.Triggered, reason, migration.FailedOver));
        }
    }

    protected override void PostStop()
    {
        _connectCancellationRegistration.Unregister();
        foreach (var key in _keys)
        {
            _context.Table.RemoveEndpoint(key, Self);
        }

        MigrationMetrics.PortsHeld.Add(-_keys.Count);

        if (_client.State is not (TcpState.Closed or TcpState.TimeWait))
        {
            try
            {
                var now = _context.Clock.Now;
                _client.CurrentControlBlock.Abort(now);
                _driver.Transmit(now);
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or InvalidOperationException or ArgumentException)
            {
                Log.Debug("client {0}: could not send the RST while stopping: {1}", _key, e.Message);
            }
        }

        FailAll("the connection's endpoint stopped");
        _driver.Stopped("the connection's endpoint stopped");
        base.PostStop();
    }

    private sealed record PendingMigration(ServerEndpoint From, ServerEndpoint To, ConnectionKey Key, Instant Started, bool Triggered, bool FailedOver, TaskCompletionSource<MigrationReport>? Completion);

    /// <summary>A 4-tuple a migration claimed and could not use, free at once.</summary>
    private sealed record ReleaseKey(ConnectionKey Key);
}

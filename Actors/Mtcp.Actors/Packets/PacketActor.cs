using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Replication;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// Owns one packet transport and demultiplexes what it receives. A dedicated thread blocks in
/// <see cref="IPacketTransport.Receive"/> (on two cores blocking receive beats async receive), decodes each segment
/// with the codec (checksum over the pseudo-header verified) and routes it by 4-tuple: to its endpoint actor, a SYN
/// of a new 4-tuple to the listener of its port, anything else answered as CLOSED answers it (RFC 9293 §3.10.7.1,
/// a RST built by <see cref="TcpConnection.TryMakeReset"/>). Malformed segments are dropped and counted by reason.
/// After each blocking receive it reads what has already arrived too, up to <c>mtcp.runtime.receive-burst</c> segments
/// and <c>receive-burst-bytes</c> (<see cref="IPacketTransport.TryReceiveWaiting"/>), and hands each endpoint its segments of that burst in one message
/// (<see cref="EndpointBursts"/>), as GRO hands Linux's TCP a burst: one actor message, one ACK and one round of sending
/// per burst instead of per segment. The receive buffer is reused; the per-segment allocation is the
/// <see cref="InboundSegment"/>, whose payload travels in a pooled buffer (<c>mtcp.runtime.inbound-payload-buffers</c>).
/// </summary>
/// <remarks>
/// The actor itself binds listeners and starts client connections, so that it parents every actor of the node.
/// Supervision: one-for-one, always stop (see <see cref="EndpointSupervision"/>).
/// </remarks>
internal sealed class PacketActor : ReceiveActor
{
    private readonly IPacketTransport _transport;
    private readonly string _reason;
    private readonly IDisposable? _addressLock;
    private readonly RuntimeSettings _settings;
    private readonly EndpointContext _context;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Thread _receiveThread;
    private readonly Thread? _packetTooBigThread;
    private volatile bool _stopping;
    private int _nextEphemeralPort;
    private SegmentEncoder? _triggerEncoder;
    private long _created;
    private string? _synQueueFullCookie;
    private string? _synQueueFullDropped;

    public PacketActor(OpenedTransport opened, RuntimeSettings settings, TcpConfig tcp, InitialSequenceNumbers isn, ConnectionTable table, IActorRef? registry)
    {
        _transport = opened.Transport;
        _addressLock = opened.AddressLock;
        _reason = opened.Reason;
        _settings = settings;
        _context = new EndpointContext(_transport, table, new PacketCounters(), tcp, isn, new MonotonicClock(), registry)
        {
            Refusals = RefusalLog.Get(Context.System),
            EphemeralPorts = (settings.EphemeralPortFirst, settings.EphemeralPortLast),
            SynCookieMode = settings.SynCookies,
            RouteMtuCache = settings.RouteMtuCache,
            Payloads = InboundSegment.CreatePayloadPool(settings.InboundPayloadBuffers),
            SendBatches = new SendBatchPool(settings.SendBatch, settings.SendBatchBytes),
        };
        _nextEphemeralPort = Random.Shared.Next(settings.EphemeralPortFirst, settings.EphemeralPortLast + 1);
        _receiveThread = new Thread(ReceiveLoop) { IsBackground = true, Name = $"mtcp receive {_transport.LocalAddress}" };
        _packetTooBigThread = _transport.ReadsPacketTooBig
            ? new Thread(PacketTooBigLoop) { IsBackground = true, Name = $"mtcp icmp {_transport.LocalAddress}" }
            : null;

        Receive<Bind>(OnBind);
        Receive<ConnectTo>(OnConnect);
        Receive<GetPacketStatistics>(_ => Sender.Tell(_context.Counters.Snapshot(_context.Table.EndpointCount, _context.Table.SilencedCount(_context.Clock.Now))));
        Receive<EnableMigration>(enable =>
        {
            _context.Migration = enable.Support;
            enable.Support.ServiceDirectory?.Tell(new SubscribeAlternateServers(Self));
            if (enable.Support is { Replication: not null, ControlManager: { } controlManager })
            {
                controlManager.Tell(new ReplicaTakeoverTransport(_transport.LocalAddress, Self));
            }

            Sender.Tell(MigrationEnabled.Instance);
        });
        Receive<AlternateServersChanged>(view => _context.View = view);
        Receive<SendMigrationTrigger>(OnSendMigrationTrigger);
        Receive<SendTakeoverTrigger>(send =>
        {
            if (_context.Table.IsListening(send.Cid.ServerPort))
            {
                SendTrigger(send.Cid, send.Segment);
            }
        });
    }

    /// <summary>The packet actor over an opened transport, which it owns from now on (and disposes when it stops).</summary>
    /// <param name="table">the routing table; a host may keep a reference to inspect it, or pre-register actors in it.</param>
    /// <param name="registry">the node's <see cref="ConnectionRegistry"/>, where server endpoints register for state requests; null: none.</param>
    public static Props Props(OpenedTransport transport, RuntimeSettings settings, TcpConfig tcp, InitialSequenceNumbers? isn = null, ConnectionTable? table = null, IActorRef? registry = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(tcp);
        var routing = table ?? new ConnectionTable();
        var sequenceNumbers = isn ?? new InitialSequenceNumbers();
        return Akka.Actor.Props.Create(() => new PacketActor(transport, settings, tcp, sequenceNumbers, routing, registry));
    }

    protected override SupervisorStrategy SupervisorStrategy() => EndpointSupervision.Strategy;

    protected override void PreStart()
    {
        _log.Info("MTCP packet transport: {0} (because {1})", _transport, _reason);
        _receiveThread.Start();
        _packetTooBigThread?.Start();
    }

    protected override void PostStop()
    {
        _stopping = true;
        _transport.Dispose();
        _receiveThread.Join();
        _packetTooBigThread?.Join();
        _addressLock?.Dispose();
        base.PostStop();
    }

    private void OnBind(Bind bind)
    {
        if (bind.Port == 0)
        {
            Sender.Tell(new Status.Failure(new ArgumentException("a listener needs a port from 1 to 65535", nameof(bind))));
            return;
        }

        if (_context.Table.IsListening(bind.Port))
        {
            Sender.Tell(new Status.Failure(new InvalidOperationException($"port {bind.Port} of {_transport.LocalAddress} already has a listener")));
            return;
        }

        var queues = new ListenerQueues(_settings.SynBacklog, _settings.AcceptBacklog);
        var listener = Context.ActorOf(ListenerActor.Props(_context, bind.Port, queues), $"listener-{bind.Port}-{++_created}");
        _context.Table.TryAddListener(bind.Port, listener, queues);
        Sender.Tell(new Bound(bind.Port, listener));
    }

    private void OnConnect(ConnectTo connect)
    {
        if (!TryPickEphemeralPort(connect.RemoteAddress, connect.RemotePort, out var key))
        {
            MigrationMetrics.PortsExhausted.Add(1, new KeyValuePair<string, object?>("side", "connect"));
            connect.Connected.TrySetException(new IOException(
                $"no free local port towards {connect.RemoteAddress}:{connect.RemotePort}: each of the {_settings.EphemeralPortLast - _settings.EphemeralPortFirst + 1} ports " +
                $"of the ephemeral range {_settings.EphemeralPortFirst}-{_settings.EphemeralPortLast} is in use or held towards it; widen " +
                "mtcp.runtime.ephemeral-port-first/-last or give the client more local addresses"));
            return;
        }

        // With migration on, a client endpoint is an MTCP socket that can move between servers (thesis 4.2.3).
        var props = ClientEndpointActor.Props(_context, key, migrationEnabled: _context.Migration is not null, connect.Connected, connect.Cancellation);
        var endpoint = Context.ActorOf(props, EndpointNames.For(key, ++_created));
        _context.Table.TryAddEndpoint(key, endpoint);
        endpoint.Tell(OpenActive.Instance);
    }

    private void OnSendMigrationTrigger(SendMigrationTrigger send)
    {
        var cid = send.Grant.Cid;
        TcpSegmentRepr trigger;
        try
        {
            trigger = ServerMigration.ThirdPartyTriggerSegment(cid, new ServerEndpoint(_transport.LocalAddress, send.SenderPort), send.Grant.Key);
        }
        catch (ArgumentException e)
        {
            // A grant that was never issued (an unset key): refused here rather than restarting the packet actor.
            _log.Warning("no MIGRATE_TRIGGER sent for {0}: {1}", cid, e.Message);
            return;
        }

        SendTrigger(cid, trigger);
    }

    private void SendTrigger(ConnectionId cid, in TcpSegmentRepr trigger)
    {
        _triggerEncoder ??= new SegmentEncoder(_transport.LocalAddress, maxPayload: 1);
        if (!_transport.Send(cid.ClientAddress, _triggerEncoder.Encode(trigger, cid.ClientAddress)))
        {
            _context.Counters.SendDropped();
        }
    }

    private bool TryPickEphemeralPort(IpAddress remoteAddress, ushort remotePort, out ConnectionKey key)
    {
        var first = _settings.EphemeralPortFirst;
        var count = _settings.EphemeralPortLast - first + 1;
        for (var attempt = 0; attempt < count; attempt++)
        {
            var port = (ushort)(first + ((_nextEphemeralPort - first + attempt) % count));
            key = new ConnectionKey(remoteAddress, remotePort, port);
            if (!_context.Table.IsListening(port) && !_context.Table.TryGetEndpoint(key, out _))
            {
                _nextEphemeralPort = first + ((port - first + 1) % count);
                return true;
            }
        }

        key = default;
        return false;
    }

    /// <summary>
    /// The receive thread: one blocking receive at a time, then what arrived meanwhile as one burst (up to
    /// <c>mtcp.runtime.receive-burst</c> segments or <c>receive-burst-bytes</c>), each connection's segments handed to
    /// its endpoint in one message.
    /// </summary>
    private void ReceiveLoop()
    {
        var resetEncoder = new SegmentEncoder(_transport.LocalAddress, maxPayload: 1);
        var bursts = new EndpointBursts();
        // Local send drops are counted by the transport; under a lossy firewall rule or a full queue they come by the
        // thousand, each an ordinary loss that TCP repairs, so they go to the refusal summary once per its interval.
        var dropReportInterval = (long)_context.Refusals.Interval.TotalMilliseconds;
        var nextDropReport = Environment.TickCount64 + dropReportInterval;
        long reportedDrops = 0;
        ReceiveUntilStopped(ReceiveBurst);

        ReceiveOutcome ReceiveBurst(byte[] buffer, TimeSpan timeout)
        {
            _context.Table.TellRetired();
            if (Environment.TickCount64 >= nextDropReport)
            {
                nextDropReport = Environment.TickCount64 + dropReportInterval;
                reportedDrops = ReportSendDrops(reportedDrops);
            }

            var outcome = _transport.Receive(buffer, timeout, out var received);
            if (outcome != ReceiveOutcome.Received)
            {
                RouteQueuedPacketTooBig(buffer);
                return outcome;
            }

            // The rest of the burst: what arrived meanwhile, without blocking. Its endpoints' segments are told at the
            // end, before TellRetired can tell any of them to stop.
            try
            {
                var read = 1;
                var bytes = received.Length;
                while (true)
                {
                    DispatchSafely(buffer, received, resetEncoder, bursts);
                    if (read == _settings.ReceiveBurst || bytes >= _settings.ReceiveBurstBytes || !_transport.TryReceiveWaiting(buffer, out received))
                    {
                        break;
                    }

                    read++;
                    bytes += received.Length;
                }
            }
            finally
            {
                TellBursts(bursts);
            }

            RouteQueuedPacketTooBig(buffer);
            return outcome;
        }
    }

    /// <summary>
    /// The path MTU reports the transport's own socket queued (the UDP transport's error queue), routed as the ICMP
    /// thread routes the raw transports'. Read by this thread, which reads everything else of the socket: after the
    /// burst, whose segments are already handed on, so the buffer is free. Without an error noted since the queue was
    /// last found empty it costs no system call. At most <c>mtcp.runtime.receive-burst</c> reports a round, so that a
    /// flood of them cannot hold this thread from the segments; the rest wait for the next round.
    /// </summary>
    private void RouteQueuedPacketTooBig(byte[] buffer)
    {
        for (var routed = 0; routed < _settings.ReceiveBurst && _transport.TryReceiveQueuedPacketTooBig(buffer, out var report); routed++)
        {
            RoutePacketTooBig(report);
        }
    }

    /// <summary>
    /// The loop both receive threads run: <paramref name="receive"/> (one blocking receive and what follows from it, into
    /// a buffer of the transport's receive length, waiting at most <c>mtcp.runtime.receive-poll-interval</c> so that a
    /// stop is seen) until the runtime stops or the transport is closed or disposed.
    /// </summary>
    private void ReceiveUntilStopped(Func<byte[], TimeSpan, ReceiveOutcome> receive)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(_transport.ReceiveBufferLength);
        while (!_stopping)
        {
            try
            {
                if (receive(buffer, _settings.ReceivePollInterval) == ReceiveOutcome.Closed)
                {
                    return;
                }
            }
            catch (Exception e) when (e is ObjectDisposedException || _stopping)
            {
                return;
            }
        }
    }

    /// <summary>Routes one received segment; an exception other than the transport's disposal is logged, not thrown.</summary>
    private void DispatchSafely(byte[] buffer, in ReceivedSegment received, SegmentEncoder resetEncoder, EndpointBursts bursts)
    {
        try
        {
            Dispatch(received.SliceOf(buffer.AsSpan()), received.Source, received.Destination, resetEncoder, bursts);
        }
        catch (ObjectDisposedException) when (_stopping)
        {
            throw;
        }
        catch (Exception e)
        {
            // An exception on this thread would end the process; one bad segment must not.
            _log.Error(e, "receive thread: dispatching a segment from {0} failed", received.Source);
        }
    }

    private void TellBursts(EndpointBursts bursts)
    {
        try
        {
            bursts.TellAll();
        }
        catch (Exception e)
        {
            _log.Error(e, "receive thread: handing a burst of segments to its endpoints failed");
        }
    }

    /// <summary>
    /// The path MTU reports the transport reads (ICMP "fragmentation needed", ICMPv6 "packet too big"), each routed by
    /// the quoted 4-tuple to its endpoint, which checks the quoted sequence number and MTU in the engine
    /// (<see cref="TcpConnection.HandlePacketTooBig"/>). A flood of forged messages costs a parse and a table lookup
    /// each, on this thread; only one that names a live connection's 4-tuple reaches an actor.
    /// </summary>
    private void PacketTooBigLoop() => ReceiveUntilStopped((buffer, timeout) =>
    {
        var outcome = _transport.ReceivePacketTooBig(buffer, timeout, out var report);
        if (outcome == ReceiveOutcome.Received)
        {
            RoutePacketTooBig(report);
        }

        return outcome;
    });

    /// <summary>A path MTU report to the endpoint of the quoted 4-tuple, if one is live; a report naming none is dropped.</summary>
    private void RoutePacketTooBig(in PacketTooBigReport report)
    {
        if (_context.Table.TryGetEndpoint(new ConnectionKey(report.QuotedDestination, report.QuotedDestinationPort, report.QuotedSourcePort), out var endpoint))
        {
            _context.Counters.PacketTooBigRouted();
            endpoint.Tell(PacketTooBigReceived.Of(report));
        }
    }

    /// <summary>Counts the segments the transport dropped on the way out since the last report as refusals; returns the total now.</summary>
    private long ReportSendDrops(long reported)
    {
        var drops = _transport.SendDrops;
        var total = drops.Total;
        if (total > reported)
        {
            _context.Refusals.Refuse(
                RefusalClass.SendDropped,
                $"segments dropped on the way out by the local host since the last report ({total} since start: {drops}); each is a loss that retransmission repairs",
                total - reported);
        }

        return total;
    }

    /// <summary>
    /// A listener's admission of a SYN, on the receive thread (a SYN flood never reaches an actor): true when it took
    /// a place in the SYN queue and goes to the listener; otherwise it was answered here with a SYN cookie, or
    /// dropped (accept queue full, cookies off, or a 4-tuple still silenced after a migration, whose cookie ACK the
    /// silence would swallow).
    /// </summary>
    private bool AdmitSyn(ConnectionKey key, in TcpSegmentRepr syn, ListenerQueues queues, SegmentEncoder encoder)
    {
        if (queues.AcceptQueueFull)
        {
            _context.Counters.SynDropped();
            ListenerMetrics.AcceptQueueOverflow();
            _context.Refusals.Refuse(RefusalClass.SynQueueOverflow, $"the accept queue of port {key.LocalPort} is full ({queues.AcceptBacklog}): SYNs are dropped until the application accepts");
            return false;
        }

        var mode = _context.SynCookieMode;
        if (mode != SynCookieMode.Always && queues.TryReserveHandshake())
        {
            return true;
        }

        var now = _context.Clock.Now;
        if (mode == SynCookieMode.Off || _context.Table.TryGetSilenced(key, now, out _))
        {
            _context.Counters.SynDropped();
            ListenerMetrics.SynQueueOverflow();
            _context.Refusals.Refuse(RefusalClass.SynQueueOverflow, _synQueueFullDropped ??= $"a SYN queue is full ({queues.SynBacklog}) and mtcp.runtime.syn-cookies is off: SYNs are dropped");
            return false;
        }

        if (mode != SynCookieMode.Always)
        {
            ListenerMetrics.SynQueueOverflow();
            _context.Refusals.Refuse(RefusalClass.SynQueueOverflow, _synQueueFullCookie ??= $"a SYN queue is full ({queues.SynBacklog}): SYNs are answered with SYN cookies");
        }

        var cid = _context.ConnectionIdOf(key);
        var synAck = StatelessHandshake.SynAck(_context.SynCookies, _context.TcpTo(key.RemoteAddress), now, cid, syn, _context.Migration?.Authenticator, _context.View.Alternates.Servers);
        queues.CookieSent(now);
        if (_transport.Send(key.RemoteAddress, encoder.Encode(synAck, key.RemoteAddress)))
        {
            ListenerMetrics.CookieSent();
        }
        else
        {
            _context.Counters.SendDropped();
        }

        return false;
    }

    private void Dispatch(ReadOnlySpan<byte> bytes, IpAddress source, IpAddress destination, SegmentEncoder resetEncoder, EndpointBursts bursts)
    {
        var counters = _context.Counters;
        counters.Received();
        if (!TcpSegmentRepr.TryParse(bytes, source, destination, ChecksumPolicy.Verify, out var header, out var payloadOffset, out var error))
        {
            counters.Malformed(error);
            _context.Refusals.Refuse(RefusalClass.MalformedSegment, $"dropped a segment from {source} ({bytes.Length} bytes): {error}");
            return;
        }

        var key = new ConnectionKey(source, header.SourcePort, header.DestinationPort);
        var payload = bytes[payloadOffset..];
        var payloads = _context.Payloads;
        if (_context.Table.TryGetEndpoint(key, out var endpoint))
        {
            counters.Routed();
            bursts.Add(endpoint, InboundSegment.Create(payloads, key, header, payload));
            return;
        }

        // Whatever goes elsewhere (to a listener, which may hand it to an endpoint) follows the segments read before it.
        if (bursts.Any)
        {
            bursts.TellAll();
        }

        var freshSyn = (header.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) == TcpFlags.Syn;
        // Thesis 4.2.3: the client must never see a RST from a server it left; nothing is answered for 2 MSL. A fresh
        // SYN is the client coming back on the 4-tuple with a new connection: for the listener.
        if (!freshSyn && _context.Table.TryGetSilenced(key, _context.Clock.Now, out _))
        {
            counters.Silenced();
            return;
        }

        // RFC 9293 §3.10.7.2: a LISTEN socket takes a SYN; an ACK or RST to it is not a new connection, unless it
        // returns a SYN cookie (RFC 4987 §3.6), which the listener checks.
        if (_context.Table.TryGetListener(header.DestinationPort, out var listener))
        {
            if (freshSyn)
            {
                if (header.Options.MigratedConnection is null && _context.Table.TryGetListenerQueues(header.DestinationPort, out var queues))
                {
                    if (AdmitSyn(key, header, queues, resetEncoder))
                    {
                        counters.Routed();
                        listener.Tell(new SynAdmitted(InboundSegment.Create(payloads, key, header, payload)));
                    }

                    return;
                }

                counters.Routed();
                listener.Tell(InboundSegment.Create(payloads, key, header, payload));
                return;
            }

            if (_context.SynCookieMode != SynCookieMode.Off && (header.Flags & (TcpFlags.Syn | TcpFlags.Rst | TcpFlags.Ack)) == TcpFlags.Ack)
            {
                counters.Routed();
                listener.Tell(InboundSegment.Create(payloads, key, header, payload));
                return;
            }
        }

        // A MIGRATE_TRIGGER from a third party (thesis 3.2.1; not the connection's server) names the server of the
        // Cid it is for: route it to that client endpoint, which verifies it and takes nothing else from it.
        if (header.Options.MigrateTrigger is { OriginServer: { } origin }
            && _context.Table.TryGetEndpoint(new ConnectionKey(origin.Address, origin.Port, header.DestinationPort), out var holder))
        {
            counters.Routed();
            holder.Tell(new ThirdPartyTriggerReceived(InboundSegment.Create(payloads, key, header, ReadOnlySpan<byte>.Empty)));
            return;
        }

        counters.Stray();
        if (TcpConnection.TryMakeReset(header, payload.Length, out var reset))
        {
            var sent = _transport.Send(source, resetEncoder.Encode(reset, source));
            if (sent)
            {
                counters.ResetSent();
            }
            else
            {
                counters.SendDropped();
            }
        }
    }
}

using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>Takes the next established connection from a listener; completed with null once the listener is unbound.</summary>
internal sealed record AcceptConnection(TaskCompletionSource<EndpointChannel?> Accepted);

/// <summary>A SYN for the listener, for which the receive thread took a place in the listener's SYN queue (<see cref="ListenerQueues"/>).</summary>
internal sealed record SynAdmitted(InboundSegment Segment);

/// <summary>
/// To a server endpoint created by an ACK that returned a valid SYN cookie: the SYN rebuilt from that ACK
/// (<see cref="Stack.SynCookies.SynOf"/>), taken before the ACK itself.
/// </summary>
internal sealed record SynCookieReturned(TcpSegmentRepr Syn);

/// <summary>Stops a listener: no new connections; accepted ones live on.</summary>
internal sealed class Unbind
{
    public static readonly Unbind Instance = new();

    private Unbind()
    {
    }
}

/// <summary>
/// The passive opens of one port (RFC 9293 §3.10.1, LISTEN). Each SYN of a new 4-tuple that finds a place in the
/// SYN queue gets a new endpoint actor, registered in the table before it answers; established endpoints wait in
/// the accept queue for AcceptAsync (<see cref="ListenerQueues"/>: two limits, as Linux keeps them). A SYN beyond
/// the SYN queue was answered by the receive thread with a SYN cookie (RFC 4987 §3.6) and left nothing here; the
/// client's ACK comes here, and a valid cookie creates the endpoint then. The listener parents its endpoints, and
/// outlives its unbinding until they have all stopped, so closing a listener never touches the connections it accepted.
/// </summary>
/// <remarks>
/// Supervision: an endpoint that throws is stopped, and only that one (one-for-one). Its engine's state is
/// unknown after an exception, so restarting it with a fresh engine would silently corrupt the byte stream;
/// stopping fails its application calls with an <see cref="IOException"/> and the peer gets a RST.
/// </remarks>
internal sealed class ListenerActor : ReceiveActor
{
    private readonly EndpointContext _context;
    private readonly ushort _port;
    private readonly ListenerQueues _queues;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Endpoints whose handshake is not done; true for those holding a place in the SYN queue (not those a cookie created).</summary>
    private readonly Dictionary<IActorRef, bool> _handshaking = [];
    private readonly LinkedList<EndpointChannel> _established = new();
    private readonly Queue<TaskCompletionSource<EndpointChannel?>> _acceptors = new();
    private readonly SegmentEncoder _resetEncoder;
    private readonly string _cookieRefused;
    private readonly string _cookieDropped;
    private long _created;

    public ListenerActor(EndpointContext context, ushort port, ListenerQueues queues)
    {
        _context = context;
        _port = port;
        _queues = queues;
        _resetEncoder = new SegmentEncoder(context.LocalAddress, maxPayload: 1);
        _cookieRefused = $"an ACK to listening port {port} for no connection returned no valid SYN cookie (forged, stale, or a late segment of a closed connection): answered with a RST";
        _cookieDropped = $"an ACK to listening port {port} for no connection returned no valid SYN cookie while cookies are in flight (forged, or a client's later segment whose first ones were lost): dropped";
        Listening();
    }

    public static Props Props(EndpointContext context, ushort port, ListenerQueues queues) =>
        Akka.Actor.Props.Create(() => new ListenerActor(context, port, queues));

    protected override SupervisorStrategy SupervisorStrategy() => EndpointSupervision.Strategy;

    private void Listening()
    {
        Receive<SynAdmitted>(admitted => OnSyn(admitted.Segment, reserved: true));
        Receive<InboundSegment>(segment =>
        {
            if (segment.Header.Has(TcpFlags.Syn))
            {
                OnSyn(segment, reserved: false);
            }
            else
            {
                OnCookieAck(segment);
            }
        });
        Receive<EndpointEstablished>(OnEstablished);
        Receive<AcceptConnection>(OnAccept);
        Receive<Terminated>(OnTerminated);
        Receive<Unbind>(_ => OnUnbind());
    }

    /// <summary>Unbound: waits for its endpoints to stop. A SYN routed here just before the unbinding is dropped; its retransmission finds no listener and is refused with a RST.</summary>
    private void Draining()
    {
        Receive<InboundSegment>(segment => segment.Release());
        Receive<SynAdmitted>(admitted =>
        {
            _queues.HandshakeEnded();
            admitted.Segment.Release();
        });
        Receive<EndpointEstablished>(established => established.Channel.Endpoint.Tell(AbortRequested.Instance));
        Receive<AcceptConnection>(accept => accept.Accepted.TrySetResult(null));
        Receive<Terminated>(OnTerminated);
        Receive<Unbind>(_ => { });
    }

    /// <param name="reserved">the receive thread took a place in the SYN queue for it; otherwise (a special SYN, or one an endpoint handed back) one is taken here.</param>
    private void OnSyn(InboundSegment segment, bool reserved)
    {
        // A retransmitted SYN may have been routed here before the first one registered its endpoint.
        if (_context.Table.TryGetEndpoint(segment.Key, out var existing))
        {
            ReleasePlace(reserved);
            existing.Tell(segment);
            return;
        }

        if (!reserved && (_queues.AcceptQueueFull || !_queues.TryReserveHandshake()))
        {
            // A full queue drops the SYN, as Linux does; the client retransmits it. Special SYNs get no cookie: they
            // wait for the origin's state, which is what the SYN queue holds.
            _context.Counters.SynDropped();
            ListenerMetrics.SynQueueOverflow();
            _log.Debug("listener {0}: SYN queue of {1} full, SYN from {2}:{3} dropped", _port, _queues.SynBacklog, segment.Key.RemoteAddress, segment.Key.RemotePort);
            segment.Release();
            return;
        }

        var dispatch = segment.Header.Options.MigratedConnection is { } migrated ? StateRequestDispatch.For(_context, segment.Key, migrated, segment.Header.Options.ClientState ? segment.Payload : default) : null;
        var endpoint = Context.ActorOf(ServerEndpointActor.Props(_context, segment.Key, dispatch?.Plan), EndpointNames.For(segment.Key, ++_created));
        Context.Watch(endpoint);
        _handshaking.Add(endpoint, true);
        _context.Table.TryAddEndpoint(segment.Key, endpoint);
        endpoint.Tell(segment);

        if (dispatch?.FromClientState is not null)
        {
            _log.Warning("listener {0}: resuming {1} from the state its client presented (its origin left the cluster view)", _port, dispatch.Plan.Request!.MigratingCid);
        }

        // After the SYN, so that the answer always finds the endpoint awaiting it.
        dispatch?.Send(endpoint);
    }

    /// <summary>
    /// A segment for no connection with its ACK bit set (the receive thread routes them here while cookies are on): the
    /// ACK completing a cookie handshake creates its endpoint; anything else is answered as CLOSED answers it, except
    /// while this listener's cookies may still come back (<see cref="ListenerQueues.CookiesInFlight"/>): then it is
    /// dropped, as a reset would end a client whose first segments the flood made the node lose.
    /// </summary>
    private void OnCookieAck(InboundSegment segment)
    {
        // Segments after the cookie's ACK that were routed here before its endpoint was registered.
        if (_context.Table.TryGetEndpoint(segment.Key, out var existing))
        {
            existing.Tell(segment);
            return;
        }

        var now = _context.Clock.Now;
        if (!_context.SynCookies.TryValidate(now, _context.ConnectionIdOf(segment.Key), segment.Header, out var options))
        {
            ListenerMetrics.CookieRefused();
            _context.Counters.Stray();
            var cookiesInFlight = _queues.CookiesInFlight(now, _context.SynCookies.Period + _context.SynCookies.Period);
            _context.Refusals.Refuse(RefusalClass.SynCookieRefused, cookiesInFlight ? _cookieDropped : _cookieRefused);
            if (!cookiesInFlight && TcpConnection.TryMakeReset(segment.Header, segment.PayloadLength, out var reset))
            {
                var sent = _context.Transport.Send(segment.Key.RemoteAddress, _resetEncoder.Encode(reset, segment.Key.RemoteAddress));
                if (sent)
                {
                    _context.Counters.ResetSent();
                }
                else
                {
                    _context.Counters.SendDropped();
                }
            }

            segment.Release();
            return;
        }

        if (_queues.AcceptQueueFull)
        {
            // As Linux: the ACK is dropped, the client's retransmission (of data, or of its ACK) returns the cookie later.
            ListenerMetrics.AcceptQueueOverflow();
            segment.Release();
            return;
        }

        ListenerMetrics.CookieValidated();
        var endpoint = Context.ActorOf(ServerEndpointActor.Props(_context, segment.Key, plan: null, iss: segment.Header.AcknowledgmentNumber - 1), EndpointNames.For(segment.Key, ++_created));
        Context.Watch(endpoint);
        _handshaking.Add(endpoint, false);

        // Told before the endpoint is registered: a later segment of the client, routed straight to it, queues behind.
        endpoint.Tell(new SynCookieReturned(SynCookies.SynOf(segment.Header, options)));
        endpoint.Tell(segment);
        _context.Table.TryAddEndpoint(segment.Key, endpoint);
    }

    private void ReleasePlace(bool reserved)
    {
        if (reserved)
        {
            _queues.HandshakeEnded();
        }
    }

    private void HandshakeOver(IActorRef endpoint)
    {
        if (_handshaking.Remove(endpoint, out var reserved))
        {
            ReleasePlace(reserved);
        }
    }

    private void OnEstablished(EndpointEstablished established)
    {
        // The connection takes its place in the accept queue before it leaves the SYN queue: the receive thread reads
        // both counts while this runs, and a connection in neither would let a SYN in past a full backlog.
        if (!HandedToAcceptor(established.Channel))
        {
            _established.AddLast(established.Channel);
            _queues.AcceptQueueLength(_established.Count);
        }

        HandshakeOver(established.Channel.Endpoint);
    }

    private bool HandedToAcceptor(EndpointChannel channel)
    {
        while (_acceptors.TryDequeue(out var acceptor))
        {
            if (acceptor.TrySetResult(channel))
            {
                return true;
            }
        }

        return false;
    }

    private void OnAccept(AcceptConnection accept)
    {
        if (_established.First is not { } first)
        {
            _acceptors.Enqueue(accept.Accepted);
            return;
        }

        // A cancelled accept leaves the connection for the next caller.
        if (accept.Accepted.TrySetResult(first.Value))
        {
            _established.RemoveFirst();
            _queues.AcceptQueueLength(_established.Count);
        }
    }

    private void OnTerminated(Terminated terminated)
    {
        HandshakeOver(terminated.ActorRef);
        for (var node = _established.First; node is not null; node = node.Next)
        {
            if (node.Value.Endpoint.Equals(terminated.ActorRef))
            {
                _established.Remove(node);
                _queues.AcceptQueueLength(_established.Count);
                break;
            }
        }

        StopWhenDrained();
    }

    private void OnUnbind()
    {
        _context.Table.RemoveListener(_port, Self);
        while (_acceptors.TryDequeue(out var acceptor))
        {
            acceptor.TrySetResult(null);
        }

        // Established but never accepted: nobody will read them, so they are aborted as a closed kernel listener does.
        foreach (var channel in _established)
        {
            channel.Endpoint.Tell(AbortRequested.Instance);
        }

        foreach (var endpoint in _handshaking.Keys)
        {
            endpoint.Tell(AbortRequested.Instance);
        }

        Become(Draining);
        StopWhenDrained();
    }

    private void StopWhenDrained()
    {
        if (!_context.Table.TryGetListener(_port, out var listener) || !listener.Equals(Self))
        {
            if (!Context.GetChildren().Any())
            {
                Context.Stop(Self);
            }
        }
    }

    protected override void PostStop()
    {
        _context.Table.RemoveListener(_port, Self);
        while (_acceptors.TryDequeue(out var acceptor))
        {
            acceptor.TrySetResult(null);
        }

        base.PostStop();
    }
}

/// <summary>The supervision of endpoint actors, shared by their parents (listeners and the packet actor).</summary>
internal static class EndpointSupervision
{
    /// <summary>
    /// One-for-one, always stop: a failure is confined to the endpoint that threw; siblings keep running.
    /// Restart is never right for an endpoint: a fresh engine would not know the byte stream's sequence numbers.
    /// </summary>
    public static readonly SupervisorStrategy Strategy = new OneForOneStrategy(Decider.From(Directive.Stop));
}

/// <summary>Actor names for endpoints: readable in logs, unique per 4-tuple among live siblings.</summary>
internal static class EndpointNames
{
    /// <param name="sequence">a number the parent never repeats: a stopping endpoint still holds its name.</param>
    public static string For(ConnectionKey key, long sequence) =>
        $"endpoint-{key.LocalPort}-{Address(key.RemoteAddress)}-{key.RemotePort}-{sequence}";

    private static string Address(IpAddress address) => address.ToString().Replace(':', '_');
}

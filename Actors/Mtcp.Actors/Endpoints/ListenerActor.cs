using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Packets;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>Takes the next established connection from a listener; completed with null once the listener is unbound.</summary>
internal sealed record AcceptConnection(TaskCompletionSource<EndpointChannel?> Accepted);

/// <summary>Stops a listener: no new connections; accepted ones live on.</summary>
internal sealed class Unbind
{
    public static readonly Unbind Instance = new();

    private Unbind()
    {
    }
}

/// <summary>
/// The passive opens of one port (RFC 9293 §3.10.1, LISTEN). Each SYN of a new 4-tuple gets a new endpoint
/// actor, registered in the table before it answers; established endpoints wait in a bounded backlog for
/// AcceptAsync. The listener parents its endpoints, and outlives its unbinding until they have all stopped, so
/// closing a listener never touches the connections it accepted.
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
    private readonly int _backlog;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<IActorRef> _handshaking = [];
    private readonly LinkedList<EndpointChannel> _established = new();
    private readonly Queue<TaskCompletionSource<EndpointChannel?>> _acceptors = new();
    private long _created;

    public ListenerActor(EndpointContext context, ushort port, int backlog)
    {
        _context = context;
        _port = port;
        _backlog = backlog;
        Listening();
    }

    public static Props Props(EndpointContext context, ushort port, int backlog) =>
        Akka.Actor.Props.Create(() => new ListenerActor(context, port, backlog));

    protected override SupervisorStrategy SupervisorStrategy() => EndpointSupervision.Strategy;

    private void Listening()
    {
        Receive<InboundSegment>(OnSyn);
        Receive<EndpointEstablished>(OnEstablished);
        Receive<AcceptConnection>(OnAccept);
        Receive<Terminated>(OnTerminated);
        Receive<Unbind>(_ => OnUnbind());
    }

    /// <summary>Unbound: waits for its endpoints to stop. A SYN routed here just before the unbinding is dropped; its retransmission finds no listener and is refused with a RST.</summary>
    private void Draining()
    {
        Receive<InboundSegment>(segment => segment.Release());
        Receive<EndpointEstablished>(established => established.Channel.Endpoint.Tell(AbortRequested.Instance));
        Receive<AcceptConnection>(accept => accept.Accepted.TrySetResult(null));
        Receive<Terminated>(OnTerminated);
        Receive<Unbind>(_ => { });
    }

    private void OnSyn(InboundSegment segment)
    {
        // A retransmitted SYN may have been routed here before the first one registered its endpoint.
        if (_context.Table.TryGetEndpoint(segment.Key, out var existing))
        {
            existing.Tell(segment);
            return;
        }

        if (_handshaking.Count + _established.Count >= _backlog)
        {
            // A full backlog drops the SYN, as Linux does; the client retransmits it.
            _context.Counters.SynDropped();
            _log.Debug("listener {0}: backlog of {1} full, SYN from {2}:{3} dropped", _port, _backlog, segment.Key.RemoteAddress, segment.Key.RemotePort);
            segment.Release();
            return;
        }

        var dispatch = segment.Header.Options.MigratedConnection is { } migrated ? StateRequestDispatch.For(_context, segment.Key, migrated) : null;
        var endpoint = Context.ActorOf(ServerEndpointActor.Props(_context, segment.Key, dispatch?.Plan), EndpointNames.For(segment.Key, ++_created));
        Context.Watch(endpoint);
        _handshaking.Add(endpoint);
        _context.Table.TryAddEndpoint(segment.Key, endpoint);
        endpoint.Tell(segment);

        // After the SYN, so that the answer always finds the endpoint awaiting it.
        dispatch?.Send(endpoint);
    }

    private void OnEstablished(EndpointEstablished established)
    {
        _handshaking.Remove(established.Channel.Endpoint);
        while (_acceptors.TryDequeue(out var acceptor))
        {
            if (acceptor.TrySetResult(established.Channel))
            {
                return;
            }
        }

        _established.AddLast(established.Channel);
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
        }
    }

    private void OnTerminated(Terminated terminated)
    {
        _handshaking.Remove(terminated.ActorRef);
        for (var node = _established.First; node is not null; node = node.Next)
        {
            if (node.Value.Endpoint.Equals(terminated.ActorRef))
            {
                _established.Remove(node);
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

        foreach (var endpoint in _handshaking)
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

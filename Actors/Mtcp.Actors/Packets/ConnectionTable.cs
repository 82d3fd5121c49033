using System.Collections.Concurrent;
using Akka.Actor;
using Mtcp.Actors.Endpoints;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>
/// The packet actor's demultiplexing table: endpoint actors by 4-tuple, listener actors by port. The receive
/// thread reads it for every segment; entries are added by whoever creates an endpoint, before the endpoint
/// sends anything, so that no answer from the peer can arrive while its 4-tuple is still unknown (it would be
/// answered with a RST). Endpoints remove their own entry when they are over (<see cref="Retire"/>).
/// <para>
/// It also holds the 4-tuples this node's server endpoints left by migrating away (thesis 4.2.3): for 2 MSL the
/// origin owes the client silence on them, and that is all it keeps of the connection: the 4-tuple, the deadline and
/// the connection's SND.MAX (a later incarnation of the 4-tuple starts above it), while the endpoint actor and its
/// buffers go at once.
/// </para>
/// </summary>
internal sealed class ConnectionTable
{
    private readonly ConcurrentDictionary<ConnectionKey, IActorRef> _endpoints = new();
    private readonly ConcurrentDictionary<ushort, IActorRef> _listeners = new();
    private readonly ConcurrentDictionary<ushort, ListenerQueues> _listenerQueues = new();
    private readonly ConcurrentDictionary<ConnectionKey, Silenced> _silenced = new();
    private readonly ConcurrentQueue<IActorRef> _retiring = new();

    /// <summary>
    /// Each silenced 4-tuple once, in the order it was first silenced: deadlines are 2 MSL after, so the oldest expires
    /// first. A 4-tuple silenced again (a connection that came back and left again) keeps its place and is put back at
    /// the end when its first deadline passes, so the queue never holds more than the table.
    /// </summary>
    private readonly Queue<(ConnectionKey Key, Instant Until)> _silencedInOrder = new();
    private readonly Lock _silencing = new();

    public int EndpointCount => _endpoints.Count;

    public bool TryGetEndpoint(ConnectionKey key, out IActorRef endpoint) => _endpoints.TryGetValue(key, out endpoint!);

    public bool TryAddEndpoint(ConnectionKey key, IActorRef endpoint) => _endpoints.TryAdd(key, endpoint);

    /// <summary>Removes the entry only if it still names <paramref name="endpoint"/> (a successor may hold the key).</summary>
    public void RemoveEndpoint(ConnectionKey key, IActorRef endpoint) =>
        _endpoints.TryRemove(new KeyValuePair<ConnectionKey, IActorRef>(key, endpoint));

    /// <summary>
    /// An endpoint that is over: its 4-tuples leave the table, and the receive thread tells it
    /// <see cref="EndpointRetired"/> (<see cref="TellRetired"/>) once it has finished the segment it is routing. Every
    /// segment it routed to the endpoint is then in the endpoint's mailbox ahead of that message, none after: a
    /// segment looked up just before the removal is handled, not dead-lettered.
    /// </summary>
    public void Retire(IActorRef endpoint, IEnumerable<ConnectionKey> keys)
    {
        foreach (var key in keys)
        {
            RemoveEndpoint(key, endpoint);
        }

        _retiring.Enqueue(endpoint);
    }

    /// <summary>On the receive thread, between two segments: tells each endpoint retired since the last call that it may stop.</summary>
    public void TellRetired()
    {
        while (_retiring.TryDequeue(out var endpoint))
        {
            endpoint.Tell(EndpointRetired.Instance);
        }
    }

    public bool TryGetListener(ushort port, out IActorRef listener) => _listeners.TryGetValue(port, out listener!);

    public bool TryAddListener(ushort port, IActorRef listener) => _listeners.TryAdd(port, listener);

    /// <summary>A listener with its SYN and accept queues, which the receive thread consults before routing a SYN to it.</summary>
    public bool TryAddListener(ushort port, IActorRef listener, ListenerQueues queues)
    {
        _listenerQueues[port] = queues;
        return _listeners.TryAdd(port, listener);
    }

    /// <summary>The queues of the listener on <paramref name="port"/>; false for a listener registered without them.</summary>
    public bool TryGetListenerQueues(ushort port, out ListenerQueues queues) => _listenerQueues.TryGetValue(port, out queues!);

    public void RemoveListener(ushort port, IActorRef listener)
    {
        if (_listeners.TryRemove(new KeyValuePair<ushort, IActorRef>(port, listener)))
        {
            _listenerQueues.TryRemove(port, out _);
        }
    }

    public bool IsListening(ushort port) => _listeners.ContainsKey(port);

    /// <summary>4-tuples silenced now, expired ones excluded once <see cref="Silence"/> or <see cref="SilencedCount"/> swept them.</summary>
    public int SilencedCount(Instant now)
    {
        lock (_silencing)
        {
            SweepSilenced(now);
            return _silenced.Count;
        }
    }

    /// <summary>
    /// Segments to <paramref name="key"/> are dropped without an answer until <paramref name="until"/> (thesis 4.2.3,
    /// the origin after the state ack); <paramref name="sendMax"/> is the SND.MAX of the connection that left it.
    /// </summary>
    public void Silence(ConnectionKey key, Instant until, SeqNumber sendMax, Instant now)
    {
        lock (_silencing)
        {
            SweepSilenced(now);
            if (!_silenced.ContainsKey(key))
            {
                _silencedInOrder.Enqueue((key, until));
            }

            _silenced[key] = new Silenced(until, sendMax);
        }
    }

    /// <summary>
    /// True while <paramref name="key"/> is owed silence, with the SND.MAX of the connection that left it: a new
    /// connection on the 4-tuple (a fresh SYN, which the listener takes) must start above it.
    /// </summary>
    public bool TryGetSilenced(ConnectionKey key, Instant now, out SeqNumber sendMax)
    {
        if (_silenced.TryGetValue(key, out var entry) && entry.Until > now)
        {
            sendMax = entry.SendMax;
            return true;
        }

        sendMax = default;
        return false;
    }

    private void SweepSilenced(Instant now)
    {
        while (_silencedInOrder.TryPeek(out var oldest) && oldest.Until <= now)
        {
            _silencedInOrder.Dequeue();
            if (_silenced.TryGetValue(oldest.Key, out var entry) && entry.Until > now)
            {
                _silencedInOrder.Enqueue((oldest.Key, entry.Until));
            }
            else
            {
                _silenced.TryRemove(oldest.Key, out _);
            }
        }
    }

    private readonly record struct Silenced(Instant Until, SeqNumber SendMax);
}

using System.Collections.Concurrent;
using Akka.Actor;
using Mtcp.Stack;

namespace Mtcp.Actors.Packets;

/// <summary>
/// The packet actor's demultiplexing table: endpoint actors by 4-tuple, listener actors by port. The receive
/// thread reads it for every segment; entries are added by whoever creates an endpoint, before the endpoint
/// sends anything, so that no answer from the peer can arrive while its 4-tuple is still unknown (it would be
/// answered with a RST). Endpoints remove their own entry when they stop.
/// <para>
/// It also holds the 4-tuples this node's server endpoints left by migrating away (thesis 4.2.3): for 2 MSL the
/// origin owes the client silence on them, and that is all it keeps of the connection, the 4-tuple and a deadline,
/// while the endpoint actor and its buffers go at once.
/// </para>
/// </summary>
internal sealed class ConnectionTable
{
    private readonly ConcurrentDictionary<ConnectionKey, IActorRef> _endpoints = new();
    private readonly ConcurrentDictionary<ushort, IActorRef> _listeners = new();
    private readonly ConcurrentDictionary<ConnectionKey, Instant> _silentUntil = new();

    /// <summary>The silenced 4-tuples in the order they were silenced: every deadline is 2 MSL after, so the oldest expires first.</summary>
    private readonly Queue<(ConnectionKey Key, Instant Until)> _silencedInOrder = new();
    private readonly Lock _silencing = new();

    public int EndpointCount => _endpoints.Count;

    public bool TryGetEndpoint(ConnectionKey key, out IActorRef endpoint) => _endpoints.TryGetValue(key, out endpoint!);

    public bool TryAddEndpoint(ConnectionKey key, IActorRef endpoint) => _endpoints.TryAdd(key, endpoint);

    /// <summary>Removes the entry only if it still names <paramref name="endpoint"/> (a successor may hold the key).</summary>
    public void RemoveEndpoint(ConnectionKey key, IActorRef endpoint) =>
        _endpoints.TryRemove(new KeyValuePair<ConnectionKey, IActorRef>(key, endpoint));

    public bool TryGetListener(ushort port, out IActorRef listener) => _listeners.TryGetValue(port, out listener!);

    public bool TryAddListener(ushort port, IActorRef listener) => _listeners.TryAdd(port, listener);

    public void RemoveListener(ushort port, IActorRef listener) =>
        _listeners.TryRemove(new KeyValuePair<ushort, IActorRef>(port, listener));

    public bool IsListening(ushort port) => _listeners.ContainsKey(port);

    /// <summary>4-tuples silenced now, expired ones excluded once <see cref="Silence"/> or <see cref="SilencedCount"/> swept them.</summary>
    public int SilencedCount(Instant now)
    {
        lock (_silencing)
        {
            SweepSilenced(now);
            return _silentUntil.Count;
        }
    }

    /// <summary>Segments to <paramref name="key"/> are dropped without an answer until <paramref name="until"/> (thesis 4.2.3, the origin after the state ack).</summary>
    public void Silence(ConnectionKey key, Instant until, Instant now)
    {
        lock (_silencing)
        {
            SweepSilenced(now);
            _silentUntil[key] = until;
            _silencedInOrder.Enqueue((key, until));
        }
    }

    /// <summary>True while <paramref name="key"/> is owed silence.</summary>
    public bool IsSilenced(ConnectionKey key, Instant now) => _silentUntil.TryGetValue(key, out var until) && until > now;

    /// <summary>The client came back on a silenced 4-tuple with a new connection: it is an ordinary 4-tuple again.</summary>
    public void Unsilence(ConnectionKey key) => _silentUntil.TryRemove(key, out _);

    private void SweepSilenced(Instant now)
    {
        while (_silencedInOrder.TryPeek(out var oldest) && oldest.Until <= now)
        {
            _silencedInOrder.Dequeue();
            _silentUntil.TryRemove(new KeyValuePair<ConnectionKey, Instant>(oldest.Key, oldest.Until));
        }
    }
}

using System.Collections.Concurrent;
using Akka.Actor;

namespace Mtcp.Actors.Packets;

/// <summary>
/// The packet actor's demultiplexing table: endpoint actors by 4-tuple, listener actors by port. The receive
/// thread reads it for every segment; entries are added by whoever creates an endpoint, before the endpoint
/// sends anything, so that no answer from the peer can arrive while its 4-tuple is still unknown (it would be
/// answered with a RST). Endpoints remove their own entry when they stop.
/// </summary>
internal sealed class ConnectionTable
{
    private readonly ConcurrentDictionary<ConnectionKey, IActorRef> _endpoints = new();
    private readonly ConcurrentDictionary<ushort, IActorRef> _listeners = new();

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
}

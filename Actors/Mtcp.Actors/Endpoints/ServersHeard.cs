using System.Collections.Concurrent;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// When each server was last heard from on any client connection of this runtime (a segment the connection accepted),
/// so that a connection to a server heard on another one does not probe it (<see cref="TcpConnection.PeerHostHeard"/>):
/// with tens of thousands of quiet connections to one node, per-connection keep-alive probes alone would load both
/// ends with a segment each way per connection and probe interval. Written and read by client endpoint actors on their
/// own threads; a write that loses a race to a slightly newer one only makes a probe come a moment earlier.
/// </summary>
internal sealed class ServersHeard
{
    /// <summary>Servers remembered at most: bounded memory whatever a client connects to; past it the table starts over.</summary>
    private const int MaxServers = 4096;

    private readonly ConcurrentDictionary<ServerEndpoint, HeardAt> _servers = new();

    /// <summary><paramref name="server"/> was heard from at <paramref name="at"/>.</summary>
    public void Heard(ServerEndpoint server, Instant at)
    {
        if (_servers.TryGetValue(server, out var heard))
        {
            if (Volatile.Read(ref heard.Microseconds) < at.Microseconds)
            {
                Volatile.Write(ref heard.Microseconds, at.Microseconds);
            }

            return;
        }

        if (_servers.Count >= MaxServers)
        {
            _servers.Clear();
        }

        _servers.TryAdd(server, new HeardAt { Microseconds = at.Microseconds });
    }

    /// <summary>When <paramref name="server"/> was last heard from; <see cref="Instant.Zero"/> when never.</summary>
    public Instant LastHeard(ServerEndpoint server) =>
        _servers.TryGetValue(server, out var heard) ? new Instant(Volatile.Read(ref heard.Microseconds)) : Instant.Zero;

    private sealed class HeardAt
    {
        public long Microseconds;
    }
}

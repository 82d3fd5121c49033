using System.Collections.Concurrent;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// When each server was last heard from on any client connection of this runtime (a segment the connection accepted),
/// so that a connection to a server heard on another one does not probe it (<see cref="TcpConnection.PeerHostHeard"/>):
/// with tens of thousands of quiet connections to one node, per-connection keep-alive probes alone would load both
/// ends with a segment each way per connection and probe interval. Written and read by client endpoint actors on their
/// own threads; a write that loses a race to a slightly newer one only makes a probe come a moment earlier. It also
/// holds each server's first probe since it was last heard, whose answer the other connections wait for
/// (<see cref="TcpConnection.PeerHostProbed"/>).
/// </summary>
internal sealed class ServersHeard
{
    /// <summary>Servers remembered at most: bounded memory whatever a client connects to; past it the table starts over.</summary>
    private const int MaxServers = 4096;

    private readonly ConcurrentDictionary<ServerEndpoint, Times> _servers = new();

    /// <summary><paramref name="server"/> was heard from at <paramref name="at"/>.</summary>
    public void Heard(ServerEndpoint server, Instant at)
    {
        var times = TimesOf(server);
        if (Volatile.Read(ref times.HeardMicroseconds) < at.Microseconds)
        {
            Volatile.Write(ref times.HeardMicroseconds, at.Microseconds);
        }
    }

    /// <summary>
    /// A connection sent <paramref name="server"/> a keep-alive probe at <paramref name="at"/>: recorded when it is the
    /// first since the server was last heard, so that later probes of a silent server do not go on deferring the rest.
    /// </summary>
    public void Probed(ServerEndpoint server, Instant at)
    {
        var times = TimesOf(server);
        var probed = Volatile.Read(ref times.ProbedMicroseconds);
        if (probed <= Volatile.Read(ref times.HeardMicroseconds) && probed < at.Microseconds)
        {
            Volatile.Write(ref times.ProbedMicroseconds, at.Microseconds);
        }
    }

    /// <summary>When <paramref name="server"/> was last heard from; <see cref="Instant.Zero"/> when never.</summary>
    public Instant LastHeard(ServerEndpoint server) =>
        _servers.TryGetValue(server, out var times) ? new Instant(Volatile.Read(ref times.HeardMicroseconds)) : Instant.Zero;

    /// <summary>
    /// When <paramref name="server"/> was first probed since it was last heard from; <see cref="Instant.Zero"/> when
    /// no probe awaits its answer.
    /// </summary>
    public Instant ProbeAwaitingAnswer(ServerEndpoint server)
    {
        if (!_servers.TryGetValue(server, out var times))
        {
            return Instant.Zero;
        }

        var probed = Volatile.Read(ref times.ProbedMicroseconds);
        return probed > Volatile.Read(ref times.HeardMicroseconds) ? new Instant(probed) : Instant.Zero;
    }

    private Times TimesOf(ServerEndpoint server)
    {
        if (_servers.TryGetValue(server, out var times))
        {
            return times;
        }

        if (_servers.Count >= MaxServers)
        {
            _servers.Clear();
        }

        return _servers.GetOrAdd(server, static _ => new Times());
    }

    private sealed class Times
    {
        public long HeardMicroseconds;
        public long ProbedMicroseconds;
    }
}

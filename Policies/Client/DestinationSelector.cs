using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// Picks where one connection goes next among the servers it may use: the alternates it was told about
/// (TCP_MIGRATE, thesis 4.2.3) plus every server it has been served by, so that a client can move back to
/// a server it left, as in the back-and-forth of thesis fig. 5.4. The current server is never picked.
/// </summary>
public sealed class DestinationSelector
{
    private readonly DestinationChoice _choice;
    private readonly List<ServerEndpoint> _servers = [];
    private readonly Dictionary<ServerEndpoint, double> _knownThroughput = [];
    private int _nextIndex;

    public DestinationSelector(DestinationChoice choice) => _choice = choice;

    /// <summary>The server the connection is on now; null until the runtime says.</summary>
    public ServerEndpoint? Current { get; private set; }

    /// <summary>Every server a destination may be picked from (the current one included), in first-seen order.</summary>
    public IReadOnlyList<ServerEndpoint> Servers => _servers;

    public void SetServers(ServerEndpoint current, IEnumerable<ServerEndpoint> alternates)
    {
        ArgumentNullException.ThrowIfNull(alternates);
        Current = current;
        Add(current);
        foreach (var server in alternates)
        {
            Add(server);
        }
    }

    public void MovedTo(ServerEndpoint server)
    {
        Current = server;
        Add(server);
    }

    /// <summary>Remembers the best smoothed throughput (bytes per second) seen on <paramref name="server"/>'s latest visit.</summary>
    public void RecordThroughput(ServerEndpoint server, double bytesPerSecond) => _knownThroughput[server] = bytesPerSecond;

    /// <summary>A migration to <paramref name="server"/> failed: best-known treats it as the worst server until it is visited.</summary>
    public void RecordFailure(ServerEndpoint server) => _knownThroughput[server] = 0;

    /// <summary>
    /// The next destination, or null when there is no server other than the current one. Changes nothing:
    /// call <see cref="Picked"/> when the decision is sent, so a suppressed decision does not skip a server.
    /// </summary>
    public ServerEndpoint? Choose() => _choice switch
    {
        DestinationChoice.RoundRobin => NextRoundRobin(),
        DestinationChoice.BestKnown => BestKnown(),
        _ => throw new InvalidOperationException($"unknown destination choice {_choice}"),
    };

    /// <summary>A decision naming <paramref name="server"/> was sent: round robin continues after it.</summary>
    public void Picked(ServerEndpoint server)
    {
        var index = _servers.IndexOf(server);
        if (index >= 0)
        {
            _nextIndex = (index + 1) % _servers.Count;
        }
    }

    private ServerEndpoint? NextRoundRobin()
    {
        for (var step = 0; step < _servers.Count; step++)
        {
            var index = (_nextIndex + step) % _servers.Count;
            if (_servers[index] != Current)
            {
                return _servers[index];
            }
        }

        return null;
    }

    private ServerEndpoint? BestKnown()
    {
        ServerEndpoint? best = null;
        var bestThroughput = double.NegativeInfinity;
        foreach (var server in _servers)
        {
            if (server == Current)
            {
                continue;
            }

            // An unvisited server may be the best of all: try it before settling on a known one.
            if (!_knownThroughput.TryGetValue(server, out var throughput))
            {
                return server;
            }

            if (throughput > bestThroughput)
            {
                best = server;
                bestThroughput = throughput;
            }
        }

        return best;
    }

    private void Add(ServerEndpoint server)
    {
        if (!_servers.Contains(server))
        {
            _servers.Add(server);
        }
    }
}

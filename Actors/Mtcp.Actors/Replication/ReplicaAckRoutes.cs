using System.Diagnostics;
using Akka.Actor;
using Mtcp.Actors.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

/// <summary>
/// On the serving node, for one peer as buddy: which endpoint actor replicates each connection to it, and this node's
/// updates awaiting the peer's ack with when each left (<c>mtcp.replication.round_trip.duration</c>). The control
/// connection writes it as endpoints send updates and stop; the reader thread of the direct replication channel reads
/// it, so that a buddy's ack goes from the thread that opened it straight to the endpoint that waits for it, without
/// the control connection's mailbox in between (every client byte's ACK waits for that ack, docs/failover.md).
/// Thread-safe: one lock over a few dictionary operations per update and per ack.
/// </summary>
/// <param name="peer">the buddy node whose acks these are.</param>
internal sealed class ReplicaAckRoutes(Address peer)
{
    private readonly object _gate = new();
    private readonly Dictionary<ConnectionId, IActorRef> _endpoints = [];
    private readonly ReplicaUpdateTimes _sent = new();

    /// <summary>The endpoint actor replicating <paramref name="cid"/>, if any.</summary>
    public IActorRef? EndpointOf(ConnectionId cid)
    {
        lock (_gate)
        {
            return _endpoints.GetValueOrDefault(cid);
        }
    }

    /// <summary><paramref name="endpoint"/> replicates <paramref name="cid"/>: the peer's acks of it go there.</summary>
    public void Route(ConnectionId cid, IActorRef endpoint)
    {
        lock (_gate)
        {
            _endpoints[cid] = endpoint;
        }
    }

    /// <summary>No endpoint replicates <paramref name="cid"/> to the peer any more; its updates awaiting acks are forgotten.</summary>
    public void Unroute(ConnectionId cid)
    {
        lock (_gate)
        {
            _endpoints.Remove(cid);
            _sent.Forget(cid);
        }
    }

    /// <summary>Update <paramref name="update"/> of <paramref name="cid"/> left for the peer at <paramref name="at"/> (a Stopwatch timestamp).</summary>
    public void Sent(ConnectionId cid, ulong update, long at)
    {
        lock (_gate)
        {
            _sent.Passed(cid, update, at);
        }
    }

    /// <summary><paramref name="cid"/> was released: no ack of its updates is awaited.</summary>
    public void Released(ConnectionId cid)
    {
        lock (_gate)
        {
            _sent.Forget(cid);
        }
    }

    /// <summary>
    /// The connections with updates awaiting their ack, and their endpoints, forgotten: the path they went by broke, and
    /// each gets its whole state sent again.
    /// </summary>
    public IReadOnlyList<(ConnectionId Cid, IActorRef? Endpoint)> TakeAwaiting()
    {
        lock (_gate)
        {
            var awaiting = _sent.Awaiting;
            var taken = new List<(ConnectionId, IActorRef?)>(awaiting.Count);
            foreach (var cid in awaiting)
            {
                _sent.Forget(cid);
                taken.Add((cid, _endpoints.GetValueOrDefault(cid)));
            }

            return taken;
        }
    }

    /// <summary>
    /// The peer's <paramref name="ack"/>, just opened: the round trip of the update it names is recorded when that update
    /// was seen leaving, and the ack goes to the endpoint replicating its connection, from <paramref name="sender"/>.
    /// False when no endpoint replicates it here any more (the caller hands it to whoever drops it).
    /// </summary>
    public bool TryDeliver(ReplicaAck ack, IActorRef sender)
    {
        ArgumentNullException.ThrowIfNull(ack);
        IActorRef? endpoint;
        TimeSpan? roundTrip;
        lock (_gate)
        {
            roundTrip = _sent.Acknowledged(ack, Stopwatch.GetTimestamp());
            endpoint = _endpoints.GetValueOrDefault(ack.Cid);
        }

        if (roundTrip is { } elapsed)
        {
            MigrationMetrics.ReplicaRoundTrip.Record(elapsed.TotalSeconds);
        }

        endpoint?.Tell(new ReplicaAckReceived(peer, ack), sender);
        return endpoint is not null;
    }
}

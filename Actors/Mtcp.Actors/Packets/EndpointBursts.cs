using Akka.Actor;

namespace Mtcp.Actors.Packets;

/// <summary>
/// On the receive thread, during one burst of reads: the segments routed to endpoints, gathered per 4-tuple in arrival
/// order and told at the end of the burst, one message per 4-tuple (<see cref="InboundBurst"/>; a lone segment goes as
/// itself). A burst is at most <c>mtcp.runtime.receive-burst</c> segments, so the linear search stays short.
/// </summary>
internal sealed class EndpointBursts
{
    private readonly List<Pending> _pending = [];
    private int _used;

    /// <summary>True while segments wait for <see cref="TellAll"/>.</summary>
    public bool Any => _used > 0;

    public void Add(IActorRef endpoint, InboundSegment segment)
    {
        for (var i = 0; i < _used; i++)
        {
            if (_pending[i].Key == segment.Key)
            {
                _pending[i].Segments.Add(segment);
                return;
            }
        }

        if (_used == _pending.Count)
        {
            _pending.Add(new Pending());
        }

        var pending = _pending[_used++];
        pending.Key = segment.Key;
        pending.Endpoint = endpoint;
        pending.Segments.Add(segment);
    }

    /// <summary>Tells each endpoint its segments of this burst, in the order their 4-tuples first appeared.</summary>
    public void TellAll()
    {
        for (var i = 0; i < _used; i++)
        {
            var pending = _pending[i];
            var segments = pending.Segments;
            pending.Endpoint!.Tell(segments.Count == 1 ? segments[0] : new InboundBurst([.. segments]));
            segments.Clear();
            pending.Endpoint = null;
        }

        _used = 0;
    }

    private sealed class Pending
    {
        public ConnectionKey Key { get; set; }

        public IActorRef? Endpoint { get; set; }

        public List<InboundSegment> Segments { get; } = [];
    }
}

using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>Counters of what the simulated network did to packets.</summary>
public sealed class SimNetworkStats
{
    public long Sent { get; internal set; }

    public long Delivered { get; internal set; }

    public long Lost { get; internal set; }

    public long Duplicated { get; internal set; }

    public long Reordered { get; internal set; }

    public long OverMtu { get; internal set; }

    /// <summary>Packets dropped because their link was in a blackhole period (<see cref="LinkConditions.BlackholeRate"/>).</summary>
    public long Blackholed { get; internal set; }

    public long Unroutable { get; internal set; }
}

/// <summary>
/// A deterministic network of <see cref="ISimNode"/>s on a virtual clock, in the manner of quinn-proto's test
/// <c>Pair</c> but for any number of hosts. One seeded <see cref="Random"/> decides every impairment, so a seed
/// replays a run exactly. <see cref="Step"/> advances time to the next delivery or timer; nothing here reads a clock.
/// </summary>
public sealed class SimNetwork
{
    private readonly List<ISimNode> _nodes = [];
    private readonly Dictionary<IpAddress, ISimNode> _byAddress = [];
    private readonly Dictionary<IpAddress, Instant> _linkFreeAt = [];
    private readonly Dictionary<(IpAddress From, IpAddress To), LinkConditions> _linkOverrides = [];
    private readonly Dictionary<(IpAddress From, IpAddress To), Instant> _blackholeUntil = [];
    private readonly PriorityQueue<SimPacket, (Instant At, long Order)> _inFlight = new();
    private long _order;

    public SimNetwork(int seed, LinkConditions conditions)
    {
        Seed = seed;
        Random = new Random(seed);
        Conditions = conditions;
    }

    public int Seed { get; }

    /// <summary>The only source of randomness in a run; nodes may draw ISNs from it too.</summary>
    public Random Random { get; }

    /// <summary>Impairments for packets sent from now on, unless a link override applies; may change mid-run.</summary>
    public LinkConditions Conditions { get; set; }

    /// <summary>
    /// Gives the one-way link <paramref name="from"/> to <paramref name="to"/> its own conditions (null restores the
    /// network-wide ones); a <see cref="LinkConditions.LossRate"/> of 1 partitions it.
    /// </summary>
    public void SetLinkConditions(IpAddress from, IpAddress to, LinkConditions? conditions)
    {
        if (conditions is null)
        {
            _linkOverrides.Remove((from, to));
        }
        else
        {
            _linkOverrides[(from, to)] = conditions;
        }
    }

    public Instant Now { get; private set; } = Instant.FromMilliseconds(1);

    public SimNetworkStats Stats { get; } = new();

    public int PacketsInFlight => _inFlight.Count;

    /// <summary>Packets for which this returns true are lost on sending, for tests that need one exact loss.</summary>
    public Func<SimPacket, bool>? Drop { get; set; }

    /// <summary>Observes every packet as it is delivered (after impairments), for tests that inspect traffic.</summary>
    public Action<Instant, SimPacket>? OnDeliver { get; set; }

    public T Add<T>(T node)
        where T : ISimNode
    {
        _nodes.Add(node);
        _byAddress.Add(node.Address, node);
        return node;
    }

    /// <summary>
    /// One step: collect every node's output, advance virtual time to the earliest delivery or timer, deliver all
    /// packets due then and fire all timers due then. Returns false when nothing is left to happen.
    /// </summary>
    public bool Step()
    {
        CollectTransmissions();

        Instant? next = _inFlight.TryPeek(out _, out var head) ? head.At : null;
        foreach (var node in _nodes)
        {
            next = Instant.Earliest(next, node.PollTimeout());
        }

        if (next is not { } at)
        {
            return false;
        }

        Now = Instant.Max(Now, at);
        while (_inFlight.TryPeek(out var packet, out var due) && due.At <= Now)
        {
            _inFlight.Dequeue();
            if (_byAddress.TryGetValue(packet.Destination, out var destination))
            {
                Stats.Delivered++;
                OnDeliver?.Invoke(Now, packet);
                destination.Receive(Now, packet);
            }
            else
            {
                Stats.Unroutable++;
            }
        }

        foreach (var node in _nodes)
        {
            if (node.PollTimeout() is { } timeout && timeout <= Now)
            {
                node.HandleTimeout(Now);
                if (node.PollTimeout() is { } again && again <= Now)
                {
                    // A timer that does not move after firing would spin the clock forever.
                    throw new InvalidOperationException($"node {node.Address} left its timer at {again} after handling it at {Now}");
                }
            }
        }

        return true;
    }

    /// <summary>
    /// Nothing is left to happen before <paramref name="at"/> (<see cref="Step"/> returned false), but something outside
    /// the network is scheduled then, such as a failure detector's verdict: the clock moves there.
    /// </summary>
    public void AdvanceTo(Instant at) => Now = Instant.Max(Now, at);

    /// <summary>
    /// Steps until <paramref name="done"/> holds (true), nothing is left to happen, or virtual time passes
    /// <paramref name="timeLimit"/> (false).
    /// </summary>
    public bool Drive(Func<bool> done, TimeSpan timeLimit)
    {
        var limit = Now + timeLimit;
        while (!done())
        {
            if (Now > limit || !Step())
            {
                return done();
            }
        }

        return true;
    }

    /// <summary>Puts a packet on the wire as if a host had sent it (subject to the same impairments), e.g. a forgery.</summary>
    public void Inject(in SimPacket packet) => Send(packet);

    /// <summary>Loses every packet in flight from or to <paramref name="address"/> (a node that crashed); returns how many.</summary>
    public int DiscardInFlight(IpAddress address)
    {
        var kept = new List<(SimPacket Packet, (Instant At, long Order) Due)>();
        var discarded = 0;
        while (_inFlight.TryDequeue(out var packet, out var due))
        {
            if (packet.Source == address || packet.Destination == address)
            {
                discarded++;
                continue;
            }

            kept.Add((packet, due));
        }

        foreach (var (packet, due) in kept)
        {
            _inFlight.Enqueue(packet, due);
        }

        Stats.Lost += discarded;
        return discarded;
    }

    /// <summary>Polls every node until it has nothing more to send and puts the packets on the wire.</summary>
    public void CollectTransmissions()
    {
        foreach (var node in _nodes)
        {
            while (node.PollTransmit(Now, out var packet))
            {
                Send(packet);
            }
        }
    }

    private void Send(in SimPacket packet)
    {
        Stats.Sent++;
        var conditions = _linkOverrides.Count > 0 && _linkOverrides.TryGetValue((packet.Source, packet.Destination), out var link) ? link : Conditions;
        if (packet.Size > conditions.Mtu)
        {
            Stats.OverMtu++;
            return;
        }

        var departure = Now;
        if (conditions.BandwidthBytesPerSecond is { } bandwidth)
        {
            departure = Instant.Max(Now, _linkFreeAt.GetValueOrDefault(packet.Source, Now));
            _linkFreeAt[packet.Source] = departure + TimeSpan.FromTicks(packet.Size * TimeSpan.TicksPerSecond / bandwidth);
        }

        if (conditions.BlackholeRate > 0 && InBlackhole(packet, conditions))
        {
            Stats.Blackholed++;
            return;
        }

        if (Random.NextDouble() < conditions.LossRate || Drop?.Invoke(packet) == true)
        {
            Stats.Lost++;
            return;
        }

        Enqueue(packet, departure, conditions);
        if (Random.NextDouble() < conditions.DuplicateRate)
        {
            Stats.Duplicated++;
            Enqueue(packet, departure, conditions);
        }
    }

    /// <summary>True when the packet's link is in a blackhole period, or this packet starts one.</summary>
    private bool InBlackhole(in SimPacket packet, LinkConditions conditions)
    {
        var link = (packet.Source, packet.Destination);
        if (_blackholeUntil.TryGetValue(link, out var until) && Now < until)
        {
            return true;
        }

        if (Random.NextDouble() < conditions.BlackholeRate)
        {
            _blackholeUntil[link] = Now + conditions.BlackholeDuration;
            return true;
        }

        return false;
    }

    private void Enqueue(in SimPacket packet, Instant departure, LinkConditions conditions)
    {
        var arrival = departure + conditions.Latency;
        if (conditions.Jitter > TimeSpan.Zero)
        {
            arrival += conditions.Jitter * Random.NextDouble();
        }

        if (conditions.ReorderRate > 0 && Random.NextDouble() < conditions.ReorderRate)
        {
            Stats.Reordered++;
            arrival += conditions.ReorderDelay * Random.NextDouble();
        }

        _inFlight.Enqueue(packet, (arrival, _order++));
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>What a <see cref="LossyPacketTransport"/> did to the segments sent through it (or through one of its links).</summary>
public sealed class LossyTransportStats
{
    private long _sent;
    private long _forwarded;
    private long _lost;
    private long _duplicated;
    private long _reordered;
    private long _blackholed;
    private long _overMtu;
    private long _droppedLocally;

    /// <summary>Segments handed to <see cref="LossyPacketTransport.Send"/>.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Copies handed on to the decorated transport (duplicates included).</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    public long Lost => Interlocked.Read(ref _lost);

    public long Duplicated => Interlocked.Read(ref _duplicated);

    /// <summary>Copies held back by up to <see cref="LinkConditions.ReorderDelay"/>, so that later ones overtake them.</summary>
    public long Reordered => Interlocked.Read(ref _reordered);

    /// <summary>Segments dropped because their link was in a blackhole period.</summary>
    public long Blackholed => Interlocked.Read(ref _blackholed);

    public long OverMtu => Interlocked.Read(ref _overMtu);

    /// <summary>Copies the decorated transport refused (its own local drops, or disposed while they were delayed).</summary>
    public long DroppedLocally => Interlocked.Read(ref _droppedLocally);

    internal void CountSent() => Interlocked.Increment(ref _sent);

    internal void CountForwarded() => Interlocked.Increment(ref _forwarded);

    internal void CountLost() => Interlocked.Increment(ref _lost);

    internal void CountDuplicated() => Interlocked.Increment(ref _duplicated);

    internal void CountReordered() => Interlocked.Increment(ref _reordered);

    internal void CountBlackholed() => Interlocked.Increment(ref _blackholed);

    internal void CountOverMtu() => Interlocked.Increment(ref _overMtu);

    internal void CountDroppedLocally() => Interlocked.Increment(ref _droppedLocally);

    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"sent={Sent} forwarded={Forwarded} lost={Lost} duplicated={Duplicated} reordered={Reordered} blackholed={Blackholed} over-mtu={OverMtu} dropped-locally={DroppedLocally}");
}

/// <summary>
/// A packet transport that impairs what another one sends, in real time: loss, duplication, delay with jitter,
/// reordering, blackhole periods, MTU and bandwidth, as <see cref="LinkConditions"/> describes them (the semantics of
/// <see cref="SimNetwork"/>). Every destination address is a link with its own conditions and its own seeded
/// generator, so a seed decides the same fate for the same sequence of segments on a link whatever other links carry;
/// when real time schedules the segments differently, the fates fall on other segments. Receiving passes through.
/// </summary>
/// <remarks>
/// <see cref="Send"/> never waits: a segment that must be delayed is copied into a pooled buffer and queued for a
/// dedicated delivery thread (a timer on the thread pool would be late whenever the pool is busy, which is exactly
/// when a loaded test runs). Segments due at the same instant leave in the order they were sent. Decisions are taken
/// under one lock, so any number of threads may send at once, as through the decorated transport.
/// </remarks>
public sealed class LossyPacketTransport : IPacketTransport
{
    /// <summary>The IP header of <see cref="SimPacket.HeaderOverhead"/>: the rest of it is the TCP header.</summary>
    private const int IPv4HeaderLength = 20;

    private readonly IPacketTransport _inner;
    private readonly object _lock = new();
    private readonly Dictionary<IpAddress, Link> _links = [];
    private readonly PriorityQueue<Delayed, (long Due, long Order)> _delayed = new();
    private readonly Thread _delivery;
    private LinkConditions _conditions;
    private int _seed;
    private long _order;
    private long _allBlackholedUntil;
    private bool _disposed;

    /// <param name="inner">the transport that carries the segments; this one owns it from now on.</param>
    /// <param name="conditions">the conditions of every link without its own (<see cref="SetLinkConditions"/>).</param>
    /// <param name="seed">seeds each link's generator, together with the link's destination address.</param>
    public LossyPacketTransport(IPacketTransport inner, LinkConditions conditions, int seed)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(conditions);
        _inner = inner;
        _conditions = conditions;
        _seed = seed;
        _delivery = new Thread(DeliverLoop) { IsBackground = true, Name = $"lossy delivery {inner.LocalAddress}" };
        _delivery.Start();
    }

    public IpAddress LocalAddress => _inner.LocalAddress;

    public int MaxSegmentLength => _inner.MaxSegmentLength;

    public int ReceiveBufferLength => _inner.ReceiveBufferLength;

    /// <summary>
    /// The simulated link's MTU stands for the route's, as the kernel's would: a connection opened over this link
    /// takes an MSS its packets fit (the link drops larger ones), bounded by the decorated transport's own answer.
    /// </summary>
    public int? MaxSegmentLengthTo(IpAddress destination)
    {
        int mtu;
        lock (_lock)
        {
            mtu = LinkTo(destination).Conditions.Mtu;
        }

        var link = Math.Min(MaxSegmentLength, mtu - IPv4HeaderLength);
        return _inner.MaxSegmentLengthTo(destination) is { } route ? Math.Min(route, link) : link;
    }

    /// <summary>Totals over every link.</summary>
    public LossyTransportStats Stats { get; } = new();

    /// <summary>The conditions of links without their own.</summary>
    public LinkConditions Conditions
    {
        get
        {
            lock (_lock)
            {
                return _conditions;
            }
        }
    }

    /// <summary>
    /// New conditions for every link without its own, from now on; their generators restart from
    /// <paramref name="seed"/> (and each link's destination), so a new run on the same transport replays by its seed.
    /// </summary>
    public void SetConditions(LinkConditions conditions, int seed)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        lock (_lock)
        {
            _conditions = conditions;
            _seed = seed;
            foreach (var (destination, link) in _links)
            {
                if (!link.Overridden)
                {
                    link.Reset(conditions, LinkSeed(seed, destination));
                }
            }
        }
    }

    /// <summary>
    /// Gives the link to <paramref name="destination"/> its own conditions and a generator seeded with
    /// <paramref name="seed"/>, from now on; null returns it to the transport's conditions. Its counters start at zero.
    /// </summary>
    public void SetLinkConditions(IpAddress destination, LinkConditions? conditions, int seed)
    {
        lock (_lock)
        {
            var link = LinkTo(destination);
            link.Overridden = conditions is not null;
            link.Reset(conditions ?? _conditions, conditions is null ? LinkSeed(_seed, destination) : seed);
            link.Stats = new LossyTransportStats();
        }
    }

    /// <summary>What the link to <paramref name="destination"/> did since it was first used or last given conditions.</summary>
    public LossyTransportStats LinkStats(IpAddress destination)
    {
        lock (_lock)
        {
            return LinkTo(destination).Stats;
        }
    }

    /// <summary>Drops every segment to <paramref name="destination"/> (null: to anywhere) for <paramref name="duration"/> from now.</summary>
    public void StartBlackhole(TimeSpan duration, IpAddress? destination = null)
    {
        var until = Stopwatch.GetTimestamp() + StopwatchTicks(duration);
        lock (_lock)
        {
            if (destination is { } one)
            {
                LinkTo(one).BlackholeUntil = until;
            }
            else
            {
                _allBlackholedUntil = until;
            }
        }
    }

    /// <summary>
    /// Decides the segment's fate and sends it, now or from the delivery thread. Returns false only when the decorated
    /// transport dropped it locally right away; a segment the link loses is sent as far as the sender can tell.
    /// </summary>
    public bool Send(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        var now = Stopwatch.GetTimestamp();
        long first;
        long? second = null;
        LossyTransportStats linkStats;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var link = LinkTo(destination);
            linkStats = link.Stats;
            var conditions = link.Conditions;
            Count(linkStats, static s => s.CountSent());
            if (PacketSize(segment) > conditions.Mtu)
            {
                Count(linkStats, static s => s.CountOverMtu());
                return true;
            }

            var departure = now;
            if (conditions.BandwidthBytesPerSecond is { } bandwidth)
            {
                departure = Math.Max(now, link.FreeAt);
                link.FreeAt = departure + (PacketSize(segment) * Stopwatch.Frequency / bandwidth);
            }

            if (now < _allBlackholedUntil || now < link.BlackholeUntil || (conditions.BlackholeRate > 0 && link.Random.NextDouble() < conditions.BlackholeRate && StartsBlackhole(link, now)))
            {
                Count(linkStats, static s => s.CountBlackholed());
                return true;
            }

            if (conditions.LossRate > 0 && link.Random.NextDouble() < conditions.LossRate)
            {
                Count(linkStats, static s => s.CountLost());
                return true;
            }

            first = departure + Delay(link, conditions, linkStats);
            if (conditions.DuplicateRate > 0 && link.Random.NextDouble() < conditions.DuplicateRate)
            {
                Count(linkStats, static s => s.CountDuplicated());
                second = departure + Delay(link, conditions, linkStats);
            }

            if (first > now)
            {
                Enqueue(destination, segment, first, linkStats);
            }

            if (second is { } due && due > now)
            {
                Enqueue(destination, segment, due, linkStats);
            }
        }

        var sent = true;
        if (first <= now)
        {
            sent = Forward(destination, segment, linkStats);
        }

        if (second is { } again && again <= now)
        {
            Forward(destination, segment, linkStats);
        }

        return sent;
    }

    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received) => _inner.Receive(buffer, timeout, out received);

    public bool TryReceiveWaiting(Span<byte> buffer, out ReceivedSegment received) => _inner.TryReceiveWaiting(buffer, out received);

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            Volatile.Write(ref _disposed, true);
            Monitor.PulseAll(_lock);
        }

        if (Thread.CurrentThread != _delivery)
        {
            _delivery.Join();
        }

        lock (_lock)
        {
            while (_delayed.TryDequeue(out var dropped, out _))
            {
                Count(dropped.Stats, static s => s.CountDroppedLocally());
                ArrayPool<byte>.Shared.Return(dropped.Buffer);
            }
        }

        _inner.Dispose();
    }

    public override string ToString() => $"lossy {_inner}";

    /// <summary>The IP packet's size as <see cref="SimNetwork"/> counts it: IPv4 and TCP headers without options, plus the payload.</summary>
    private static int PacketSize(ReadOnlySpan<byte> segment)
    {
        var header = segment.Length >= 20 ? (segment[12] >> 4) * 4 : 0;
        if (header < 20 || header > segment.Length)
        {
            // Not a TCP header (the transport carries any bytes): count all of it as payload.
            header = 0;
        }

        return SimPacket.HeaderOverhead + segment.Length - header;
    }

    private static long StopwatchTicks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Mixes the transport's seed with the destination's bytes (FNV-1a): string and HashCode hashes differ per process.</summary>
    private static int LinkSeed(int seed, IpAddress destination)
    {
        Span<byte> bytes = stackalloc byte[4 + IpAddress.V6Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, seed);
        var length = 4 + destination.WriteTo(bytes[4..]);
        var hash = 2166136261u;
        foreach (var b in bytes[..length])
        {
            hash = unchecked((hash ^ b) * 16777619u);
        }

        return unchecked((int)hash);
    }

    private static bool StartsBlackhole(Link link, long now)
    {
        link.BlackholeUntil = now + StopwatchTicks(link.Conditions.BlackholeDuration);
        return true;
    }

    /// <summary>Every count goes to the transport's totals and to the link's.</summary>
    private void Count(LossyTransportStats link, Action<LossyTransportStats> count)
    {
        count(Stats);
        count(link);
    }

    private long Delay(Link link, LinkConditions conditions, LossyTransportStats linkStats)
    {
        var delay = conditions.Latency;
        if (conditions.Jitter > TimeSpan.Zero)
        {
            delay += conditions.Jitter * link.Random.NextDouble();
        }

        if (conditions.ReorderRate > 0 && link.Random.NextDouble() < conditions.ReorderRate)
        {
            Count(linkStats, static s => s.CountReordered());
            delay += conditions.ReorderDelay * link.Random.NextDouble();
        }

        return StopwatchTicks(delay);
    }

    private Link LinkTo(IpAddress destination)
    {
        if (!_links.TryGetValue(destination, out var link))
        {
            link = new Link(_conditions, LinkSeed(_seed, destination));
            _links.Add(destination, link);
        }

        return link;
    }

    private void Enqueue(IpAddress destination, ReadOnlySpan<byte> segment, long due, LossyTransportStats linkStats)
    {
        var copy = ArrayPool<byte>.Shared.Rent(Math.Max(segment.Length, 1));
        segment.CopyTo(copy);
        var wasFirst = !_delayed.TryPeek(out _, out var head) || due < head.Due;
        _delayed.Enqueue(new Delayed(destination, copy, segment.Length, linkStats), (due, _order++));
        if (wasFirst)
        {
            Monitor.Pulse(_lock);
        }
    }

    private bool Forward(IpAddress destination, ReadOnlySpan<byte> segment, LossyTransportStats linkStats)
    {
        bool sent;
        try
        {
            sent = _inner.Send(destination, segment);
        }
        catch (ObjectDisposedException) when (Volatile.Read(ref _disposed))
        {
            sent = false;
        }

        Count(linkStats, sent ? static s => s.CountForwarded() : static s => s.CountDroppedLocally());
        return sent;
    }

    private void DeliverLoop()
    {
        var due = new List<Delayed>();
        while (true)
        {
            lock (_lock)
            {
                while (true)
                {
                    if (_disposed)
                    {
                        return;
                    }

                    if (_delayed.TryPeek(out _, out var head))
                    {
                        var wait = head.Due - Stopwatch.GetTimestamp();
                        if (wait <= 0)
                        {
                            break;
                        }

                        // Monitor waits in whole milliseconds: round up, so that nothing leaves early.
                        Monitor.Wait(_lock, (int)Math.Max(1, Math.Ceiling(wait * 1000.0 / Stopwatch.Frequency)));
                    }
                    else
                    {
                        Monitor.Wait(_lock);
                    }
                }

                var now = Stopwatch.GetTimestamp();
                while (_delayed.TryPeek(out _, out var next) && next.Due <= now)
                {
                    due.Add(_delayed.Dequeue());
                }
            }

            foreach (var packet in due)
            {
                Forward(packet.Destination, packet.Buffer.AsSpan(0, packet.Length), packet.Stats);
                ArrayPool<byte>.Shared.Return(packet.Buffer);
            }

            due.Clear();
        }
    }

    /// <summary>One destination's conditions, generator and state.</summary>
    private sealed class Link(LinkConditions conditions, int seed)
    {
        public LinkConditions Conditions { get; private set; } = conditions;

        public Random Random { get; private set; } = new(seed);

        public bool Overridden { get; set; }

        public long BlackholeUntil { get; set; }

        /// <summary>When the link has finished serializing what it was given (with a bandwidth limit).</summary>
        public long FreeAt { get; set; }

        public LossyTransportStats Stats { get; set; } = new();

        public void Reset(LinkConditions conditions, int seed)
        {
            Conditions = conditions;
            Random = new Random(seed);
            BlackholeUntil = 0;
            FreeAt = 0;
        }
    }

    private readonly record struct Delayed(IpAddress Destination, byte[] Buffer, int Length, LossyTransportStats Stats);
}

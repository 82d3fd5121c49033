using System.Buffers;
using System.Collections.Concurrent;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>
/// A lossless in-process network in real time: endpoints attach by IP address and segments sent to an
/// address are queued at its endpoint. Thread-safe. Segments go to a full queue or to an address
/// nobody holds are dropped and counted, as a router would drop them. Copies travel in pooled buffers,
/// so steady traffic allocates nothing.
/// </summary>
public sealed class InMemoryPacketFabric
{
    /// <summary>The largest segment an endpoint accepts, as for a raw IPv4 packet.</summary>
    public const int MaxSegmentLength = 65535 - 20;

    private readonly ConcurrentDictionary<IpAddress, InMemoryPacketTransport> _endpoints = new();
    private long _droppedSegments;

    /// <summary>Segments dropped because the destination was unknown or its queue was full.</summary>
    public long DroppedSegments => Interlocked.Read(ref _droppedSegments);

    /// <summary>Attaches an endpoint at <paramref name="address"/>; disposing it detaches it.</summary>
    /// <exception cref="InvalidOperationException">the address is already attached.</exception>
    public InMemoryPacketTransport Attach(IpAddress address, int queueCapacity = 4096)
    {
        if (address.Length == 0)
        {
            throw new ArgumentException("an endpoint needs an IPv4 or IPv6 address", nameof(address));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(queueCapacity, 1);
        var endpoint = new InMemoryPacketTransport(this, address, queueCapacity);
        if (!_endpoints.TryAdd(address, endpoint))
        {
            throw new InvalidOperationException($"{address} is already attached to this fabric");
        }

        return endpoint;
    }

    internal void Deliver(IpAddress source, IpAddress destination, ReadOnlySpan<byte> segment)
    {
        if (!_endpoints.TryGetValue(destination, out var endpoint) || !endpoint.Enqueue(source, segment))
        {
            Interlocked.Increment(ref _droppedSegments);
        }
    }

    internal void Detach(InMemoryPacketTransport endpoint) =>
        _endpoints.TryRemove(new KeyValuePair<IpAddress, InMemoryPacketTransport>(endpoint.LocalAddress, endpoint));
}

/// <summary>One endpoint of an <see cref="InMemoryPacketFabric"/>.</summary>
public sealed class InMemoryPacketTransport : IPacketTransport
{
    private readonly InMemoryPacketFabric _fabric;
    private readonly int _queueCapacity;
    private readonly Queue<QueuedSegment> _queue;
    private readonly object _lock = new();
    private bool _disposed;

    internal InMemoryPacketTransport(InMemoryPacketFabric fabric, IpAddress localAddress, int queueCapacity)
    {
        _fabric = fabric;
        _queueCapacity = queueCapacity;
        _queue = new Queue<QueuedSegment>(Math.Min(queueCapacity, 1024));
        LocalAddress = localAddress;
    }

    public IpAddress LocalAddress { get; }

    public int MaxSegmentLength => InMemoryPacketFabric.MaxSegmentLength;

    public int ReceiveBufferLength => InMemoryPacketFabric.MaxSegmentLength;

    public bool Send(IpAddress destination, ReadOnlySpan<byte> segment)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        if (segment.Length > MaxSegmentLength)
        {
            throw new ArgumentException($"segment of {segment.Length} bytes exceeds the {MaxSegmentLength}-byte limit", nameof(segment));
        }

        _fabric.Deliver(LocalAddress, destination, segment);
        return true;
    }

    internal bool Enqueue(IpAddress source, ReadOnlySpan<byte> segment)
    {
        var copy = ArrayPool<byte>.Shared.Rent(Math.Max(segment.Length, 1));
        segment.CopyTo(copy);
        lock (_lock)
        {
            if (!_disposed && _queue.Count < _queueCapacity)
            {
                _queue.Enqueue(new QueuedSegment(source, copy, segment.Length));
                Monitor.Pulse(_lock);
                return true;
            }
        }

        ArrayPool<byte>.Shared.Return(copy);
        return false;
    }

    public ReceiveOutcome Receive(Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received)
    {
        if (buffer.Length < ReceiveBufferLength)
        {
            throw new ArgumentException($"the receive buffer needs {ReceiveBufferLength} bytes, got {buffer.Length}", nameof(buffer));
        }

        received = default;
        QueuedSegment segment;
        lock (_lock)
        {
            var deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            while (_queue.Count == 0 && !_disposed)
            {
                var remaining = deadline == long.MaxValue ? Timeout.Infinite : (int)Math.Max(0, deadline - Environment.TickCount64);
                if (remaining == 0)
                {
                    return ReceiveOutcome.TimedOut;
                }

                Monitor.Wait(_lock, remaining);
            }

            if (_disposed)
            {
                return ReceiveOutcome.Closed;
            }

            segment = _queue.Dequeue();
        }

        segment.Buffer.AsSpan(0, segment.Length).CopyTo(buffer);
        ArrayPool<byte>.Shared.Return(segment.Buffer);
        received = new ReceivedSegment(segment.Source, LocalAddress, 0, segment.Length);
        return ReceiveOutcome.Received;
    }

    public bool TryReceiveWaiting(Span<byte> buffer, out ReceivedSegment received)
    {
        received = default;
        QueuedSegment segment;
        lock (_lock)
        {
            if (_disposed || !_queue.TryDequeue(out segment))
            {
                return false;
            }
        }

        segment.Buffer.AsSpan(0, segment.Length).CopyTo(buffer);
        ArrayPool<byte>.Shared.Return(segment.Buffer);
        received = new ReceivedSegment(segment.Source, LocalAddress, 0, segment.Length);
        return true;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            while (_queue.TryDequeue(out var segment))
            {
                ArrayPool<byte>.Shared.Return(segment.Buffer);
            }

            Monitor.PulseAll(_lock);
        }

        _fabric.Detach(this);
    }

    public override string ToString() => $"in-memory endpoint at {LocalAddress}";

    private readonly record struct QueuedSegment(IpAddress Source, byte[] Buffer, int Length);
}

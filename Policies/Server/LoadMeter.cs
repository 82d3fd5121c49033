using Mtcp.Stack;

namespace Mtcp.Policies;

/// <summary>
/// This node's own load in the configured unit, and the connections it serves in the order they arrived
/// (the load balancer moves the oldest first, a deterministic rule that needs no per-connection figures).
/// </summary>
public sealed class LoadMeter
{
    private readonly LoadSource _source;
    private readonly Dictionary<ConnectionKey, long> _arrivalOrder = [];
    private long _arrivals;
    private long _bytesSinceMeasure;
    private Instant _measuredAt;
    private double _bytesPerSecond;
    private double _applicationLoad;

    public LoadMeter(LoadSource source, Instant start)
    {
        _source = source;
        _measuredAt = start;
    }

    public int Connections => _arrivalOrder.Count;

    public bool Serves(ConnectionKey connection) => _arrivalOrder.ContainsKey(connection);

    public void Accepted(ConnectionKey connection) => _arrivalOrder.TryAdd(connection, _arrivals++);

    public void Ended(ConnectionKey connection) => _arrivalOrder.Remove(connection);

    public void BytesServed(long bytes) => _bytesSinceMeasure += Math.Max(0, bytes);

    public void ApplicationLoad(double load) => _applicationLoad = load;

    /// <summary>The connections, oldest arrival first.</summary>
    public IEnumerable<ConnectionKey> OldestFirst() => _arrivalOrder.OrderBy(entry => entry.Value).Select(entry => entry.Key);

    /// <summary>
    /// The load at <paramref name="at"/>. For bytes per second it closes the current window: the rate is the
    /// bytes served since the previous measurement over the time since then (the previous rate when no time passed).
    /// </summary>
    public double Measure(Instant at)
    {
        switch (_source)
        {
            case LoadSource.Connections:
                return Connections;
            case LoadSource.BytesPerSecond:
                if (at > _measuredAt)
                {
                    _bytesPerSecond = _bytesSinceMeasure / (at - _measuredAt).TotalSeconds;
                    _bytesSinceMeasure = 0;
                    _measuredAt = at;
                }

                return _bytesPerSecond;
            case LoadSource.Application:
                return _applicationLoad;
            default:
                throw new InvalidOperationException($"unknown load source {_source}");
        }
    }
}

using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// This node's own load in the configured unit, and the connections it serves in the order they arrived
/// (the load balancer moves the oldest first, a deterministic rule that needs no per-connection figures).
/// </summary>
public sealed class LoadMeter
{
    private readonly LoadSource _source;
    private readonly Dictionary<ConnectionId, long> _arrivalOrder = [];
    private long _arrivals;
    private long _bytesSinceMeasure;
    private Instant _measuredAt;
    private double _bytesPerSecond;
    private double _applicationLoad;
    private ProcessorTimeSample? _latestCpu;
    private ProcessorTimeSample? _measuredCpu;
    private double _cpuShare;

    public LoadMeter(LoadSource source, Instant start)
    {
        _source = source;
        _measuredAt = start;
    }

    public int Connections => _arrivalOrder.Count;

    public bool Serves(ConnectionId connection) => _arrivalOrder.ContainsKey(connection);

    public void Accepted(ConnectionId connection) => _arrivalOrder.TryAdd(connection, _arrivals++);

    public void Ended(ConnectionId connection) => _arrivalOrder.Remove(connection);

    public void BytesServed(long bytes) => _bytesSinceMeasure += Math.Max(0, bytes);

    public void ApplicationLoad(double load) => _applicationLoad = load;

    public void ProcessorTime(ProcessorTimeSample sample) => _latestCpu = sample;

    /// <summary>The connections, oldest arrival first.</summary>
    public IEnumerable<ConnectionId> OldestFirst() => _arrivalOrder.OrderBy(entry => entry.Value).Select(entry => entry.Key);

    /// <summary>
    /// The load at <paramref name="at"/>. For cpu it is the processor time used between the sample seen at the
    /// previous measurement and the latest one, over the wall time between them times the processor count
    /// (the previous share when no newer sample came). For bytes per second it closes the current window: the rate is the
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
            case LoadSource.Cpu:
                return MeasureCpu();
            default:
                throw new InvalidOperationException($"unknown load source {_source}");
        }
    }

    private double MeasureCpu()
    {
        if (_latestCpu is not { } latest)
        {
            return _cpuShare;
        }

        if (_measuredCpu is { } previous && latest.At > previous.At && latest.ProcessorCount > 0)
        {
            var wall = (latest.At - previous.At).TotalSeconds * latest.ProcessorCount;
            _cpuShare = Math.Clamp((latest.TotalProcessorTime - previous.TotalProcessorTime).TotalSeconds / wall, 0, 1);
        }

        _measuredCpu = latest;
        return _cpuShare;
    }
}

using System.Diagnostics.Metrics;
using Mtcp.Actors.Migration;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Records the measurements of one instrument of the runtime's migration meter (<see cref="MigrationMetrics.MeterName"/>),
/// or of <c>meterName</c> when given, while it lives: each value and, when <c>tagKey</c> is given, that tag's value. Tests running at the same time record into
/// the same instrument, so assertions say "at least" or look for a value rather than count exactly.
/// </summary>
internal sealed class MigrationMeasurements : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<(long Value, string? Tag)> _measurements = [];

    public MigrationMeasurements(string instrumentName, string? tagKey = null, string meterName = MigrationMetrics.MeterName)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName && instrument.Name == instrumentName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? tag = null;
            foreach (var pair in tags)
            {
                if (pair.Key == tagKey)
                {
                    tag = pair.Value as string;
                }
            }

            lock (_measurements)
            {
                _measurements.Add((value, tag));
            }
        });
        _listener.Start();
    }

    public long[] Values
    {
        get
        {
            lock (_measurements)
            {
                return [.. _measurements.Select(m => m.Value)];
            }
        }
    }

    /// <summary>The tag of each measurement that had one.</summary>
    public string[] Tags
    {
        get
        {
            lock (_measurements)
            {
                return [.. _measurements.Where(m => m.Tag is not null).Select(m => m.Tag!)];
            }
        }
    }

    public long Sum => Values.Sum();

    public void Dispose() => _listener.Dispose();
}

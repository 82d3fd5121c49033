using System.Diagnostics.Metrics;
using Mtcp.Actors.Migration;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// Records the measurements of one instrument of the runtime's migration meter (<see cref="MigrationMetrics.MeterName"/>),
/// or of <c>meterName</c> when given, while it lives: each value and, when <c>tagKey</c> is given, that tag's value. Tests
/// running at the same time record into the same instrument, so assertions say "at least" or look for a value rather
/// than count exactly. A histogram of durations (in seconds, as doubles) records into <see cref="Seconds"/>.
/// </summary>
internal sealed class MigrationMeasurements : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<(long Value, string? Tag)> _measurements = [];
    private readonly List<double> _seconds = [];

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
        _listener.SetMeasurementEventCallback<double>((_, value, _, _) =>
        {
            lock (_measurements)
            {
                _seconds.Add(value);
            }
        });
        _listener.Start();
    }

    /// <summary>The values of a duration histogram, in seconds.</summary>
    public double[] Seconds
    {
        get
        {
            lock (_measurements)
            {
                return [.. _seconds];
            }
        }
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

using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Mtcp.Hosting;

/// <summary>
/// Where the hosts' log lines go (standard error): at most one write per <see cref="FlushInterval"/>. A line logged
/// an interval or more after the last write goes out at once; a line logged sooner is encoded into a buffer, which is
/// written at the end of the interval with every line logged meanwhile. A warning or worse goes out at once with every
/// line before it, and so does whatever is buffered when the process exits or the log is disposed. With a zero interval
/// every line is written as it is logged, as it is until the configuration is read.
/// </summary>
/// <remarks>
/// A server node logs three lines per migration (in, out, EMIGRATED); at 2,500 migrations/s one write(2) per line
/// was 3 % of a node's CPU in the scale benchmark (perf), the system call's entry and exit dear on this machine.
/// A process killed with SIGKILL loses the lines of its last interval, which a synchronous write would have kept.
/// </remarks>
public sealed class LogLineWriter : IDisposable
{
    /// <summary>A buffer this full goes out at once, whatever the interval: it bounds the memory a burst of lines takes.</summary>
    public const int FlushBytes = 64 * 1024;

    private const int TimeStampBytes = 12;

    private readonly Lock _gate = new();
    private readonly Stream _output;
    private readonly ArrayBufferWriter<byte> _pending = new();
    private readonly Timer _timer;
    private TimeSpan _flushInterval;
    private bool _armed;

    /// <summary>When the buffer was last written (a <see cref="Stopwatch"/> timestamp; 0, long ago, before the first).</summary>
    private long _lastWrite;

    public LogLineWriter(Stream output, TimeSpan flushInterval)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfLessThan(flushInterval, TimeSpan.Zero);
        _output = output;
        _flushInterval = flushInterval;
        _timer = new Timer(_ => OnInterval());
    }

    /// <summary>Standard error, every line at once until <see cref="ConsoleLog.Configure"/> reads the interval; flushed at exit.</summary>
    public static LogLineWriter StandardError { get; } = CreateStandardError();

    /// <summary>How long a line may wait for the ones after it; zero writes each at once.</summary>
    public TimeSpan FlushInterval
    {
        get
        {
            lock (_gate)
            {
                return _flushInterval;
            }
        }

        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            lock (_gate)
            {
                _flushInterval = value;
                FlushPending();
            }
        }
    }

    /// <summary>
    /// Appends the line <c>HH:mm:ss.fff LEVEL category: message</c> (<paramref name="at"/> in UTC), the exception's text
    /// on the lines after, encoded straight into the buffer; <paramref name="urgent"/> (a warning or worse) writes it and
    /// every line before it now.
    /// </summary>
    public void WriteLine(DateTime at, string level, string category, string message, Exception? exception, bool urgent)
    {
        ArgumentNullException.ThrowIfNull(level);
        ArgumentNullException.ThrowIfNull(category);
        ArgumentNullException.ThrowIfNull(message);
        var exceptionText = exception?.ToString();
        lock (_gate)
        {
            var stamp = _pending.GetSpan(TimeStampBytes);
            at.TryFormat(stamp, out var written, "HH:mm:ss.fff", CultureInfo.InvariantCulture);
            _pending.Advance(written);
            Append(" ");
            Append(level);
            Append(" ");
            Append(category);
            Append(": ");
            Append(message);
            if (exceptionText is not null)
            {
                Append("\n");
                Append(exceptionText);
            }

            Append("\n");
            if (urgent || _pending.WrittenCount >= FlushBytes || (!_armed && Stopwatch.GetElapsedTime(_lastWrite) >= _flushInterval))
            {
                FlushPending();
            }
            else if (!_armed)
            {
                _armed = true;
                _timer.Change(_flushInterval, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Writes every buffered line now.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            FlushPending();
        }
    }

    public void Dispose()
    {
        Flush();
        _timer.Dispose();
    }

    private static LogLineWriter CreateStandardError()
    {
        var writer = new LogLineWriter(Console.OpenStandardError(), TimeSpan.Zero);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => writer.Flush();
        AppDomain.CurrentDomain.UnhandledException += (_, _) => writer.Flush();
        return writer;
    }

    private void Append(string text)
    {
        var span = _pending.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        _pending.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    private void OnInterval()
    {
        lock (_gate)
        {
            _armed = false;
            FlushPending();
        }
    }

    private void FlushPending()
    {
        if (_pending.WrittenCount == 0)
        {
            return;
        }

        _output.Write(_pending.WrittenSpan);
        _output.Flush();
        _pending.ResetWrittenCount();
        _lastWrite = Stopwatch.GetTimestamp();
    }
}

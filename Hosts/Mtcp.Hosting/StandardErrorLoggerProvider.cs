using Microsoft.Extensions.Logging;

namespace Mtcp.Hosting;

/// <summary>
/// Writes each log line to standard error in one format: <c>HH:mm:ss.fff LEVEL category: message</c> (UTC), an
/// exception's text on the lines after, through <see cref="LogLineWriter.StandardError"/>: informational lines within
/// <c>mtcp.hosts.log-flush-interval</c>, a warning or worse at once. No queue of its own, unlike
/// Microsoft.Extensions.Logging.Console's: a host's last lines before it exits (a configuration error, a failure to
/// start) are never lost, as the writer flushes at exit.
/// </summary>
public sealed class StandardErrorLoggerProvider : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(categoryName);

    public void Dispose() => LogLineWriter.StandardError.Flush();

    private static string LevelOf(LogLevel level) => level switch
    {
        LogLevel.Trace => "TRACE",
        LogLevel.Debug => "DEBUG",
        LogLevel.Information => "INFO ",
        LogLevel.Warning => "WARN ",
        LogLevel.Error => "ERROR",
        _ => "CRIT ",
    };

    private sealed class Logger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            LogLineWriter.StandardError.WriteLine(DateTime.UtcNow, LevelOf(logLevel), category, formatter(state, exception), exception, urgent: logLevel >= LogLevel.Warning);
        }
    }
}

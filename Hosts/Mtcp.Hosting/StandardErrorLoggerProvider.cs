using Microsoft.Extensions.Logging;

namespace Mtcp.Hosting;

/// <summary>
/// Writes each log line to standard error at once, in one format: <c>HH:mm:ss.fff LEVEL category: message</c> (UTC),
/// an exception's text on the lines after. Synchronous on purpose, unlike Microsoft.Extensions.Logging.Console's
/// queue: a host's last lines before it exits (a configuration error, a failure to start) are never lost.
/// </summary>
public sealed class StandardErrorLoggerProvider : ILoggerProvider
{
    private static readonly Lock Gate = new();

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName);

    public void Dispose()
    {
    }

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
            var line = $"{DateTime.UtcNow:HH:mm:ss.fff} {LevelOf(logLevel)} {category}: {formatter(state, exception)}";
            lock (Gate)
            {
                Console.Error.WriteLine(exception is null ? line : $"{line}\n{exception}");
            }
        }
    }
}

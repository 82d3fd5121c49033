using Akka.Configuration;
using Microsoft.Extensions.Logging;
using Mtcp.Actors.Api;

namespace Mtcp.Hosting;

/// <summary>
/// The hosts' one log, through Microsoft.Extensions.Logging: the hosts' own lines (category <c>Mtcp.Server</c>,
/// <c>Mtcp.Agent</c>, ...) and Akka.NET's (bridged by <see cref="AkkaLoggerBridge"/>, category <c>akka</c>) are filtered
/// by one level, <c>mtcp.hosts.log-level</c>, and written in one format to one stream, standard error
/// (<see cref="StandardErrorLoggerProvider"/>), so that standard output stays free for a command's result.
/// </summary>
public static class ConsoleLog
{
    public const string LevelPath = "mtcp.hosts.log-level";

    public const string FlushIntervalPath = "mtcp.hosts.log-flush-interval";

    private static readonly string HostCategory = System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name ?? "Mtcp";

    // Information until the configuration is read: a command-line error is reported before any configuration exists.
    private static ILoggerFactory _factory = Create(LogLevel.Information);
    private static ILogger _host = _factory.CreateLogger(HostCategory);

    /// <summary>The factory every logger of the host comes from, Akka.NET's included.</summary>
    public static ILoggerFactory Factory => Volatile.Read(ref _factory);

    /// <summary>
    /// Applies <c>mtcp.hosts.log-level</c> (trace, debug, info, warning, error, off) and <c>mtcp.hosts.log-flush-interval</c>
    /// to every later line.
    /// </summary>
    /// <exception cref="ConfigurationException">the level is none of those, or the interval is not a duration of 0 or more.</exception>
    public static void Configure(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var flushInterval = HoconValues.Duration(config, FlushIntervalPath, allowZero: true);
        var text = HoconValues.Text(config, LevelPath);
        var level = text switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "info" => LogLevel.Information,
            "warning" => LogLevel.Warning,
            "error" => LogLevel.Error,
            "off" => LogLevel.None,
            _ => throw HoconValues.Invalid(config, LevelPath, "must be trace, debug, info, warning, error or off"),
        };
        var factory = Create(level);
        Volatile.Write(ref _host, factory.CreateLogger(HostCategory));
        Volatile.Write(ref _factory, factory);
        LogLineWriter.StandardError.FlushInterval = flushInterval;
    }

    public static void Info(string message) => Volatile.Read(ref _host).Log(LogLevel.Information, "{Message}", message);

    public static void Warning(string message) => Volatile.Read(ref _host).Log(LogLevel.Warning, "{Message}", message);

    public static void Error(string message) => Volatile.Read(ref _host).Log(LogLevel.Error, "{Message}", message);

    private static ILoggerFactory Create(LogLevel level) =>
        LoggerFactory.Create(builder => builder.ClearProviders().SetMinimumLevel(level).AddProvider(new StandardErrorLoggerProvider()));
}

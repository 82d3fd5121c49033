using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;
using Microsoft.Extensions.Logging;
using Mtcp.Actors.Api;

namespace Mtcp.Hosting;

/// <summary>
/// Akka.NET's logger for the hosts (<c>akka.loggers</c> in server-node.conf and agent.conf): every event Akka.NET logs
/// at or above <c>akka.loglevel</c> goes to <see cref="ConsoleLog.Factory"/> under the category <c>akka</c>, with its
/// source, so that it is filtered by <c>mtcp.hosts.log-level</c> and written in the hosts' one format to standard
/// error, instead of Akka's own format on standard output.
/// </summary>
public sealed class AkkaLoggerBridge : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    public const string Category = "akka";

    public AkkaLoggerBridge()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e =>
        {
            if (!TakenAsRefusal(e, Context.System))
            {
                Forward(e);
            }
        });
    }

    /// <summary>
    /// Akka.Remote logs each inbound TLS handshake that fails in two or three events, one an error with its stack
    /// trace: whoever reaches the control port could fill the node's disk with handshakes. They are counted in the
    /// node's refusal log instead, at most a line per class per interval (docs/threat-model.md).
    /// </summary>
    private static bool TakenAsRefusal(LogEvent e, ActorSystem system)
    {
        if (!e.LogSource.Contains("TcpServerHandler", StringComparison.Ordinal) && !e.LogSource.Contains("TcpTransport", StringComparison.Ordinal))
        {
            return false;
        }

        var message = e.Message?.ToString() ?? "";
        if (message.StartsWith("TLS handshake failed on channel", StringComparison.Ordinal))
        {
            // Followed by the "Rejected incoming connection" event of the same handshake, which is counted.
            return true;
        }

        if (message.StartsWith("Rejected incoming connection from", StringComparison.Ordinal) && message.Contains("TLS handshake failure", StringComparison.Ordinal))
        {
            NodeRefusals.TlsHandshakeFailed(system, message);
            return true;
        }

        if (message.StartsWith("Mutual TLS required but client did not provide a certificate", StringComparison.Ordinal))
        {
            // The certificate check is not called without a certificate; this is its refusal.
            NodeRefusals.TlsPeerRefused(system, message);
            return true;
        }

        return false;
    }

    /// <summary>Writes one Akka.NET event to the hosts' log, filtered by <c>mtcp.hosts.log-level</c>.</summary>
    internal static void Forward(LogEvent e)
    {
        var level = e.LogLevel() switch
        {
            Akka.Event.LogLevel.DebugLevel => Microsoft.Extensions.Logging.LogLevel.Debug,
            Akka.Event.LogLevel.InfoLevel => Microsoft.Extensions.Logging.LogLevel.Information,
            Akka.Event.LogLevel.WarningLevel => Microsoft.Extensions.Logging.LogLevel.Warning,
            _ => Microsoft.Extensions.Logging.LogLevel.Error,
        };
        var logger = ConsoleLog.Factory.CreateLogger(Category);
        if (logger.IsEnabled(level))
        {
            logger.Log(level, e.Cause, "[{Source}] {Message}", e.LogSource, e.Message);
        }
    }
}

/// <summary>
/// Akka.NET's logger for the moments no <c>akka.loggers</c> run (<c>akka.stdout-logger-class</c>): while the actor
/// system starts and after its loggers stop on shutdown, Akka.NET writes its events through this logger. Akka's own
/// would print them in its format on standard output; this one sends them to the hosts' log as
/// <see cref="AkkaLoggerBridge"/> does.
/// </summary>
public sealed class AkkaStartupLogger : MinimalLogger
{
    protected override void Log(object message)
    {
        if (message is LogEvent e)
        {
            AkkaLoggerBridge.Forward(e);
        }
    }
}

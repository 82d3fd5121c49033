using System.Collections.Concurrent;
using System.Diagnostics;
using Akka.Actor;
using Akka.Event;

namespace Mtcp.Actors.Tests.Property;

/// <summary>A dead letter addressed to an endpoint actor, or a warning or error the runtime logged, with when it happened.</summary>
internal sealed record RecordedEvent(long Timestamp, string System, string Kind, string Recipient, string Text);

/// <summary>
/// Subscribes to one ActorSystem's event stream and keeps, for the whole test, the dead letters addressed to endpoint
/// actors (a message an endpoint never got: a segment, a read, a timer) and every warning and error logged, so that a
/// failing schedule can be shown with its own log lines.
/// </summary>
internal sealed class RuntimeEventRecorder : ReceiveActor
{
    public RuntimeEventRecorder(string system, ConcurrentQueue<RecordedEvent> deadLetters, ConcurrentQueue<RecordedEvent> logs)
    {
        Receive<DeadLetter>(letter =>
        {
            var recipient = letter.Recipient.Path.ToString();
            if (recipient.Contains("endpoint-", StringComparison.Ordinal))
            {
                deadLetters.Enqueue(new RecordedEvent(Stopwatch.GetTimestamp(), system, letter.Message.GetType().Name, recipient, $"{letter.Message} from {letter.Sender.Path}"));
            }
        });
        Receive<LogEvent>(log => logs.Enqueue(new RecordedEvent(Stopwatch.GetTimestamp(), system, log.LogLevel().ToString(), log.LogSource, log.Message?.ToString() ?? string.Empty)));
    }
}

internal static class RuntimeEvents
{
    /// <summary>Starts a <see cref="RuntimeEventRecorder"/> in <paramref name="system"/>, recording into the given queues.</summary>
    public static void Record(ActorSystem system, string name, ConcurrentQueue<RecordedEvent> deadLetters, ConcurrentQueue<RecordedEvent> logs)
    {
        var recorder = system.ActorOf(Props.Create(() => new RuntimeEventRecorder(name, deadLetters, logs)), "property-event-recorder");
        system.EventStream.Subscribe(recorder, typeof(DeadLetter));
        system.EventStream.Subscribe(recorder, typeof(Warning));
        system.EventStream.Subscribe(recorder, typeof(Error));
    }
}

/// <summary>
/// A logger that prints nothing: hundreds of schedules make thousands of expected warnings (refused migrations under
/// loss), which <see cref="RuntimeEventRecorder"/> keeps and the test shows only for a schedule that failed.
/// </summary>
public sealed class SilentLogger : ReceiveActor
{
    public SilentLogger()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        ReceiveAny(_ => { });
    }
}

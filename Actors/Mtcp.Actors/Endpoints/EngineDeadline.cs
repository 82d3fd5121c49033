using Akka.Actor;
using Mtcp.Stack;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// An endpoint actor's one keyed timer for its engine's next deadline. It is moved only to an earlier deadline; when it
/// fires before a deadline that moved later, the tick finds nothing due and re-arms, which is cheaper than
/// rescheduling for every ACK.
/// </summary>
internal sealed class EngineDeadline
{
    private const string TimerKey = "engine-deadline";
    private Instant? _armed;

    /// <summary>Arms the timer for <paramref name="deadline"/> (the engine's PollTimeout) unless it is armed earlier already.</summary>
    public void Arm(ITimerScheduler timers, Instant? deadline, Instant now)
    {
        if (deadline is not { } due || (_armed is { } armed && armed <= due))
        {
            return;
        }

        _armed = due;
        var delay = due - now;
        timers.StartSingleTimer(TimerKey, EngineTick.Instance, delay > TimeSpan.Zero ? delay : TimeSpan.Zero);
    }

    /// <summary>The timer fired: nothing is armed any more.</summary>
    public void Fired() => _armed = null;

}

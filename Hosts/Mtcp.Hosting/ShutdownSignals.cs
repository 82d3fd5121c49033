using System.Runtime.InteropServices;

namespace Mtcp.Hosting;

/// <summary>
/// SIGTERM (a service manager) and SIGINT (Ctrl+C) as a cancellation instead of the end of the process, so that a host
/// stops its own way: a node leaves its cluster and hands its connections on, the demo stops every process it started.
/// </summary>
public sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _stopping;
    private readonly PosixSignalRegistration _sigterm;
    private readonly PosixSignalRegistration _sigint;

    /// <param name="alsoStopOn">a token that stops the host as well, e.g. the command line's own.</param>
    public ShutdownSignals(CancellationToken alsoStopOn = default)
    {
        _stopping = CancellationTokenSource.CreateLinkedTokenSource(alsoStopOn);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
    }

    /// <summary>Cancelled on the first signal.</summary>
    public CancellationToken Token => _stopping.Token;

    public void Dispose()
    {
        // The handlers go first: a signal arriving now must not cancel a disposed source.
        _sigint.Dispose();
        _sigterm.Dispose();
        _stopping.Dispose();
    }

    private void Stop(PosixSignalContext context)
    {
        context.Cancel = true;
        _stopping.Cancel();
    }
}

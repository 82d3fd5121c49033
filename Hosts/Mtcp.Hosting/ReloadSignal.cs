using System.Runtime.InteropServices;

namespace Mtcp.Hosting;

/// <summary>
/// SIGHUP as "read your configuration files again", the convention of Unix daemons (and of <c>systemctl reload</c>),
/// instead of the end of the process. The handler runs on a thread-pool thread, one signal at a time.
/// </summary>
public sealed class ReloadSignal : IDisposable
{
    private readonly PosixSignalRegistration _sighup;
    private readonly Action _reload;
    private readonly Lock _reloading = new();

    public ReloadSignal(Action reload)
    {
        ArgumentNullException.ThrowIfNull(reload);
        _reload = reload;
        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal);
    }

    public void Dispose() => _sighup.Dispose();

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        ThreadPool.QueueUserWorkItem(_ =>
        {
            lock (_reloading)
            {
                _reload();
            }
        });
    }
}

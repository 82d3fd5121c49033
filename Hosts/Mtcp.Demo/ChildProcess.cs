using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Mtcp.Demo;

/// <summary>One output line of a child process and when the demo read it.</summary>
internal sealed record OutputLine(TimeSpan At, string Text);

/// <summary>
/// A server node or agent the demo started: its output lines (kept, and the interesting ones echoed with the
/// process's name), and stopping it by SIGTERM or SIGKILL. Disposing kills it if it still runs.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<OutputLine> _lines = new();
    private readonly Stopwatch _clock;
    private readonly Func<string, bool> _echo;

    private ChildProcess(string name, Process process, Stopwatch clock, Func<string, bool> echo)
    {
        Name = name;
        _process = process;
        _clock = clock;
        _echo = echo;
    }

    public string Name { get; }

    public bool HasExited => _process.HasExited;

    public IEnumerable<OutputLine> Lines => _lines;

    /// <summary>Starts <c>dotnet &lt;dll&gt; arguments...</c> or, with a null dll, the program <paramref name="file"/>.</summary>
    public static ChildProcess Start(string name, string file, string? dll, IEnumerable<string> arguments, string workingDirectory, Stopwatch clock, Func<string, bool> echo)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        if (dll is not null)
        {
            info.ArgumentList.Add(dll);
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var child = new ChildProcess(name, new Process { StartInfo = info }, clock, echo);
        child._process.OutputDataReceived += (_, e) => child.Record(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.Record(e.Data);
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The first line containing <paramref name="text"/> read at or after <paramref name="since"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <exception cref="DemoFailedException">no such line in time, or the process exited first.</exception>
    public async Task<OutputLine> WaitForLineAsync(string text, TimeSpan timeout, TimeSpan since = default, Func<string, bool>? also = null)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var line = _lines.FirstOrDefault(candidate => candidate.At >= since && candidate.Text.Contains(text, StringComparison.Ordinal) && (also?.Invoke(candidate.Text) ?? true));
            if (line is not null)
            {
                return line;
            }

            if (deadline.Elapsed > timeout || _process.HasExited)
            {
                var tail = string.Join(Environment.NewLine, _lines.TakeLast(15).Select(l => "    " + l.Text));
                throw new DemoFailedException($"{Name} printed no line with \"{text}\" within {timeout.TotalSeconds:0} s (exited: {_process.HasExited}); its last lines:{Environment.NewLine}{tail}");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for the exit; null when it did not exit in time.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return null;
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>SIGTERM, as a service manager stops a node: the node shuts down gracefully.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>
    /// SIGKILL, as a crash: no shutdown of any kind, no FIN, no leaving the cluster. The process alone (a node has no
    /// children): walking the process tree first can take most of a second on a loaded machine.
    /// </summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started, or already reaped.
        }

        _process.Dispose();
    }

    private void Record(string? text)
    {
        if (text is null)
        {
            return;
        }

        _lines.Enqueue(new OutputLine(_clock.Elapsed, text));
        if (_echo(text))
        {
            Console.WriteLine($"  [{Name}] {text}");
        }
    }
}

/// <summary>Something the demo checks did not hold; the message says what.</summary>
internal sealed class DemoFailedException(string message) : Exception(message);

using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// One real executable (the server node or the agent) run with <c>dotnet &lt;dll&gt;</c>. Its output lines are kept for
/// assertions and copied to the test's output; disposing kills it if it still runs.
/// </summary>
public sealed class HostProcess : IDisposable
{
    private readonly System.Diagnostics.Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<string> _standardOutput = new();
    private readonly ITestOutputHelper _output;
    private readonly string _name;
    private readonly SemaphoreSlim _lineArrived = new(0);

    private HostProcess(string name, System.Diagnostics.Process process, ITestOutputHelper output)
    {
        _name = name;
        _process = process;
        _output = output;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public IReadOnlyCollection<string> Lines => _lines;

    public string Output => string.Join('\n', _lines);

    /// <summary>The lines of <see cref="Lines"/> that came on standard output rather than standard error.</summary>
    public IReadOnlyCollection<string> StandardOutputLines => _standardOutput;

    /// <param name="commandPrefix">words put before <c>dotnet</c>, such as <c>ip netns exec NAME</c> (which execs, so the process keeps its id).</param>
    public static HostProcess Start(
        string name, string dll, IEnumerable<string> arguments, ITestOutputHelper output, string? workingDirectory = null, IReadOnlyList<string>? commandPrefix = null)
    {
        IReadOnlyList<string> commandLine = [.. commandPrefix ?? [], "dotnet", dll];
        var info = new ProcessStartInfo(commandLine[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var word in commandLine.Skip(1))
        {
            info.ArgumentList.Add(word);
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = new System.Diagnostics.Process { StartInfo = info, EnableRaisingEvents = true };
        var host = new HostProcess(name, process, output);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                host._standardOutput.Enqueue(e.Data);
            }

            host.Record(e.Data);
        };
        process.ErrorDataReceived += (_, e) => host.Record(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return host;
    }

    /// <summary>Waits for an output line containing <paramref name="text"/>; fails with the output so far.</summary>
    public async Task<string> WaitForLineAsync(string text, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var line = _lines.FirstOrDefault(candidate => candidate.Contains(text, StringComparison.Ordinal));
            if (line is not null)
            {
                return line;
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"{_name} printed no line containing \"{text}\" within {timeout.TotalSeconds:0} s (exited: {_process.HasExited}); output:\n{Output}");
            }

            await _lineArrived.WaitAsync(TimeSpan.FromMilliseconds(100));
        }
    }

    /// <summary>Waits for the process to exit and returns its exit code; fails when it does not exit in time.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{_name} did not exit within {timeout.TotalSeconds:0} s; output:\n{Output}");
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM, as a service manager does to stop a node.</summary>
    public void Terminate() => Signal("-TERM");

    /// <summary>Sends SIGHUP, as <c>systemctl reload</c> does: a node reads its keys and CAs again.</summary>
    public void Reload() => Signal("-HUP");

    private void Signal(string signal)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Kills the process at once (SIGKILL): no shutdown of any kind.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>
    /// SIGKILLs every process before waiting for any: faults at the same moment. Killing one after the other waits for
    /// the first to exit, time enough for the second to take over from it.
    /// </summary>
    public static void KillTogether(params HostProcess[] processes)
    {
        foreach (var process in processes)
        {
            process._process.Kill(entireProcessTree: true);
        }

        foreach (var process in processes)
        {
            process._process.WaitForExit();
        }
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
            // Never started or already reaped.
        }

        _process.Dispose();
        _lineArrived.Dispose();
    }

    private void Record(string? line)
    {
        if (line is null)
        {
            return;
        }

        _lines.Enqueue(line);
        _lineArrived.Release();
        try
        {
            _output.WriteLine($"[{_name}] {line}");
        }
        catch (InvalidOperationException)
        {
            // The test already finished; the line is still kept.
        }
    }
}

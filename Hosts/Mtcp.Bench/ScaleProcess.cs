using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading.Channels;

namespace Mtcp.Bench;

/// <summary>
/// A process of the scale benchmark (a server node or the client process), run as <c>dotnet &lt;dll&gt; args</c>:
/// waits for its output lines, keeps only its last lines and its last runtime report (a server node's "runtime:" line,
/// mtcp.hosts.server.runtime-report-interval), talks to the <c>scale-client</c> command over standard input and output,
/// and reads its resident memory and CPU time from /proc. Given a log file, it writes every output line there, each
/// after the seconds since the process started (a node's stall shows as a gap between its runtime reports).
/// </summary>
internal sealed partial class ScaleProcess : IDisposable
{
    private const int TailLines = 30;

    /// <summary>Clock ticks per second of /proc/&lt;pid&gt;/stat's CPU times (USER_HZ, 100 on Linux).</summary>
    private const double UserHz = 100;

    private readonly Process _process;
    private readonly Queue<string> _tail = new();
    private readonly List<(string Text, TaskCompletionSource<string> Found)> _waiters = [];
    private readonly Channel<string> _replies = Channel.CreateUnbounded<string>();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private StreamWriter? _log;
    private int _warningsEchoed;

    private ScaleProcess(string name, Process process, StreamWriter? log)
    {
        Name = name;
        _process = process;
        _log = log;
    }

    public string Name { get; }

    /// <summary>Starts <c>dotnet <paramref name="dll"/> <paramref name="arguments"/></c>, its output also to <paramref name="logPath"/> when given.</summary>
    public static ScaleProcess Start(string name, string dll, IEnumerable<string> arguments, string? logPath = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var log = logPath is null ? null : new StreamWriter(logPath, append: false) { AutoFlush = true };
        var child = new ScaleProcess(name, new Process { StartInfo = info }, log);
        child._process.OutputDataReceived += (_, e) => child.Record(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.Record(e.Data);
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The next output line containing <paramref name="text"/>, from now on.</summary>
    /// <exception cref="TimeoutException">none within <paramref name="timeout"/>; the message has the process's last lines.</exception>
    public async Task<string> WaitForLineAsync(string text, TimeSpan timeout)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waiters)
        {
            _waiters.Add((text, found));
        }

        var deadline = Task.Delay(timeout);
        while (!found.Task.IsCompleted && !deadline.IsCompleted && !_process.HasExited)
        {
            await Task.WhenAny(found.Task, deadline, Task.Delay(200)).ConfigureAwait(false);
        }

        if (found.Task.IsCompleted)
        {
            return await found.Task.ConfigureAwait(false);
        }

        throw new TimeoutException($"{Name} printed no line with \"{text}\" within {timeout.TotalSeconds:0} s (exited: {_process.HasExited}); its last lines:{Environment.NewLine}{Tail()}");
    }

    /// <summary>The server node's next runtime report (heap, allocation, GC pause) and when it arrived.</summary>
    public async Task<(ScaleProcessStats Stats, TimeSpan At)> NextRuntimeReportAsync()
    {
        var line = await WaitForLineAsync("runtime: heap", TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        var at = _clock.Elapsed;
        var match = RuntimeReport().Match(line);
        if (!match.Success)
        {
            throw new InvalidOperationException($"{Name}: cannot read the runtime report '{line}'");
        }

        long Long(string group) => long.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);
        return (new ScaleProcessStats(Long("heap"), Long("allocated"), double.Parse(match.Groups["pause"].Value, CultureInfo.InvariantCulture), (int)Long("gen0"), (int)Long("gen1"), (int)Long("gen2"), match.Groups["live"].Success ? Long("live") : 0), at);
    }

    /// <summary>Writes one command to the scale client and returns its result.</summary>
    /// <exception cref="InvalidOperationException">the client answered with an error, or not within <paramref name="timeout"/>.</exception>
    public async Task<T> AskAsync<T>(string command, TimeSpan timeout)
    {
        await _process.StandardInput.WriteLineAsync(command).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
        using var waiting = new CancellationTokenSource(timeout);
        string reply;
        try
        {
            reply = await _replies.Reader.ReadAsync(waiting.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new InvalidOperationException($"{Name} did not answer '{command}' within {timeout.TotalSeconds:0} s (exited: {_process.HasExited}); its last lines:{Environment.NewLine}{Tail()}");
        }

        const string Ok = ScaleClient.ReplyPrefix + "ok ";
        return reply.StartsWith(Ok, StringComparison.Ordinal)
            ? JsonSerializer.Deserialize<T>(reply[Ok.Length..], ScaleClient.Json) ?? throw new InvalidOperationException($"{Name}: empty answer to '{command}'")
            : throw new InvalidOperationException($"{Name} answered '{command}' with: {reply}");
    }

    public void Send(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
    }

    /// <summary>Resident set size (VmRSS of /proc/&lt;pid&gt;/status) in bytes.</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"{Name}: no VmRSS in /proc/{_process.Id}/status");
    }

    /// <summary>User and system CPU time so far (utime and stime of /proc/&lt;pid&gt;/stat), in seconds.</summary>
    public double CpuSeconds()
    {
        var stat = File.ReadAllText($"/proc/{_process.Id}/stat");

        // Fields after the command name in parentheses, which may itself contain spaces: state is field 3, utime 14, stime 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / UserHz;
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var waiting = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(waiting.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
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
            // Never started, or already reaped.
        }

        _process.Dispose();
        lock (_tail)
        {
            _log?.Dispose();
            _log = null;
        }
    }

    private string Tail()
    {
        lock (_tail)
        {
            return string.Join(Environment.NewLine, _tail.Select(line => "    " + line));
        }
    }

    private void Record(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_tail)
        {
            _log?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{_clock.Elapsed.TotalSeconds:F3} {line}"));
            _tail.Enqueue(line);
            if (_tail.Count > TailLines)
            {
                _tail.Dequeue();
            }
        }

        if (line.StartsWith(ScaleClient.ReplyPrefix + "ok ", StringComparison.Ordinal) || line.StartsWith(ScaleClient.ReplyPrefix + "error ", StringComparison.Ordinal))
        {
            _replies.Writer.TryWrite(line);
        }

        // A node's warnings and errors are shown (the first few): a failed connection or migration says why there.
        if ((line.Contains(" WARN ", StringComparison.Ordinal) || line.Contains(" ERROR ", StringComparison.Ordinal) || line.Contains("Unhandled exception", StringComparison.Ordinal))
            && Interlocked.Increment(ref _warningsEchoed) <= 20)
        {
            Console.WriteLine($"  [{Name}] {line}");
        }

        lock (_waiters)
        {
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (line.Contains(_waiters[i].Text, StringComparison.Ordinal))
                {
                    _waiters[i].Found.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    [GeneratedRegex(@"runtime: heap (?<heap>\d+) bytes, allocated (?<allocated>\d+) bytes, gc pause (?<pause>[\d.]+) ms, collections (?<gen0>\d+)/(?<gen1>\d+)/(?<gen2>\d+)(?:.* (?<live>\d+) bytes live after it)?")]
    private static partial Regex RuntimeReport();
}

using System.ComponentModel;
using System.Diagnostics;

namespace Mtcp.TestKit.Netns;

/// <summary>The outcome of a finished command.</summary>
public sealed record CommandResult(string CommandLine, int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;

    /// <exception cref="InvalidOperationException">the command exited with a non-zero code.</exception>
    public CommandResult ThrowIfFailed() => Succeeded
        ? this
        : throw new InvalidOperationException($"`{CommandLine}` exited with {ExitCode}: {StandardError.Trim()} {StandardOutput.Trim()}".Trim());
}

/// <summary>Runs host commands (ip, sysctl, nft, tshark) with their output captured.</summary>
public static class HostCommand
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Runs a command to completion; a command still running after the timeout is killed and reported.</summary>
    public static CommandResult Run(IReadOnlyList<string> commandLine, TimeSpan? timeout = null)
    {
        using var process = Start(commandLine, redirectInput: false);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? DefaultTimeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"`{string.Join(' ', commandLine)}` did not finish within {timeout ?? DefaultTimeout}");
        }

        process.WaitForExit();
        return new CommandResult(string.Join(' ', commandLine), process.ExitCode, output.GetAwaiter().GetResult(), error.GetAwaiter().GetResult());
    }

    /// <summary>Runs a command and throws unless it exits with 0.</summary>
    public static CommandResult RunChecked(params string[] commandLine) => Run(commandLine).ThrowIfFailed();

    internal static Process Start(IReadOnlyList<string> commandLine, bool redirectInput)
    {
        ArgumentOutOfRangeException.ThrowIfZero(commandLine.Count);
        var start = new ProcessStartInfo(commandLine[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
        };
        foreach (var argument in commandLine.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException($"`{commandLine[0]}` could not be started");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException(
                $"`{commandLine[0]}` could not be started ({e.Message}); the network-namespace tests need iproute2, nftables and tshark installed", e);
        }
    }
}

/// <summary>
/// A long-running command (such as a tshark capture, or a download) whose output is collected until it
/// is stopped or ends. Disposing kills it if it is still running.
/// </summary>
public sealed class BackgroundCommand : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _output;
    private readonly Task<string> _error;

    internal BackgroundCommand(IReadOnlyList<string> commandLine)
    {
        CommandLine = string.Join(' ', commandLine);
        _process = HostCommand.Start(commandLine, redirectInput: false);
        _output = _process.StandardOutput.ReadToEndAsync();
        _error = _process.StandardError.ReadToEndAsync();
    }

    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits for the command to end by itself; one still running after <paramref name="timeout"/> is killed and reported.</summary>
    public async Task<CommandResult> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{CommandLine}` did not finish within {timeout}");
        }

        return new CommandResult(CommandLine, _process.ExitCode, await _output.ConfigureAwait(false), await _error.ConfigureAwait(false));
    }

    /// <summary>Interrupts the command (SIGINT, so that tshark flushes its file) and waits for it to end.</summary>
    public CommandResult Stop(TimeSpan? grace = null)
    {
        if (!_process.HasExited)
        {
            HostCommand.Run(["kill", "-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            if (!_process.WaitForExit(grace ?? TimeSpan.FromSeconds(10)))
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process.WaitForExit();
        return new CommandResult(CommandLine, _process.ExitCode, _output.GetAwaiter().GetResult(), _error.GetAwaiter().GetResult());
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}

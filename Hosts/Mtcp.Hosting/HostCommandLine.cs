using System.CommandLine;

namespace Mtcp.Hosting;

/// <summary>How every host runs its command line: exit code 2 on a parse error, as for a bad configuration.</summary>
public static class HostCommandLine
{
    /// <summary>The exit code of a parse error or a bad configuration (Hosts/README.md).</summary>
    public const int BadConfiguration = 2;

    /// <summary>
    /// Parses <paramref name="args"/>; on errors prints each on standard error and returns <see cref="BadConfiguration"/>
    /// (System.CommandLine's own handler returns 1, which the hosts keep for a failed operation); otherwise runs the
    /// chosen command's action. Signals are handled by <see cref="ShutdownSignals"/>, not by the parser.
    /// </summary>
    public static async Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        ArgumentNullException.ThrowIfNull(root);
        var parseResult = root.Parse(args);
        if (parseResult.Errors.Count > 0)
        {
            foreach (var error in parseResult.Errors)
            {
                ConsoleLog.Error($"command line: {error.Message}");
            }

            ConsoleLog.Error($"see {root.Name} --help");
            return BadConfiguration;
        }

        return await parseResult.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
    }
}

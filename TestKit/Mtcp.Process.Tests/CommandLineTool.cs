using System.ComponentModel;
using System.Diagnostics;

namespace Mtcp.Process.Tests;

/// <summary>
/// Runs an unmodified client program (curl, nc, redis-cli) as a user would, with bytes on its standard input; the
/// process is killed if it outlives <c>timeout</c>. A program that is not installed fails the test with the package
/// to install (the test command installs them as root: TestKit/install-test-tools.sh).
/// </summary>
public static class CommandLineTool
{
    public static async Task<(int ExitCode, byte[] Stdout, string Stderr)> RunAsync(string program, string package, TimeSpan timeout, byte[]? stdin, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        System.Diagnostics.Process tool;
        try
        {
            tool = System.Diagnostics.Process.Start(info)!;
        }
        catch (Win32Exception e)
        {
            Assert.Fail($"this test runs {program}, which could not be started ({e.Message}): install the {package} package (the test command does when run as root)");
            throw;
        }

        using (tool)
        {
            using var stdout = new MemoryStream();
            var copying = tool.StandardOutput.BaseStream.CopyToAsync(stdout);
            var stderr = tool.StandardError.ReadToEndAsync();
            using var cancellation = new CancellationTokenSource(timeout);
            try
            {
                if (stdin is not null)
                {
                    await tool.StandardInput.BaseStream.WriteAsync(stdin, cancellation.Token);
                }

                tool.StandardInput.Close();
                await tool.WaitForExitAsync(cancellation.Token);
            }
            finally
            {
                if (!tool.HasExited)
                {
                    tool.Kill();
                }
            }

            await copying;
            return (tool.ExitCode, stdout.ToArray(), await stderr);
        }
    }
}

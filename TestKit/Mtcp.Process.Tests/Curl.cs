using System.Diagnostics;

namespace Mtcp.Process.Tests;

/// <summary>Runs the real curl; every call passes --max-time, and the process is killed if it outlives 150 s regardless.</summary>
public static class Curl
{
    public static async Task<(int ExitCode, string Output)> RunAsync(params string[] arguments)
    {
        var info = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var curl = System.Diagnostics.Process.Start(info)!;
        var stdout = curl.StandardOutput.ReadToEndAsync();
        var stderr = curl.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        try
        {
            await curl.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!curl.HasExited)
            {
                curl.Kill();
            }
        }

        return (curl.ExitCode, await stdout + await stderr);
    }
}

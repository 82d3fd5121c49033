namespace Mtcp.Process.Tests;

/// <summary>Runs the real curl; every call passes --max-time, and the process is killed if it outlives 150 s regardless.</summary>
public static class Curl
{
    public static async Task<(int ExitCode, string Output)> RunAsync(params string[] arguments)
    {
        var (exitCode, stdout, stderr) = await CommandLineTool.RunAsync("curl", "curl", TimeSpan.FromSeconds(150), stdin: null, arguments);
        return (exitCode, System.Text.Encoding.UTF8.GetString(stdout) + stderr);
    }
}

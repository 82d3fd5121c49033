using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The hosts' one log (mtcp.hosts.log-level): their own lines and Akka.NET's in one format on standard error, nothing on
/// standard output but a command's result, and lines below the configured level dropped.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed partial class LoggingTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Node_must_log_its_lines_and_Akka_s_in_one_format_on_standard_error_only()
    {
        var node = await _testbed.StartServerAsync("server1");
        await node.Process.WaitForLineAsync("cluster view: 2 service endpoints", Bound);
        node.Process.Terminate();
        Assert.Equal(0, await node.Process.WaitForExitAsync(Bound));

        Assert.Empty(node.Process.StandardOutputLines);
        var lines = node.Process.Lines.ToList();
        Assert.All(lines.Where(line => !IsExceptionText(line)), line => Assert.Matches(LogLine(), line));
        Assert.Contains(lines, line => line.Contains(" INFO  Mtcp.Server: server node ready", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.Contains(" INFO  akka: [Cluster (akka://mtcp)] Cluster Node [", StringComparison.Ordinal));

        // One event, one line: the service directory's view is the node's "cluster view" line only.
        Assert.DoesNotContain(lines, line => line.Contains("alternate servers now", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_at_log_level_warning_must_drop_its_info_lines_and_keep_its_errors()
    {
        // A service address nobody serves: the fetch fails after the connect timeout, with an error line.
        var nobody = $"{ProcessTestbed.NextAddress()}:{ProcessTestbed.FilePort}";
        var info = _testbed.WriteConfig("info.conf", "mtcp.agent.connect-timeout = 1s");
        var warning = _testbed.WriteConfig("warning.conf", "mtcp.agent.connect-timeout = 1s\nmtcp.hosts.log-level = warning");

        var (infoExit, atInfo) = await _testbed.RunAgentAsync("fetch-info", Bound, "--config", info, "fetch", "--no-progress", $"http://{nobody}/file");
        var (warningExit, atWarning) = await _testbed.RunAgentAsync("fetch-warning", Bound, "--config", warning, "fetch", "--no-progress", $"http://{nobody}/file");

        Assert.Equal(1, infoExit);
        Assert.Equal(1, warningExit);
        Assert.Contains(atInfo.Lines, line => line.Contains(" INFO  Mtcp.Agent: transport: ", StringComparison.Ordinal));
        Assert.Contains(atWarning.Lines, line => line.Contains(" ERROR Mtcp.Agent: fetch failed: ", StringComparison.Ordinal));
        Assert.DoesNotContain(atWarning.Lines, line => line.Contains(" INFO ", StringComparison.Ordinal));
        Assert.Empty(atWarning.StandardOutputLines);
    }

    public void Dispose() => _testbed.Dispose();

    /// <summary>The lines of an exception logged with its event: its type and message, and its stack.</summary>
    private static bool IsExceptionText(string line) => line.StartsWith(' ') || line.Contains("Exception", StringComparison.Ordinal);

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|CRIT ) [A-Za-z][\w.]*: ")]
    private static partial Regex LogLine();
}

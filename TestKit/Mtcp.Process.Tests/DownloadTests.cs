using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mtcp.Apps;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class DownloadTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20011;
    private const int FileBytes = 50 * 1000 * 1000;
    private static readonly TimeSpan TransferTimeout = TimeSpan.FromSeconds(120);

    private readonly ProcessTestbed _testbed = new(output);

    /// <summary>auto is raw IPv4 protocol 253 when the tests run as root (CAP_NET_RAW), UDP otherwise.</summary>
    [Theory]
    [InlineData("auto", null)]
    [InlineData("udp", "transport: UDP encapsulation")]
    public async Task Curl_through_the_agent_must_download_a_50MB_file_intact(string transport, string? expectedTransport)
    {
        var expected = WriteRandomFile("big.bin");
        var transportConfig = $"mtcp.runtime.transport = {transport}";
        var server = await _testbed.StartServerAsync("server", extraConfig: transportConfig);
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.FilePort)], transportConfig);
        foreach (var process in new[] { server.Process, agent.Process })
        {
            Assert.Contains(process.Lines, line => line.Contains(expectedTransport ?? "transport: ", StringComparison.Ordinal));
        }

        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        var started = Stopwatch.GetTimestamp();
        var (exitCode, curlOutput) = await Curl.RunAsync("-sS", "--max-time", "120", "-o", downloaded, "-w", "%{http_code} %{size_download}", $"http://{agent.Listen}/big.bin");
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.True(exitCode == 0, $"curl exited with {exitCode}: {curlOutput}");
        Assert.Equal($"200 {FileBytes}", curlOutput.Trim());
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        output.WriteLine($"curl through the agent ({transport}): {FileBytes / elapsed.TotalSeconds / 1e6:0.0} MB/s ({elapsed.TotalSeconds:0.00} s), SHA-256 verified");

        var kernelElapsed = await DownloadOverKernelTcpAsync("big.bin", expected);
        output.WriteLine($"the same file from the same file server over kernel TCP: {FileBytes / kernelElapsed.TotalSeconds / 1e6:0.0} MB/s ({kernelElapsed.TotalSeconds:0.00} s)");
    }

    [Fact]
    public async Task Curl_through_the_agent_must_get_404_and_400_answers()
    {
        var server = await _testbed.StartServerAsync("server");
        var agent = await _testbed.StartAgentAsync("agent", [server.Service(ProcessTestbed.FilePort)]);

        var (_, missing) = await Curl.RunAsync("-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", $"http://{agent.Listen}/no-such-file");
        var (_, outside) = await Curl.RunAsync("-sS", "--max-time", "20", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", $"http://{agent.Listen}/../etc/passwd");
        var (_, post) = await Curl.RunAsync("-sS", "--max-time", "20", "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}", $"http://{agent.Listen}/x");

        Assert.Equal("404", missing.Trim());
        Assert.Equal("400", outside.Trim());
        Assert.Equal("405", post.Trim());
    }

    [Fact]
    public async Task Agent_fetch_must_write_the_file_and_print_its_SHA256()
    {
        var expected = WriteRandomFile("fetched.bin", bytes: 5 * 1000 * 1000);
        var server = await _testbed.StartServerAsync("server");
        var target = Path.Combine(_testbed.Directory.FullName, "out.bin");

        var (exitCode, fetch) = await _testbed.RunAgentAsync("fetch", TransferTimeout, "fetch", $"http://{server.Service(ProcessTestbed.FilePort)}/fetched.bin", "-o", target);

        Assert.Equal(0, exitCode);
        Assert.Contains(fetch.Lines, line => line.StartsWith(expected + "  ", StringComparison.Ordinal));
        Assert.Equal(expected, ProcessTestbed.Sha256Of(target));
    }

    public void Dispose() => _testbed.Dispose();

    /// <summary>The baseline: curl against the same file server application on a kernel-TCP socket, no MTCP, no agent.</summary>
    private async Task<TimeSpan> DownloadOverKernelTcpAsync(string name, string expectedSha256)
    {
        var application = new FileServer(new FileServerOptions(_testbed.Files.FullName, 8192, 100, TimeSpan.FromSeconds(10), 64 * 1024));
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stopping = new CancellationTokenSource(TransferTimeout);
        var serving = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync(stopping.Token);
            await using var connection = new NetworkStream(socket, ownsSocket: false);
            await application.ServeAsync(connection, new NoMigrationState(), stopping.Token);
            socket.Shutdown(SocketShutdown.Send);
        });

        var downloaded = Path.Combine(_testbed.Directory.FullName, "kernel.bin");
        var started = Stopwatch.GetTimestamp();
        var (exitCode, curlOutput) = await Curl.RunAsync("-sS", "--max-time", "120", "-o", downloaded, $"http://{listener.LocalEndpoint}/{name}");
        var elapsed = Stopwatch.GetElapsedTime(started);
        await serving;

        Assert.True(exitCode == 0, $"curl over kernel TCP exited with {exitCode}: {curlOutput}");
        Assert.Equal(expectedSha256, ProcessTestbed.Sha256Of(downloaded));
        return elapsed;
    }

    private string WriteRandomFile(string name, int bytes = FileBytes) => _testbed.WriteRandomFile(name, bytes, Seed);
}

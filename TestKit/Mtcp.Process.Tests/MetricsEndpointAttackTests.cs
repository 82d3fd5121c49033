using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The node's Prometheus endpoint as attack surface (docs/metrics.md): it listens on the configured address only, and
/// garbage, malformed and oversized requests, idle connections and a flood of scrapes sent while a client downloads
/// through the node change nothing: the download completes intact, the node serves on and still answers scrapes.
/// </summary>
[Trait("Category", "Security")]
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class MetricsEndpointAttackTests(ITestOutputHelper output) : IDisposable
{
    private const int FileBytes = 20 * 1000 * 1000;
    private const int GarbageConnections = 200;
    private const int IdleConnections = 200;
    private const int FloodRequests = 2000;
    private const int FloodConcurrency = 16;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Garbage_and_a_flood_of_requests_to_the_scrape_port_must_change_nothing()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, seed: 15_005);
        var address = ProcessTestbed.NextAddress();
        var metrics = new IPEndPoint(address, ListenPorts.PickUnused(address));
        var node = await _testbed.StartServerAsync("server1", extraConfig: $"mtcp.hosts.server.metrics.prometheus-endpoint = \"{metrics}\"\n{ProcessTestbed.PacedFileServer("4MiB")}");
        var agent = await _testbed.StartAgentAsync("agent", [node.Service(ProcessTestbed.FilePort)], "mtcp.agent.policy = off");

        // Bound to the configured address only: the same port on another loopback address refuses.
        var refused = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(new IPEndPoint(IPAddress.Loopback, metrics.Port)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        var curl = Curl.RunAsync("-sS", "--max-time", "90", "--limit-rate", "5M", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        await agent.OpenRelayAsync(Bound);

        var idle = new List<Socket>();
        try
        {
            for (var i = 0; i < IdleConnections; i++)
            {
                idle.Add(await ConnectAsync(metrics));
            }

            var statuses = new List<string>();
            statuses.AddRange(await SendRawAsync(metrics, GarbageRequests()));
            var flood = Stopwatch.StartNew();
            var floodStatuses = await FloodAsync(metrics);
            output.WriteLine($"flood: {FloodRequests} scrapes in {flood.Elapsed.TotalSeconds:0.00} s, {FloodConcurrency} at a time; answers {string.Join(", ", floodStatuses.CountBy(status => status).Select(pair => $"{pair.Key} x{pair.Value}"))}");
            output.WriteLine($"garbage answers: {string.Join(", ", statuses.CountBy(status => status).Select(pair => $"{pair.Key} x{pair.Value}"))}");
            Assert.All(floodStatuses, status => Assert.Equal("200", status));
            Assert.DoesNotContain("200", statuses);
        }
        finally
        {
            foreach (var socket in idle)
            {
                socket.Dispose();
            }
        }

        var (curlExit, curlOutput) = await curl;
        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
        Assert.False(node.Process.HasExited, "the node exited");

        // The node still answers, has served exactly the one download, and logged nothing about the attack.
        var scrape = await PrometheusScrape.GetAsync(metrics, Bound);
        Assert.True(scrape.Sum("mtcp_server_connection_accepted_total") == 1, scrape.Text);
        Assert.True(scrape.Sum("mtcp_server_connection_failed_total") == 0, scrape.Text);
        Assert.DoesNotContain(node.Process.Lines, line => line.Contains(" ERROR ", StringComparison.Ordinal) || line.Contains(" WARN ", StringComparison.Ordinal));
        var (secondExit, secondOutput) = await Curl.RunAsync("-sS", "--max-time", "30", "-o", Path.Combine(_testbed.Directory.FullName, "again.bin"), $"http://{agent.Listen}/big.bin");
        Assert.True(secondExit == 0, $"a second download after the attack: curl exited with {secondExit}: {secondOutput}");
    }

    public void Dispose() => _testbed.Dispose();

    /// <summary>Random bytes, requests that are not HTTP, oversized lines and headers, a body that never comes, other methods and paths.</summary>
    private static List<byte[]> GarbageRequests()
    {
        var random = new Random(15_005);
        var requests = new List<byte[]>();
        for (var i = 0; i < GarbageConnections; i++)
        {
            var bytes = new byte[random.Next(1, 8192)];
            random.NextBytes(bytes);
            requests.Add(bytes);
        }

        requests.Add(Encoding.ASCII.GetBytes("GET /metrics\r\n\r\n"));
        requests.Add(Encoding.ASCII.GetBytes($"GET /{new string('a', 1 << 20)} HTTP/1.1\r\nHost: x\r\n\r\n"));
        requests.Add(Encoding.ASCII.GetBytes($"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {new string('b', 1 << 20)}\r\n\r\n"));
        requests.Add(Encoding.ASCII.GetBytes($"GET /metrics HTTP/1.1\r\nHost: x\r\n{string.Concat(Enumerable.Range(0, 10_000).Select(n => $"X-{n}: {n}\r\n"))}\r\n"));
        requests.Add(Encoding.ASCII.GetBytes("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776\r\n\r\npartial"));
        requests.Add(Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"));
        requests.Add(Encoding.ASCII.GetBytes("GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"));
        requests.Add(Encoding.ASCII.GetBytes("GET /metrics/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"));
        requests.Add(Encoding.ASCII.GetBytes("BREW /metrics HTTP/9.9\r\nHost: x\r\n\r\n"));
        requests.Add([.. Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nHost: "), 0, 0xff, 0xfe, .. Encoding.ASCII.GetBytes("\r\n\r\n")]);
        return requests;
    }

    /// <summary>Each request on its own connection; its status code, or what the connection did instead.</summary>
    private static async Task<List<string>> SendRawAsync(IPEndPoint endPoint, IEnumerable<byte[]> requests)
    {
        var statuses = new List<string>();
        foreach (var request in requests)
        {
            using var socket = await ConnectAsync(endPoint);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await socket.SendAsync(request, SocketFlags.None, timeout.Token);
                socket.Shutdown(SocketShutdown.Send);
                var answer = new byte[64];
                var read = await socket.ReceiveAsync(answer, SocketFlags.None, timeout.Token);
                var text = Encoding.ASCII.GetString(answer, 0, read);
                statuses.Add(text.StartsWith("HTTP/", StringComparison.Ordinal) ? text.Split(' ')[1] : read == 0 ? "closed" : "not HTTP");
            }
            catch (SocketException e)
            {
                statuses.Add(e.SocketErrorCode.ToString());
            }
            catch (OperationCanceledException)
            {
                statuses.Add("no answer in 5 s");
            }
        }

        return statuses;
    }

    /// <summary><see cref="FloodRequests"/> scrapes, <see cref="FloodConcurrency"/> at a time; each one's status code.</summary>
    private static async Task<List<string>> FloodAsync(IPEndPoint endPoint)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var next = 0;
        var statuses = new List<string>();
        await Task.WhenAll(Enumerable.Range(0, FloodConcurrency).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= FloodRequests)
            {
                using var response = await http.GetAsync(new Uri($"http://{endPoint}/metrics"));
                await response.Content.ReadAsByteArrayAsync();
                lock (statuses)
                {
                    statuses.Add(((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
            }
        }));
        return statuses;
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await socket.ConnectAsync(endPoint, timeout.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

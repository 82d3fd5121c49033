using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Mtcp.Apps;
using Mtcp.Hosting;

namespace Mtcp.Demo;

internal sealed partial class DemoScenario
{
    /// <summary>
    /// The download rate through the agent over MTCP next to plain kernel TCP, in the same run: curl fetches the same
    /// file (a) through a second agent, policy off, from a node of its own (the scenario's nodes pace their connections),
    /// and (b) from the same file server application on a kernel-TCP socket in this process; both at full speed without
    /// migrations, alternately, each checked by SHA-256, after one uncounted warm-up download each way. Prints the
    /// medians and their ratio.
    /// </summary>
    private async Task CompareRatesAsync(string expected, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Say($"rate comparison: {options.CompareRepetitions} downloads of {FileName} each way (after one warm-up each) at full speed, no migration");
        var address = options.Host(CompareServerHost);
        var control = new IPEndPoint(address, ListenPorts.PickUnused(address));
        var node = StartNode("server-compare", control, control, "");
        await node.WaitForLineAsync("server node ready", StartTimeout).ConfigureAwait(false);
        var service = Service(address);
        var listen = new IPEndPoint(options.Loopback, ListenPorts.PickUnused(options.Loopback));
        var agentConfig = WriteConfig("agent-compare.conf", $$"""
            {{options.RuntimeConfig(options.Host(CompareAgentHost).ToString())}}
            mtcp.agent.service-endpoints = ["{{service}}"]
            mtcp.agent.serve.listen = "{{listen}}"
            mtcp.agent.control-endpoint = "{{new IPEndPoint(options.Loopback, ListenPorts.PickUnused(options.Loopback))}}"
            mtcp.agent.policy = off
            """);
        var agent = Start("agent-compare", "Mtcp.Agent", ["--config", agentConfig, "serve"]);
        await agent.WaitForLineAsync("agent ready", StartTimeout).ConfigureAwait(false);

        var application = new FileServer(options.KernelFileServer with { RootDirectory = _files });
        using var kernel = new TcpListener(options.Loopback, 0);
        kernel.Start();
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var serving = ServeKernelTcpAsync(kernel, application, stopping.Token);

        // One download each way first, not counted: the comparison agent is a fresh process whose relay path the
        // runtime is still compiling (tiered JIT), which would count its start-up against MTCP.
        await CurlRateAsync($"http://{listen}/{FileName}", expected, "through the agent over MTCP (warm-up)").ConfigureAwait(false);
        await CurlRateAsync($"http://{kernel.LocalEndpoint}/{FileName}", expected, "over kernel TCP (warm-up)").ConfigureAwait(false);
        var throughAgent = new List<double>();
        var overKernel = new List<double>();
        for (var i = 0; i < options.CompareRepetitions; i++)
        {
            throughAgent.Add(await CurlRateAsync($"http://{listen}/{FileName}", expected, "through the agent over MTCP").ConfigureAwait(false));
            overKernel.Add(await CurlRateAsync($"http://{kernel.LocalEndpoint}/{FileName}", expected, "over kernel TCP").ConfigureAwait(false));
        }

        await stopping.CancelAsync().ConfigureAwait(false);
        kernel.Stop();
        await serving.ConfigureAwait(false);

        var mtcp = Median(throughAgent);
        var tcp = Median(overKernel);
        Console.WriteLine();
        Console.WriteLine($"download rate of {Megabytes(options.FileBytes)} (median of {options.CompareRepetitions}, curl at full speed, no migration)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  through the agent over MTCP ({service}): {mtcp,8:0.0} MB/s  [{string.Join(", ", throughAgent.Select(r => r.ToString("0.0", CultureInfo.InvariantCulture)))}]"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  kernel TCP, same file server app:     {tcp,8:0.0} MB/s  [{string.Join(", ", overKernel.Select(r => r.ToString("0.0", CultureInfo.InvariantCulture)))}]"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ratio MTCP / kernel TCP: {(tcp > 0 ? mtcp / tcp : 0):0.000}"));
    }

    /// <summary>One curl download; its rate in MB/s (10^6 bytes per second, curl's own timing), or 0 when it failed (a failed check).</summary>
    private async Task<double> CurlRateAsync(string url, string expected, string what)
    {
        var output = Path.Combine(_scratch.FullName, "compare.bin");
        var curl = ChildProcess.Start("curl", "curl", dll: null, ["-sS", "--globoff", "--fail", "--max-time", "60", "-o", output, "-w", "%{size_download} %{speed_download}\n", url], _scratch.FullName, _clock, _ => false);
        using (curl)
        {
            var exit = await curl.WaitForExitAsync(TimeSpan.FromSeconds(70)).ConfigureAwait(false);
            var result = curl.Lines.Select(line => line.Text.Split(' ')).LastOrDefault(parts => parts.Length == 2 && parts.All(part => double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out _)));
            var verified = exit == 0 && result is not null && await Sha256Async(output, CancellationToken.None).ConfigureAwait(false) == expected;
            Check(verified, $"curl {what} exited with {exit?.ToString(CultureInfo.InvariantCulture) ?? "no exit within 70 s"} or delivered a different file: {string.Join(" | ", curl.Lines.Select(line => line.Text))}");
            return verified ? double.Parse(result![1], CultureInfo.InvariantCulture) / 1e6 : 0;
        }
    }

    /// <summary>The baseline server: the file server application, one connection at a time, on a kernel-TCP socket.</summary>
    private static async Task ServeKernelTcpAsync(TcpListener listener, FileServer application, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            using (socket)
            {
                var connection = new NetworkStream(socket, ownsSocket: false);
                await using (connection.ConfigureAwait(false))
                {
                    try
                    {
                        await application.ServeAsync(connection, new NoMigrationState(), stopping).ConfigureAwait(false);
                        socket.Shutdown(SocketShutdown.Send);
                    }
                    catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
                    {
                        // curl went away or the comparison ended; its check reports it.
                    }
                }
            }
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}

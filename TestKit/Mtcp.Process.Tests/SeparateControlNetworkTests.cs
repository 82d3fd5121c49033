using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The test-bed of thesis fig. 5.1 with real processes: the client agent and curl in a client namespace, one server
/// node in each of two server namespaces, MTCP segments (raw IP protocol 253) on the service network and the control
/// connections (Akka.Remote over kernel TCP) on an exclusive link between the servers. See
/// <see cref="ControlNetworkTopology"/> for the addresses.
/// </summary>
[Trait("Category", "Netns")]
[Collection(ProcessCollection.Name)]
public sealed partial class SeparateControlNetworkTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20051;
    private const int FileBytes = 24 * 1000 * 1000;
    private const int Migrations = 4;
    private const int RequiredMigrations = 3;
    private const int ControlPort = 2552;
    private const byte MtcpProtocol = 253;
    private const string RemoteTcp = "ip.proto == 6 && tcp.port == 2552";
    private static readonly IPEndPoint AgentListen = new(IPAddress.Loopback, ProcessTestbed.FilePort);
    private static readonly IPEndPoint AgentControl = new(IPAddress.Loopback, 7253);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly ProcessTestbed _testbed = new(output);
    private readonly List<IDisposable> _resources = [];

    [Fact]
    public async Task Curl_through_the_agent_must_download_intact_across_migrations_with_state_transfers_only_on_the_control_network()
    {
        NetnsPrerequisites.RequireRoot();
        var started = Stopwatch.GetTimestamp();
        var topology = Own(ControlNetworkTopology.Create());
        output.WriteLine(topology.ToString());
        var serviceCapture = Own(PacketCapture.Start(topology.Hub, ControlNetworkTopology.HubBridge, CapturePath("service")));
        var controlCapture = Own(PacketCapture.Start(topology.Server1.Namespace, ControlNetworkTopology.ControlInterface, CapturePath("control")));
        var expected = WriteRandomFile("big.bin");

        var server1 = await StartServerAsync("server1", topology.Server1, seed: topology.Server1);
        var server2 = await StartServerAsync("server2", topology.Server2, seed: topology.Server1);
        foreach (var server in new[] { server1, server2 })
        {
            // Each node announces its file and request endpoints.
            await server.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        var agent = await StartAgentAsync(topology);
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        // A limited rate keeps the download longer than its migrations take, and migrates with the agent's window closed.
        var curl = Own(topology.Client.StartBackground(
            "curl", "-sS", "--max-time", "60", "--limit-rate", "4M", "-o", downloaded, "-w", "%{http_code} %{size_download}", $"http://{AgentListen}/big.bin"));
        var (completed, failures) = await MigrateWhileDownloadingAsync(topology, curl);
        var download = await curl.WaitForExitAsync(TimeSpan.FromSeconds(70));
        serviceCapture.Stop();
        controlCapture.Stop();

        Assert.True(download.Succeeded, $"curl exited with {download.ExitCode}: {download.StandardError}");
        Assert.Equal($"200 {FileBytes}", download.StandardOutput.Trim());
        Assert.Equal(expected, Sha256Of(downloaded));
        Assert.True(completed >= RequiredMigrations, $"{completed} migrations completed before the download ended; failed: {string.Join("; ", failures)}");
        Assert.Equal(completed, agent.Lines.Count(line => line.Contains("relay 1: migrated", StringComparison.Ordinal)));
        Assert.Equal(completed, new[] { server1, server2 }.Sum(server => server.Lines.Count(line => line.Contains("migration in: file connection", StringComparison.Ordinal))));
        // Each destination logs the size of the state reply it received over its control connection.
        var stateReplyBytes = new[] { server1, server2 }.SelectMany(server => server.Lines)
            .Select(line => StateReplyLine().Match(line)).Where(match => match.Success)
            .Sum(match => long.Parse(match.Groups["bytes"].Value, CultureInfo.InvariantCulture));
        Assert.Contains(agent.Lines, line => line.Contains($"transport: raw IPv4 protocol {MtcpProtocol} at {ControlNetworkTopology.ClientServiceAddress}", StringComparison.Ordinal));

        // The service network carries MTCP and no kernel TCP at all: Akka.Remote is the only kernel TCP between the hosts.
        var mtcpSegments = serviceCapture.Count($"ip.proto == {MtcpProtocol}", MtcpProtocol);
        var serviceKernelTcp = serviceCapture.Count("ip.proto == 6");
        var badSegments = serviceCapture.BadSegments(MtcpProtocol);
        // The control network carries the control connections and the cluster's gossip, and no MTCP segment.
        var controlMtcp = controlCapture.Count($"ip.proto == {MtcpProtocol}");
        var remoteBytes = controlCapture.Field(RemoteTcp, "tcp.len").Sum(length => long.Parse(length, CultureInfo.InvariantCulture));
        var remoteSegments = controlCapture.Count(RemoteTcp);
        output.WriteLine(
            $"{completed} migrations ({failures.Count} failed, {stateReplyBytes} bytes of state replies) in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s; "
            + $"service network: {mtcpSegments} protocol-{MtcpProtocol} segments, {serviceKernelTcp} kernel TCP; "
            + $"control network: {remoteSegments} Akka.Remote TCP segments ({remoteBytes} payload bytes), {controlMtcp} protocol-{MtcpProtocol}");

        Assert.True(mtcpSegments > FileBytes / 1460, $"{mtcpSegments} MTCP segments on the service network for a {FileBytes}-byte download");
        Assert.Equal(0, serviceKernelTcp);
        Assert.Empty(badSegments);
        Assert.Equal(0, controlMtcp);
        // The state replies crossed the control network: it carried at least their bytes (the gossip adds a little).
        Assert.True(stateReplyBytes > 0, "no destination logged a state reply");
        Assert.True(remoteBytes >= stateReplyBytes, $"{remoteBytes} Akka.Remote payload bytes on the control network, less than the {stateReplyBytes} bytes of state replies");
    }

    public void Dispose()
    {
        // In reverse: the processes, then the captures, then the namespaces they ran in; the scratch directory last.
        try
        {
            for (var i = _resources.Count - 1; i >= 0; i--)
            {
                _resources[i].Dispose();
            }
        }
        finally
        {
            _testbed.Dispose();
        }
    }

    private static string CapturePath(string network) => Path.Combine(Path.GetTempPath(), $"mtcp-{Environment.ProcessId}-{network}-network.pcapng");

    private T Own<T>(T resource)
        where T : IDisposable
    {
        _resources.Add(resource);
        return resource;
    }

    /// <summary>A server node in its namespace: Akka.Remote (cluster and control connections) on the control address, MTCP on the service address.</summary>
    private async Task<HostProcess> StartServerAsync(string name, ServerHost host, ServerHost seed)
    {
        var config = _testbed.WriteConfig($"{name}.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{host.ControlAddress}}", port = {{ControlPort}} }
            akka.cluster.seed-nodes = ["akka.tcp://mtcp@{{seed.ControlAddress}}:{{ControlPort}}"]
            mtcp.runtime.transport = raw
            mtcp.runtime.local-address = "{{host.ServiceAddress}}"
            mtcp.hosts.server.file.root = "{{_testbed.Files.FullName}}"
            {{ProcessTestbed.MigrationConfig}}
            """);
        var process = Own(HostProcess.Start(name, ProcessTestbed.ServerDll, ["--config", config], output, _testbed.Directory.FullName, host.Namespace.CommandPrefix));
        await process.WaitForLineAsync("server node ready", ProcessTestbed.StartTimeout);
        Assert.Contains(process.Lines, line => line.Contains($"transport: raw IPv4 protocol {MtcpProtocol} at {host.ServiceAddress}", StringComparison.Ordinal));
        return process;
    }

    private async Task<HostProcess> StartAgentAsync(ControlNetworkTopology topology)
    {
        var config = _testbed.WriteConfig("agent.conf", $$"""
            mtcp.runtime.transport = raw
            mtcp.runtime.local-address = "{{ControlNetworkTopology.ClientServiceAddress}}"
            mtcp.agent.service-endpoints = ["{{topology.Server1.ServiceAddress}}:{{ProcessTestbed.FilePort}}"]
            mtcp.agent.serve.listen = "{{AgentListen}}"
            mtcp.agent.control-endpoint = "{{AgentControl}}"
            {{ProcessTestbed.MigrationConfig}}
            """);
        var process = Own(HostProcess.Start("agent", ProcessTestbed.AgentDll, ["--config", config, "serve"], output, _testbed.Directory.FullName, topology.Client.CommandPrefix));
        await process.WaitForLineAsync("agent ready", ProcessTestbed.StartTimeout);
        return process;
    }

    /// <summary>
    /// Asks the agent to migrate the download to S2, S1, S2, ... each time another 1/(Migrations + 1) of the file
    /// has arrived, until <see cref="Migrations"/> attempts are made or the download ends (curl's --max-time bounds it).
    /// </summary>
    private async Task<(int Completed, List<string> Failures)> MigrateWhileDownloadingAsync(ControlNetworkTopology topology, BackgroundCommand curl)
    {
        var destinations = new[] { topology.Server2, topology.Server1 };
        var completed = 0;
        var failures = new List<string>();
        while (!curl.HasExited && completed + failures.Count < Migrations)
        {
            var attempt = completed + failures.Count;
            using var progress = JsonDocument.Parse(await AskAgentAsync(topology, "status"));
            if (progress.RootElement.GetProperty("connections").EnumerateArray().FirstOrDefault() is not { ValueKind: JsonValueKind.Object } open
                || open.GetProperty("bytesFromService").GetInt64() < (attempt + 1L) * FileBytes / (Migrations + 1))
            {
                await Task.Delay(20);
                continue;
            }

            var destination = $"{destinations[attempt % destinations.Length].ServiceAddress}:{ProcessTestbed.FilePort}";
            using var result = JsonDocument.Parse(await AskAgentAsync(topology, $"migrate {open.GetProperty("id").GetInt64()} {destination}"));
            var outcome = result.RootElement.GetProperty("outcomes").EnumerateArray().Single();
            if (outcome.GetProperty("completed").GetBoolean())
            {
                completed++;
            }
            else
            {
                failures.Add($"to {destination}: {outcome.GetProperty("failureReason").GetString()}");
            }
        }

        return (completed, failures);
    }

    /// <summary>One request line to the agent's control endpoint, from a socket made inside the client namespace; one JSON answer.</summary>
    private static async Task<string> AskAgentAsync(ControlNetworkTopology topology, string request)
    {
        using var timeout = new CancellationTokenSource(Bound);
        using var socket = topology.Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(AgentControl, timeout.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request + "\n"), timeout.Token);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync(timeout.Token);
    }

    [GeneratedRegex(@"migration state: a (?<bytes>\d+)-byte state reply arrived")]
    private static partial Regex StateReplyLine();

    private string WriteRandomFile(string name)
    {
        output.WriteLine($"file {name}: {FileBytes} bytes from seed {Seed}");
        var bytes = new byte[FileBytes];
        new Random(Seed).NextBytes(bytes);
        File.WriteAllBytes(Path.Combine(_testbed.Files.FullName, name), bytes);
        return Convert.ToHexString(SHA256.HashData(bytes));
    }

    private static string Sha256Of(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(file));
    }
}

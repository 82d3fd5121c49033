using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mtcp.TestKit.Netns;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// Real server nodes and the client agent as processes in the namespaces of a <see cref="ControlNetworkTopology"/>:
/// each node runs Akka.Remote (cluster and control connections) on its control address and MTCP on its service
/// address, over the raw (IP protocol 253) or the UDP transport; the agent relays from loopback in the client
/// namespace to the first server. Every process started is handed to <paramref name="own"/>, which disposes it.
/// </summary>
internal sealed class TopologyProcesses(ProcessTestbed testbed, ControlNetworkTopology topology, ITestOutputHelper output, Func<HostProcess, HostProcess> own)
{
    public const int ControlPort = 2552;
    public const byte MtcpProtocol = 253;
    public const int UdpPort = 5253;
    public static readonly IPEndPoint AgentListen = new(IPAddress.Loopback, ProcessTestbed.FilePort);
    public static readonly IPEndPoint AgentControl = new(IPAddress.Loopback, 7253);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>How a host names its transport on its <c>transport:</c> line, for <c>raw</c> or <c>udp</c>.</summary>
    public static string TransportLine(string transport, Mtcp.Wire.IpAddress address) => transport == "udp"
        ? $"transport: UDP encapsulation at {address}:{UdpPort} to peer port {UdpPort}"
        : address.IsIPv6 ? $"transport: raw IPv6 next header {MtcpProtocol} at {address}" : $"transport: raw IPv4 protocol {MtcpProtocol} at {address}";

    /// <summary><c>address:port</c> as HOCON endpoints and Akka addresses write it: an IPv6 address in brackets.</summary>
    public static string EndpointText(Mtcp.Wire.IpAddress address, int port) => new IPEndPoint(address.ToIPAddress(), port).ToString();

    /// <summary>The service endpoint of <paramref name="host"/>'s file server, as the agent and its control commands name it.</summary>
    public static string FileService(ServerHost host) => EndpointText(host.ServiceAddress, ProcessTestbed.FilePort);

    /// <summary>Starts a server node in its namespace and waits until it is ready, with <paramref name="seed"/> as the cluster's seed.</summary>
    public async Task<HostProcess> StartServerAsync(string name, ServerHost host, ServerHost seed, string transport = "raw", string extraConfig = "")
    {
        var config = testbed.WriteConfig($"{name}.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{host.ControlAddress}}", port = {{ControlPort}} }
            akka.cluster.seed-nodes = ["akka.ssl.tcp://mtcp@{{EndpointText(seed.ControlAddress, ControlPort)}}"]
            {{testbed.SecurityConfig(name, host.ControlAddress.ToIPAddress())}}
            mtcp.runtime.transport = {{transport}}
            mtcp.runtime.local-address = "{{host.ServiceAddress}}"
            mtcp.hosts.server.file.root = "{{testbed.Files.FullName}}"
            {{ProcessTestbed.MigrationConfig}}
            {{extraConfig}}
            """);
        var process = own(HostProcess.Start(name, ProcessTestbed.ServerDll, ["--config", config], output, testbed.Directory.FullName, host.Namespace.CommandPrefix));
        await process.WaitForLineAsync("server node ready", ProcessTestbed.StartTimeout);
        Assert.Contains(process.Lines, line => line.Contains(TransportLine(transport, host.ServiceAddress), StringComparison.Ordinal));
        return process;
    }

    /// <summary>Starts the agent in the client namespace, relaying <see cref="AgentListen"/> to the first server's <paramref name="servicePort"/> (its file server's by default).</summary>
    public async Task<HostProcess> StartAgentAsync(string transport = "raw", string extraConfig = "", int servicePort = ProcessTestbed.FilePort)
    {
        var config = testbed.WriteConfig("agent.conf", $$"""
            mtcp.runtime.transport = {{transport}}
            mtcp.runtime.local-address = "{{topology.ClientAddress}}"
            mtcp.agent.service-endpoints = ["{{EndpointText(topology.Server1.ServiceAddress, servicePort)}}"]
            mtcp.agent.serve.listen = "{{AgentListen}}"
            mtcp.agent.control-endpoint = "{{AgentControl}}"
            {{ProcessTestbed.MigrationConfig}}
            {{extraConfig}}
            """);
        var process = own(HostProcess.Start("agent", ProcessTestbed.AgentDll, ["--config", config, "serve"], output, testbed.Directory.FullName, topology.Client.CommandPrefix));
        await process.WaitForLineAsync("agent ready", ProcessTestbed.StartTimeout);
        Assert.Contains(process.Lines, line => line.Contains(TransportLine(transport, topology.ClientAddress), StringComparison.Ordinal));
        return process;
    }

    /// <summary>
    /// Asks the agent to migrate the download to S2, S1, S2, ... each time another 1/(<paramref name="migrations"/> + 1)
    /// of the <paramref name="fileBytes"/> has arrived, until that many attempts are made or the download ends (curl's
    /// --max-time bounds it).
    /// </summary>
    public async Task<(int Completed, List<string> Failures)> MigrateWhileDownloadingAsync(BackgroundCommand curl, long fileBytes, int migrations)
    {
        var destinations = new[] { topology.Server2, topology.Server1 };
        var completed = 0;
        var failures = new List<string>();
        while (!curl.HasExited && completed + failures.Count < migrations)
        {
            var attempt = completed + failures.Count;
            using var progress = JsonDocument.Parse(await AskAgentAsync("status"));
            if (progress.RootElement.GetProperty("connections").EnumerateArray().FirstOrDefault() is not { ValueKind: JsonValueKind.Object } open
                || open.GetProperty("bytesFromService").GetInt64() < (attempt + 1L) * fileBytes / (migrations + 1))
            {
                await Task.Delay(20);
                continue;
            }

            var destination = FileService(destinations[attempt % destinations.Length]);
            using var result = JsonDocument.Parse(await AskAgentAsync($"migrate {open.GetProperty("id").GetInt64()} {destination}"));
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
    public async Task<string> AskAgentAsync(string request)
    {
        using var timeout = new CancellationTokenSource(Bound);
        using var socket = topology.Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(AgentControl, timeout.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request + "\n"), timeout.Token);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync(timeout.Token);
    }
}

using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>A server node started by a test: its process, MTCP address and Akka.Remote (control) endpoint.</summary>
public sealed record ServerHandle(HostProcess Process, IPAddress Address, IPEndPoint ControlEndPoint)
{
    public string Service(int port) => $"{Address}:{port}";
}

/// <summary>A running agent <c>serve</c>: where clients connect and where it answers status.</summary>
public sealed record AgentHandle(HostProcess Process, IPEndPoint Listen, IPEndPoint Control)
{
    /// <summary>One request line to the agent's control endpoint, as its status and migrate commands send; one JSON answer.</summary>
    public async Task<string> AskAsync(string request, TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        using var client = new TcpClient();
        await client.ConnectAsync(Control, cancellation.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request + "\n"), cancellation.Token);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync(cancellation.Token);
    }

    /// <summary>The id of the first relay that status shows open with at least <paramref name="bytes"/> from the service; waits for one.</summary>
    public async Task<long> OpenRelayAsync(TimeSpan timeout, long bytes = 1)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        while (true)
        {
            using var status = System.Text.Json.JsonDocument.Parse(await AskAsync("status", timeout));
            if (status.RootElement.GetProperty("connections").EnumerateArray().FirstOrDefault() is { ValueKind: System.Text.Json.JsonValueKind.Object } open
                && open.GetProperty("bytesFromService").GetInt64() >= bytes)
            {
                return open.GetProperty("id").GetInt64();
            }

            await Task.Delay(20, cancellation.Token);
        }
    }

    /// <summary>What status records of the agent's one closed relay (its bytes, migrations with cause and reason); waits for it to close.</summary>
    public async Task<System.Text.Json.JsonElement> ClosedRelayAsync(TimeSpan timeout)
    {
        var waiting = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            using var status = System.Text.Json.JsonDocument.Parse(await AskAsync("status", timeout));
            if (status.RootElement.GetProperty("recentlyClosed").EnumerateArray().ToList() is [var relay])
            {
                return relay.Clone();
            }

            if (waiting.Elapsed > timeout)
            {
                throw new TimeoutException($"no relay closed within {timeout.TotalSeconds:0} s: {status.RootElement}");
            }

            await Task.Delay(50);
        }
    }
}

/// <summary>
/// Starts the real server node and agent executables for one test, each on its own loopback address (every raw
/// socket sees every packet, so nodes are told apart by address), in a scratch directory removed afterwards.
/// Disposing disposes what the test handed to <see cref="Own{T}"/> (last first), kills every process still running,
/// then removes the directory.
/// </summary>
public sealed class ProcessTestbed : IDisposable
{
    public const int FilePort = 8080;
    public const int RequestPort = 6379;
    public const int StreamPort = 8081;

    private static int _nextAddress = 1;
    private readonly List<HostProcess> _processes = [];
    private readonly List<IDisposable> _owned = [];
    private readonly ITestOutputHelper _output;

    public ProcessTestbed(ITestOutputHelper output)
    {
        _output = output;
        Directory = System.IO.Directory.CreateTempSubdirectory("mtcp-process-");
        Files = Directory.CreateSubdirectory("files");
    }

    public static TimeSpan StartTimeout { get; } = TimeSpan.FromSeconds(30);

    /// <summary>The scratch directory of this test.</summary>
    public DirectoryInfo Directory { get; }

    /// <summary>The file server's root.</summary>
    public DirectoryInfo Files { get; }

    public static string ServerDll => HostDll("Mtcp.Server");

    public static string AgentDll => HostDll("Mtcp.Agent");

    public static string DemoDll => HostDll("Mtcp.Demo");

    public static string SampleDll => HostDll("Mtcp.Sample");

    /// <summary>Turns migration on in a server node or agent: one random cluster key per test run, shared by all.</summary>
    public static string MigrationConfig { get; } =
        $"mtcp.migration.cluster-key = \"{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))}\"";

    /// <summary>
    /// A server node's file server sending each connection at <paramref name="bytesPerSecond"/>, so that a download is
    /// still going when the test acts on it: curl's --limit-rate does not slow the sender while the agent's and the
    /// kernel's socket buffers (several MB on loopback) take the transfer in a fraction of a second.
    /// </summary>
    public static string PacedFileServer(string bytesPerSecond) => $"mtcp.hosts.server.file.pace.best-rate = {bytesPerSecond}";

    /// <summary>A loopback address no other node of this test run uses (127.0.6.x, away from the usual 127.0.0.x).</summary>
    public static IPAddress NextAddress()
    {
        var host = Interlocked.Increment(ref _nextAddress);
        return host < 255 ? IPAddress.Parse($"127.0.6.{host}") : throw new InvalidOperationException("out of test addresses");
    }

    /// <summary>
    /// The <c>mtcp.security</c> lines of a node named <paramref name="name"/>: a certificate of this test's cluster CA
    /// (made at the first call), so that the node's control plane runs mutual TLS.
    /// </summary>
    public string SecurityConfig(string name, IPAddress address)
    {
        var certificates = Path.Combine(Directory.FullName, "certificates");
        if (!File.Exists(ClusterCertificates.FilesOf(certificates, ClusterCertificates.AuthorityName).CertificatePath))
        {
            ClusterCertificates.CreateAuthority(certificates, "mtcp-test-ca", TimeSpan.FromDays(1));
        }

        var node = ClusterCertificates.IssueNode(certificates, name, [address.ToString()], certificates, TimeSpan.FromDays(1));
        return ClusterCertificates.SecurityConfig(certificates, node);
    }

    /// <summary>
    /// A keyless Akka.NET system named like the nodes, holding a certificate of this test's CA, that joins through
    /// <paramref name="seed"/> and is Up: a member TLS lets in, as an attacker with a stolen certificate would be. The
    /// caller disposes it.
    /// </summary>
    public async Task<ActorSystem> JoinAsMemberAsync(string name, ServerHandle seed, TimeSpan timeout, params Setup[] setups)
    {
        var address = NextAddress();
        var config = ConfigurationFactory.ParseString(SecurityConfig(name, address))
            .WithFallback(MtcpConfig.WithFallback(ConfigurationFactory.ParseString($$"""
                akka.actor.provider = cluster
                akka.remote.dot-netty.tcp { hostname = "{{address}}", port = 0 }
                akka.cluster.seed-nodes = ["akka.ssl.tcp://mtcp@{{seed.ControlEndPoint}}"]
                akka.cluster.run-coordinated-shutdown-when-down = off
                akka.loglevel = WARNING
                mtcp.security.insecure-control-plane = off
                """)));
        var system = ActorSystem.Create("mtcp", setups.Aggregate(ControlPlaneSecurity.Read(config).SystemSetup(config), (all, setup) => all.And(setup)));
        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => up.TrySetResult());
        await up.Task.WaitAsync(timeout);
        return system;
    }

    public string WriteConfig(string name, string hocon)
    {
        var path = Path.Combine(Directory.FullName, name);
        File.WriteAllText(path, hocon);
        return path;
    }

    /// <summary>Starts a server node and waits until it is ready; <paramref name="seed"/> null makes it its own seed.</summary>
    public async Task<ServerHandle> StartServerAsync(string name, ServerHandle? seed = null, string extraConfig = "") =>
        await StartNodeAsync(name, ServerDll, seed, $"mtcp.hosts.server.file.root = \"{Files.FullName}\"\n{extraConfig}", "server node ready");

    /// <summary>Starts the sample file server (Hosts/Mtcp.Sample, on a Generic Host) serving <see cref="Files"/> on <see cref="FilePort"/>.</summary>
    public async Task<ServerHandle> StartSampleAsync(string name, ServerHandle? seed = null, string extraConfig = "") =>
        await StartNodeAsync(name, SampleDll, seed, $"mtcp.hosts.sample {{ root = \"{Files.FullName}\", port = {FilePort} }}\n{extraConfig}", "MTCP server ready");

    private async Task<ServerHandle> StartNodeAsync(string name, string dll, ServerHandle? seed, string extraConfig, string readyLine)
    {
        var address = NextAddress();
        var control = new IPEndPoint(address, ListenPorts.PickUnused(address));
        var seedNode = seed?.ControlEndPoint ?? control;
        var config = WriteConfig($"{name}.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = {{control.Port}} }
            akka.cluster.seed-nodes = ["akka.ssl.tcp://mtcp@{{seedNode}}"]
            {{SecurityConfig(name, address)}}
            mtcp.runtime.local-address = "{{address}}"
            {{extraConfig}}
            """);
        var process = Track(HostProcess.Start(name, dll, ["--config", config], _output, Directory.FullName));
        await process.WaitForLineAsync(readyLine, StartTimeout);
        return new ServerHandle(process, address, control);
    }

    /// <summary>Starts an agent relaying to <paramref name="services"/> and waits until it accepts clients.</summary>
    public async Task<AgentHandle> StartAgentAsync(string name, IEnumerable<string> services, string extraConfig = "")
    {
        var listen = new IPEndPoint(IPAddress.Loopback, ListenPorts.PickUnused(IPAddress.Loopback));
        var control = new IPEndPoint(IPAddress.Loopback, ListenPorts.PickUnused(IPAddress.Loopback));
        var config = WriteConfig($"{name}.conf", $$"""
            mtcp.runtime.local-address = "{{NextAddress()}}"
            mtcp.agent.service-endpoints = [{{string.Join(", ", services.Select(service => $"\"{service}\""))}}]
            mtcp.agent.serve.listen = "{{listen}}"
            mtcp.agent.control-endpoint = "{{control}}"
            {{extraConfig}}
            """);
        var process = Track(HostProcess.Start(name, AgentDll, ["--config", config, "serve"], _output, Directory.FullName));
        await process.WaitForLineAsync("agent ready", StartTimeout);
        return new AgentHandle(process, listen, control);
    }

    /// <summary>Runs one agent command (fetch, status, migrate) on its own address and waits for it to exit.</summary>
    public async Task<(int ExitCode, HostProcess Process)> RunAgentAsync(string name, TimeSpan timeout, params string[] arguments)
    {
        var process = Track(HostProcess.Start(name, AgentDll, ["--local-address", NextAddress().ToString(), .. arguments], _output, Directory.FullName));
        return (await process.WaitForExitAsync(timeout), process);
    }

    public HostProcess Track(HostProcess process)
    {
        _processes.Add(process);
        return process;
    }

    /// <summary>
    /// Disposes <paramref name="resource"/> with the testbed, in reverse order of ownership: processes started in a
    /// namespace before the captures and loss rules in it, and those before the namespace.
    /// </summary>
    public T Own<T>(T resource)
        where T : IDisposable
    {
        _owned.Add(resource);
        return resource;
    }

    /// <summary>Writes <paramref name="bytes"/> seeded random bytes to the file server's root; returns their SHA-256 as <see cref="Sha256Of"/> does.</summary>
    public string WriteRandomFile(string name, int bytes, int seed)
    {
        _output.WriteLine($"file {name}: {bytes} bytes from seed {seed}");
        var content = new byte[bytes];
        new Random(seed).NextBytes(content);
        File.WriteAllBytes(Path.Combine(Files.FullName, name), content);
        return Convert.ToHexStringLower(SHA256.HashData(content));
    }

    /// <summary>The SHA-256 of a file in lower-case hex, as sha256sum prints it.</summary>
    public static string Sha256Of(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }

    public void Dispose()
    {
        try
        {
            for (var i = _owned.Count - 1; i >= 0; i--)
            {
                _owned[i].Dispose();
            }
        }
        finally
        {
            DisposeProcessesAndDirectory();
        }
    }

    private void DisposeProcessesAndDirectory()
    {
        foreach (var process in _processes)
        {
            process.Dispose();
        }

        try
        {
            Directory.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A killed process may still hold a file for a moment; the directory is in the temp folder.
        }
    }

    /// <summary>The repository's root: the test runs from TestKit/Mtcp.Process.Tests/bin/&lt;configuration&gt;/&lt;tfm&gt;/.</summary>
    public static DirectoryInfo Repository => BuildLayout().Repository;

    /// <summary>The repository's root directory and the configuration this test run was built in.</summary>
    public static (DirectoryInfo Repository, string Configuration, string Framework) BuildLayout()
    {
        // The test runs from TestKit/Mtcp.Process.Tests/bin/<configuration>/<tfm>/; the hosts build to the same layout.
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        return (output.Parent!.Parent!.Parent!.Parent!.Parent!, output.Parent.Name, output.Name);
    }

    private static string HostDll(string project)
    {
        var (repository, configuration, framework) = BuildLayout();
        var dll = Path.Combine(repository.FullName, "Hosts", project, "bin", configuration, framework, $"{project}.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} is missing: build the solution (the test project references the hosts)", dll);
    }
}

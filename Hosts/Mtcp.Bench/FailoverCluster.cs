using System.Globalization;
using System.Net;
using Mtcp.Actors.Api;
using Mtcp.Hosting;

namespace Mtcp.Bench;

/// <summary>
/// How the failover benchmark's two nodes are configured: their replication mode, their file server's pace (0: as fast
/// as the connection takes it), the last octet of the first node's address (the second takes the next), and any lines
/// laid over the reference configuration (a faster failure detector), and whether each node serves its metrics for
/// Prometheus (the cost measurement reads the replication's instruments there).
/// </summary>
internal sealed record FailoverClusterSettings(string Replication, long FileBestRate, int FirstHost, string ExtraConfig = "", bool Metrics = false);

/// <summary>
/// Two <c>Mtcp.Server</c> processes of one Akka.Cluster (control plane on mutual TLS with a CA made per cluster) at
/// &lt;network&gt;.FirstHost and the next address, serving files (the benchmark's file, port 8080) and requests (RESP, port 6379). A node
/// killed with <see cref="Kill"/> is started again by <see cref="RestartAsync"/> at the same MTCP address and a new
/// control port, joining through the survivor: a new incarnation, as after a real crash and restart.
/// </summary>
internal sealed class FailoverCluster : IDisposable
{
    public const ushort FilePort = 8080;
    public const ushort RequestPort = 6379;

    /// <summary>Service endpoints each node sees in its cluster view when both nodes are members: two ports each.</summary>
    private const int EndpointsOfBoth = 4;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly string _scratch;
    private readonly string _certificates;
    private readonly string _transport;
    private readonly string _key;
    private readonly string _files;
    private readonly FailoverClusterSettings _settings;
    private readonly ScaleProcess?[] _nodes = new ScaleProcess?[2];
    private readonly IPEndPoint[] _controls = new IPEndPoint[2];
    private readonly int[] _incarnations = new int[2];
    private readonly Uri?[] _metrics = new Uri?[2];

    private FailoverCluster(string scratch, string transport, string network, string files, FailoverClusterSettings settings)
    {
        _scratch = scratch;
        _transport = transport;
        _files = files;
        _settings = settings;
        _key = MigrationKey.Generate();
        _certificates = Directory.CreateDirectory(Path.Combine(scratch, "certificates")).FullName;
        ClusterCertificates.CreateAuthority(_certificates, "mtcp-bench-failover-ca", TimeSpan.FromDays(1));
        Addresses = [IPAddress.Parse($"{network}.{settings.FirstHost}"), IPAddress.Parse($"{network}.{settings.FirstHost + 1}")];
    }

    public IPAddress[] Addresses { get; }

    /// <summary>Node <paramref name="node"/>'s Prometheus scrape URL (settings with Metrics on).</summary>
    public Uri MetricsUrl(int node) => _metrics[node] ?? throw new InvalidOperationException($"node {node + 1} serves no metrics");

    /// <summary>Starts both nodes (the first the seed) and waits until each sees the other's service endpoints.</summary>
    public static async Task<FailoverCluster> StartAsync(string scratch, string transport, string network, string files, FailoverClusterSettings settings)
    {
        var cluster = new FailoverCluster(scratch, transport, network, files, settings);
        try
        {
            var first = cluster.Start(0, seed: 0);
            var second = cluster.Start(1, seed: 0);
            await Task.WhenAll(first, second);
            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    /// <summary>Which node serves <paramref name="address"/>, or -1.</summary>
    public int IndexOf(IPAddress address) => Array.FindIndex(Addresses, a => a.Equals(address));

    /// <summary>SIGKILL: no drain, no FIN, no leaving the cluster.</summary>
    public void Kill(int node)
    {
        _nodes[node]?.Dispose();
        _nodes[node] = null;
    }

    /// <summary>Waits for the next line of a running node that contains <paramref name="text"/>, from now on.</summary>
    public Task<string> LineAsync(int node, string text, TimeSpan timeout) =>
        _nodes[node]?.WaitForLineAsync(text, timeout) ?? throw new InvalidOperationException($"node {node + 1} is not running");

    /// <summary>Starts a killed node again, joining through the other, and waits until both see both nodes' endpoints.</summary>
    public async Task RestartAsync(int node)
    {
        var survivor = 1 - node;
        var survivorSees = _nodes[survivor]!.WaitForLineAsync($"cluster view: {EndpointsOfBoth} service endpoints", StartTimeout);
        await Start(node, seed: survivor);
        await survivorSees;
    }

    public void Dispose()
    {
        for (var i = 0; i < _nodes.Length; i++)
        {
            Kill(i);
        }
    }

    private async Task Start(int node, int seed)
    {
        var address = Addresses[node];
        _controls[node] = new IPEndPoint(address, ListenPorts.PickUnused(address));
        var incarnation = ++_incarnations[node];
        var name = $"server{node + 1}";
        var certificate = ClusterCertificates.IssueNode(_certificates, $"{name}-{incarnation}", [address.ToString()], _certificates, TimeSpan.FromDays(1));
        var config = Path.Combine(_scratch, $"{name}-{incarnation}.conf");
        var metrics = "";
        if (_settings.Metrics)
        {
            var endPoint = new IPEndPoint(address, ListenPorts.PickUnused(address));
            _metrics[node] = new Uri($"http://{endPoint}{PrometheusEndpoint.ScrapePath}");
            metrics = $"mtcp.hosts.server.metrics.prometheus-endpoint = \"{endPoint}\"";
        }

        var pace = _settings.FileBestRate > 0
            ? string.Create(CultureInfo.InvariantCulture, $"pace {{ best-rate = {_settings.FileBestRate}, degrade-after = 1TiB }}")
            : "";
        await File.WriteAllTextAsync(config, $$"""
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = {{_controls[node].Port}} }
            akka.cluster.seed-nodes = ["akka.ssl.tcp://mtcp@{{_controls[seed]}}"]
            {{ClusterCertificates.SecurityConfig(_certificates, certificate)}}
            akka.loglevel = WARNING
            mtcp.runtime { transport = {{_transport}}, local-address = "{{address}}" }
            mtcp.hosts.server.file { enabled = on, port = {{FilePort}}, root = "{{_files}}"{{(pace.Length > 0 ? ", " + pace : "")}} }
            mtcp.hosts.server.request { enabled = on, port = {{RequestPort}}, max-value-bytes = {{FailoverBenchmark.EchoValueBytes}} }
            mtcp.migration.cluster-key = "{{_key}}"
            mtcp.migration.replication = {{_settings.Replication}}
            {{metrics}}
            {{_settings.ExtraConfig}}
            """);
        var process = ScaleProcess.Start($"{name}#{incarnation}", ScaleBenchmark.HostDll("Mtcp.Server"), ["--config", config]);
        _nodes[node] = process;
        await process.WaitForLineAsync($"cluster view: {EndpointsOfBoth} service endpoints", StartTimeout);
    }
}

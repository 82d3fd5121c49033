using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Apps;
using Mtcp.Hosting;

namespace Mtcp.Demo;

/// <summary>
/// How the degrading node's file server paces each visit of a connection: <c>mtcp.demo.degradation</c>, passed to the
/// node as its <c>mtcp.hosts.server.file.pace</c>.
/// </summary>
internal sealed record DemoDegradation(int Node, long BestRate, long DegradeAfter, double SlowdownPerChunk, double MaxSlowdown)
{
    public string ServerConfig() => string.Create(
        CultureInfo.InvariantCulture,
        $"mtcp.hosts.server.file.pace {{ best-rate = {BestRate}, degrade-after = {DegradeAfter}, slowdown-per-chunk = {SlowdownPerChunk}, max-slowdown = {MaxSlowdown} }}");
}

/// <summary>
/// The load-balancing act, <c>mtcp.demo.load-balancing</c>: every node runs the server policy, and
/// <paramref name="Companions"/> paced downloads all reach the first node, which pushes some to its idle peers.
/// </summary>
internal sealed record DemoLoadBalancing(int Companions, long CompanionBytes, long CompanionRate)
{
    /// <summary>Connections of load difference that the nodes act on: the demo's few connections make it this small.</summary>
    public const int ImbalanceThreshold = 2;

    public bool Enabled => Companions > 0;

    public string ServerConfig() => Enabled
        ? $"mtcp.hosts.server.policy = load-balancing\nmtcp.policies.server {{ imbalance-threshold = {ImbalanceThreshold}, evaluation-interval = 500ms }}"
        : "";
}

/// <summary>What the demo is asked to do: the <c>mtcp.demo</c> section of HOCON/demo.conf, validated.</summary>
internal sealed record DemoOptions(
    string Network,
    bool Ipv6,
    string Transport,
    long FileBytes,
    int Seed,
    int Migrations,
    long RateBytesPerSecond,
    DemoDegradation Degradation,
    DemoLoadBalancing LoadBalancing,
    int CompareRepetitions,
    double CrashAt,
    FileServerOptions KernelFileServer)
{
    public static DemoOptions Create(Config config)
    {
        var network = HoconValues.Text(config, "mtcp.demo.network");
        if (network.Split('.') is not { Length: 3 } octets || !octets.All(octet => byte.TryParse(octet, NumberStyles.None, CultureInfo.InvariantCulture, out _)) || octets[0] != "127")
        {
            throw HoconValues.Invalid(config, "mtcp.demo.network", "must be three octets of a loopback address, e.g. 127.0.0");
        }

        var family = HoconValues.Text(config, "mtcp.demo.family");
        if (family is not ("ipv4" or "ipv6"))
        {
            throw HoconValues.Invalid(config, "mtcp.demo.family", "must be ipv4 or ipv6");
        }

        var ipv6Network = HoconValues.Text(config, "mtcp.demo.ipv6-network");
        if (!IPAddress.TryParse(ipv6Network, out var prefix) || prefix.AddressFamily != AddressFamily.InterNetworkV6
            || prefix.GetAddressBytes().AsSpan(8).ContainsAnyExcept((byte)0) || prefix.IsIPv6LinkLocal || prefix.IsIPv6Multicast || prefix.IsIPv4MappedToIPv6 || prefix.Equals(IPAddress.IPv6Any))
        {
            throw HoconValues.Invalid(config, "mtcp.demo.ipv6-network", "must be a /64 prefix of unicast IPv6 addresses, not link-local, written with its low 64 bits zero, e.g. fd00:6d74:6370::");
        }

        var transport = HoconValues.Text(config, "mtcp.demo.transport");
        if (transport is not ("auto" or "raw" or "udp"))
        {
            throw HoconValues.Invalid(config, "mtcp.demo.transport", "must be auto, raw or udp");
        }

        var fileBytes = HoconValues.LongSize(config, "mtcp.demo.file-size", 1L << 20, 1L << 30);
        var migrations = HoconValues.Integer(config, "mtcp.demo.migrations", 2, 100);
        var degradation = new DemoDegradation(
            HoconValues.Integer(config, "mtcp.demo.degradation.node", 1, 3),
            HoconValues.LongSize(config, "mtcp.demo.degradation.best-rate", 1, 1L << 30),
            HoconValues.LongSize(config, "mtcp.demo.degradation.degrade-after", 0, 1L << 30),
            HoconValues.Number(config, "mtcp.demo.degradation.slowdown-per-chunk", 0, 1000),
            HoconValues.Number(config, "mtcp.demo.degradation.max-slowdown", 1, 1000));

        var balancing = new DemoLoadBalancing(
            HoconValues.Integer(config, "mtcp.demo.load-balancing.companions", 0, 8),
            HoconValues.LongSize(config, "mtcp.demo.load-balancing.companion-size", 1L << 20, 64L << 20),
            HoconValues.LongSize(config, "mtcp.demo.load-balancing.companion-rate", 64L << 10, 1L << 30));
        if (balancing.Companions == 1)
        {
            throw HoconValues.Invalid(config, "mtcp.demo.load-balancing.companions", $"must be 0 (off) or at least {DemoLoadBalancing.ImbalanceThreshold}: one connection is no imbalance the nodes act on");
        }

        var crashAt = HoconValues.Number(config, "mtcp.demo.crash-at", 0, 0.95);
        if (crashAt is > 0 and < 0.5)
        {
            throw HoconValues.Invalid(config, "mtcp.demo.crash-at", "must be 0 (no crash) or 0.5 to 0.95");
        }

        // The plan spaces the operator's migrations (migrations + 1) shares apart over the file up to the crash, and the
        // degrading node serves degrade-after bytes at its best before the policy can see it slow down: with shares
        // smaller than that, the visit there swallows the next shares and the download ends before the plan does.
        var smallest = (long)((migrations + 1) * Math.Max(degradation.DegradeAfter, 1L << 20) / (crashAt > 0 ? crashAt : 1));

        if (fileBytes < smallest)
        {
            throw HoconValues.Invalid(
                config,
                "mtcp.demo.file-size",
                $"must be at least {smallest >> 20} MiB for {migrations} migrations with degradation.degrade-after = {degradation.DegradeAfter >> 20} MiB and crash-at = {crashAt.ToString(CultureInfo.InvariantCulture)} (one share of the file up to the crash per migration, each no smaller than what the degrading node serves before it slows down): raise it (--size-mib), or lower mtcp.demo.migrations (--migrations) or degrade-after");
        }

        return new DemoOptions(
            family == "ipv6" ? ipv6Network : network,
            family == "ipv6",
            transport,
            fileBytes,
            HoconValues.Integer(config, "mtcp.demo.seed", int.MinValue, int.MaxValue),
            migrations,
            HoconValues.LongSize(config, "mtcp.demo.rate", 0, 1L << 30),
            degradation,
            balancing,
            HoconValues.Integer(config, "mtcp.demo.compare.repetitions", 0, 20),
            crashAt,
            // The kernel-TCP baseline serves with the nodes' own file server settings (root aside).
            new FileServerOptions(
                RootDirectory: ".",
                HoconValues.Size(config, "mtcp.hosts.server.file.max-request-line", 64, 1 << 20),
                HoconValues.Integer(config, "mtcp.hosts.server.file.max-headers", 1, 1000),
                HoconValues.Duration(config, "mtcp.hosts.server.file.request-timeout", allowZero: false),
                HoconValues.Size(config, "mtcp.hosts.server.file.chunk-size", 512, 4 << 20)));
    }

    /// <summary>
    /// Host <paramref name="number"/> of the demo's network: <c>network.number</c> over IPv4, the /64 prefix with
    /// <paramref name="number"/> as its last byte over IPv6.
    /// </summary>
    public IPAddress Host(int number)
    {
        if (!Ipv6)
        {
            return IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"{Network}.{number}"));
        }

        var bytes = IPAddress.Parse(Network).GetAddressBytes();
        bytes[^1] = (byte)number;
        return new IPAddress(bytes);
    }

    /// <summary>The loopback address of the demo's family: where the agents listen for curl and the kernel-TCP baseline serves.</summary>
    public IPAddress Loopback => Ipv6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;

    /// <summary>The MTCP runtime settings every node and agent of the demo shares, for one of them at <paramref name="localAddress"/>.</summary>
    public string RuntimeConfig(string localAddress) => string.Create(CultureInfo.InvariantCulture, $$"""
        mtcp.runtime.local-address = "{{localAddress}}"
        mtcp.runtime.transport = {{Transport}}
        """);
}

/// <summary>The node the demo killed under the download: which, when (the demo's clock), and the agent's relay it served.</summary>
internal sealed record DemoCrash(int Victim, TimeSpan At, long Relay);

/// <summary>
/// The demo: three server nodes and a client agent on this machine, a download through the agent with curl while
/// the operator migrates its connection, one node that is not serving stopped mid-way, then the node serving the
/// download killed and its buddy taking the connection over, and a timeline of what happened read back from the
/// agent's status and the nodes' and agent's logs. Every check that fails is named.
/// </summary>
internal sealed partial class DemoScenario(DemoOptions options) : IDisposable
{
    private const int ServerCount = 3;

    // The hosts of the demo's network beyond the servers (2 to 4): the agent, and the rate comparison's node and agent.
    private const int AgentHost = 9;
    private const int CompareServerHost = 5;
    private const int CompareAgentHost = 10;
    private const int FilePort = 8080;
    private const string FileName = "demo.bin";
    private const string CompanionFileName = "companion.bin";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan ViewTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ReplicaSettle = TimeSpan.FromMilliseconds(100);

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<ChildProcess> _children = [];
    private readonly List<string> _failures = [];
    private readonly List<(TimeSpan At, string Text)> _events = [];
    private readonly DirectoryInfo _scratch = Directory.CreateTempSubdirectory("mtcp-demo-");
    private string _files = "";
    private string _certificates = "";
    private string _migrationKey = "";
    private LoopbackAddresses? _addresses;

    /// <summary>
    /// The agent numbers its relays in order: the download's relay is the first numbered above this, the last relay
    /// the agent had before curl started. A companion of the load-balancing act still open cannot be taken for it.
    /// </summary>
    private long _lastRelayBeforeDownload;

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var servers = Enumerable.Range(0, ServerCount).Select(i => options.Host(i + 2)).ToArray();
        var agentAddress = options.Host(AgentHost);
        if (options.Ipv6)
        {
            _addresses = LoopbackAddresses.Add([.. servers, agentAddress, options.Host(CompareServerHost), options.Host(CompareAgentHost)]);
            Say($"added {string.Join(", ", _addresses.Addresses)} to the loopback interface for this run (removed at exit): IPv6 loopback has only ::1, and each node needs an address of its own");
        }

        var raw = options.Ipv6 ? "raw IPv6 next header 253" : "raw IPv4 protocol 253";
        Say($"MTCP demo: 3 server nodes at {string.Join(", ", servers.Select(s => s.ToString()))}, a client agent at {agentAddress}; " + options.Transport switch
        {
            "auto" when Environment.IsPrivilegedProcess => $"running as root, so segments travel in {raw}",
            "auto" => $"not root, so segments travel in UDP (run as root for {raw})",
            var chosen => $"mtcp.demo.transport = {chosen}",
        });

        var files = _scratch.CreateSubdirectory("files");
        _files = files.FullName;
        var expected = GenerateFile(Path.Combine(files.FullName, FileName), options.FileBytes, options.Seed);
        Say($"generated {FileName}: {Megabytes(options.FileBytes)} from seed {options.Seed}, SHA-256 {expected}");
        _migrationKey = MigrationKey.Generate();

        var degrading = options.Degradation.Node - 1;
        Say($"server{degrading + 1} degrades: each visit of a connection gets {Megabytes(options.Degradation.BestRate)}/s for {Megabytes(options.Degradation.DegradeAfter)}, "
            + string.Create(CultureInfo.InvariantCulture, $"then each 64 KiB chunk {options.Degradation.SlowdownPerChunk} x slower than the one before, down to 1/{options.Degradation.MaxSlowdown} (mtcp.hosts.server.file.pace)"));
        if (options.RateBytesPerSecond > 0)
        {
            Say($"the other nodes pace each connection at {Megabytes(options.RateBytesPerSecond)}/s (mtcp.hosts.server.file.pace.best-rate), the rate curl reads at");
        }

        // The control plane runs mutual TLS: a CA of the demo's own, and a certificate from it for each node.
        _certificates = _scratch.CreateSubdirectory("certificates").FullName;
        ClusterCertificates.CreateAuthority(_certificates, "mtcp-demo-ca", TimeSpan.FromDays(1));
        Say("made a cluster CA and a certificate per node: the nodes' control plane (Akka.Remote) runs mutual TLS");
        var controls = servers.Select(address => new IPEndPoint(address, ListenPorts.PickUnused(address))).ToArray();
        var nodes = new ChildProcess[ServerCount];
        for (var i = 0; i < ServerCount; i++)
        {
            // curl's --limit-rate is an average: after the slow visit to the degrading node it would read the rest at
            // full speed, and the download could end before the planned crash. Paced nodes keep it at the rate.
            var pace = i == degrading ? options.Degradation.ServerConfig()
                : options.RateBytesPerSecond > 0 ? string.Create(CultureInfo.InvariantCulture, $"mtcp.hosts.server.file.pace.best-rate = {options.RateBytesPerSecond}")
                : "";
            nodes[i] = StartNode($"server{i + 1}", controls[i], controls[0], pace + "\n" + options.LoadBalancing.ServerConfig());
        }

        foreach (var node in nodes)
        {
            await node.WaitForLineAsync("server node ready", StartTimeout).ConfigureAwait(false);
        }

        foreach (var node in nodes)
        {
            await node.WaitForLineAsync($"cluster view: {ServerCount} service endpoints", StartTimeout).ConfigureAwait(false);
        }

        Say($"the cluster is up: every node sees {ServerCount} service endpoints");
        var listen = new IPEndPoint(options.Loopback, ListenPorts.PickUnused(options.Loopback));
        var control = new IPEndPoint(options.Loopback, ListenPorts.PickUnused(options.Loopback));
        var agentConfig = WriteConfig("agent.conf", $$"""
            {{options.RuntimeConfig(agentAddress.ToString())}}
            mtcp.agent.service-endpoints = [{{string.Join(", ", servers.Select(server => $"\"{Service(server)}\""))}}]
            mtcp.agent.policy = throughput
            # A migration towards the node that left fails after this, rather than after SYN retransmissions.
            mtcp.migration.destination-timeout = 3s
            mtcp.agent.serve.listen = "{{listen}}"
            mtcp.agent.control-endpoint = "{{control}}"
            """);
        var agent = Start("agent", "Mtcp.Agent", ["--config", agentConfig, "serve"]);
        await agent.WaitForLineAsync("agent ready", StartTimeout).ConfigureAwait(false);

        var balanced = options.LoadBalancing.Enabled ? await BalanceLoadAsync(new AgentControl(control), listen, servers, cancellationToken).ConfigureAwait(false) : [];
        var before = await new AgentControl(control).StatusAsync(cancellationToken).ConfigureAwait(false);
        _lastRelayBeforeDownload = before.Connections.Concat(before.RecentlyClosed).Select(relay => relay.Id).DefaultIfEmpty(0).Max();
        var output = Path.Combine(_scratch.FullName, "downloaded.bin");
        var url = $"http://{listen}/{FileName}";
        Say($"curl {url} {(options.RateBytesPerSecond > 0 ? $"at {Megabytes(options.RateBytesPerSecond)}/s" : "at full speed")} through the agent; {options.Migrations} operator-triggered migrations planned; "
            + "the agent's throughput policy (thesis 5.3.2: alpha 0.4, migrate at 0.7 of the best smoothed rate) migrates on its own");
        // --globoff: curl reads brackets in a URL as a glob range, and an IPv6 literal has them.
        string[] limit = options.RateBytesPerSecond > 0 ? ["--limit-rate", options.RateBytesPerSecond.ToString(CultureInfo.InvariantCulture)] : [];
        var curl = ChildProcess.Start("curl", "curl", dll: null, ["-sS", "--globoff", "--fail", "--max-time", "120", .. limit, "-o", output, url], _scratch.FullName, _clock, _ => true);
        _children.Add(curl);

        var stop = await DriveMigrationsAsync(new AgentControl(control), curl, servers, nodes, cancellationToken).ConfigureAwait(false);
        var stopped = stop is null ? -1 : options.Degradation.Node - 1;
        var crash = options.CrashAt > 0 ? await CrashServingNodeAsync(new AgentControl(control), curl, servers, nodes, stopped, cancellationToken).ConfigureAwait(false) : null;
        var curlExit = await curl.WaitForExitAsync(TimeSpan.FromSeconds(150)).ConfigureAwait(false);
        Check(curlExit == 0, $"curl exited with {curlExit?.ToString(CultureInfo.InvariantCulture) ?? "no exit within 150 s"}"
            + (curlExit == 0 ? "" : $" (a reset right away can mean another MTCP process owns an address of the demo's network {options.Network}: try --network {(options.Ipv6 ? "fd00:6d74:6370:8::" : "127.0.8")})"));
        if (stop is not null)
        {
            await stop.ConfigureAwait(false);
        }

        var relay = await FinalRelayAsync(new AgentControl(control), cancellationToken).ConfigureAwait(false);
        PrintTimeline(relay, balanced, nodes, servers, crash);
        if (crash is not null)
        {
            ReportFailover(crash, nodes, servers, agent);
        }

        var actual = File.Exists(output) ? await Sha256Async(output, cancellationToken).ConfigureAwait(false) : "(no file)";
        var completed = relay?.Migrations.Count(m => m.Completed) ?? 0;
        var byOperator = relay?.Migrations.Count(m => m.Completed && m.Cause == "operator") ?? 0;
        var byPolicy = relay?.Migrations.Count(m => m.Completed && m.Cause == "policy") ?? 0;
        Check(byOperator >= options.Migrations, $"{byOperator} operator-triggered migrations completed, {options.Migrations} planned");
        Check(byPolicy >= 1, $"no policy-triggered migration happened (server{degrading + 1} degraded, mtcp.agent.policy = throughput)");
        if (options.CompareRepetitions > 0)
        {
            await CompareRatesAsync(expected, cancellationToken).ConfigureAwait(false);
        }

        Console.WriteLine();
        if (actual == expected)
        {
            Console.WriteLine($"SHA-256 verified: {actual} ({Megabytes(options.FileBytes)} through {completed} migrations: {byPolicy} by the policy, {byOperator} by the operator"
                + (crash is null ? ")" : $", and the crash of server{crash.Victim + 1})"));
        }
        else
        {
            Check(false, $"SHA-256 mismatch: downloaded {actual}, generated {expected}");
        }

        if (_failures.Count > 0)
        {
            Console.WriteLine($"demo FAILED: {string.Join("; ", _failures)}");
            return 1;
        }

        Console.WriteLine($"demo verified in {_clock.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }

    public void Dispose()
    {
        foreach (var child in _children)
        {
            child.Dispose();
        }

        // After the processes that used them have gone.
        _addresses?.Dispose();

        try
        {
            _scratch.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A process just killed may hold a file for a moment; the directory is under the temp folder.
        }
    }

    /// <summary>
    /// Polls the agent's status; each time the relay has received the next share of the file, the operator migrates it:
    /// first to the degrading node, which the agent's throughput policy is expected to leave on its own (the operator
    /// waits while the connection is there), then on to the next live healthy node. After half of the operator's
    /// migrations, stops a node that is not serving, the degrading one once the policy left it (returned as a task that
    /// completes when its exit and the others' views are checked).
    /// </summary>
    private async Task<Task?> DriveMigrationsAsync(AgentControl agent, ChildProcess curl, IPAddress[] servers, ChildProcess[] nodes, CancellationToken cancellationToken)
    {
        var total = options.CrashAt > 0 ? (long)(options.FileBytes * options.CrashAt) : options.FileBytes;
        var degrading = options.Degradation.Node - 1;
        var degradingEndpoint = Service(servers[degrading]);
        var live = Enumerable.Range(0, ServerCount).ToList();
        Task? stop = null;
        var done = 0;
        var waitingForPolicy = false;
        while (!curl.HasExited && done < options.Migrations)
        {
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            var status = await agent.StatusAsync(cancellationToken).ConfigureAwait(false);
            if (Download(status.Connections) is not { } relay || relay.BytesFromService < (done + 1) * total / (options.Migrations + 1))
            {
                continue;
            }

            var current = ServerIndex(servers, relay.Service);
            if (current == degrading)
            {
                if (!waitingForPolicy)
                {
                    Say($"relay {relay.Id} is on the degrading server{degrading + 1}: the operator leaves it to the client policy");
                    waitingForPolicy = true;
                }

                continue;
            }

            waitingForPolicy = false;
            var policyLeftDegrading = relay.Migrations.Any(m => m.Completed && m.Cause == "policy" && m.From == degradingEndpoint);
            var healthy = live.Where(i => i != degrading).ToList();
            var next = !policyLeftDegrading && live.Contains(degrading) ? degrading : healthy[(healthy.IndexOf(current) + 1) % healthy.Count];
            var destination = Service(servers[next]);
            var result = await agent.MigrateAsync(relay.Id, destination, cancellationToken).ConfigureAwait(false);
            Check(result.Error is null, $"migrate answered: {result.Error}");
            if (result.Outcomes is [{ Completed: false, DurationMs: 0 } busy])
            {
                // It did not start: the policy's migration was in progress. The operator asks again.
                Say($"operator migration {done + 1} of relay {busy.Relay} to {busy.To} did not start ({busy.FailureReason}); asking again");
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                continue;
            }

            foreach (var outcome in result.Outcomes)
            {
                Say(outcome.Completed
                    ? $"operator migration {done + 1}: relay {outcome.Relay} {outcome.From} -> {outcome.To} completed in {outcome.DurationMs:0.0} ms (client's wait for the new server)"
                    : $"operator migration {done + 1}: relay {outcome.Relay} {outcome.From} -> {outcome.To} FAILED: {outcome.FailureReason}");
            }

            done++;
            if (stop is null && done >= options.Migrations / 2 && policyLeftDegrading)
            {
                // Stop a node the download is not on, and not the next destination either, so the stop is seen, not felt:
                // the degrading one, as a failing node is the one an operator takes out.
                live.Remove(degrading);
                stop = StopNodeAsync(nodes, servers, degrading, live);
            }
        }

        return stop;
    }

    /// <summary>
    /// Once the agent has received <see cref="DemoOptions.CrashAt"/> of the file, SIGKILLs the node serving the download;
    /// null (and a failed check) when the download ended first. A node's buddy is the next member after it in address
    /// order (wrapping), and a node stopped with SIGTERM stays a member while it drains: when that node
    /// (<paramref name="stopped"/>, -1 for none) is the serving node's buddy, the crash would be a second fault, so the
    /// operator first moves the connection to the other live node, whose buddy is live.
    /// </summary>
    private async Task<DemoCrash?> CrashServingNodeAsync(AgentControl agent, ChildProcess curl, IPAddress[] servers, ChildProcess[] nodes, int stopped, CancellationToken cancellationToken)
    {
        var mark = (long)(options.CrashAt * options.FileBytes);
        while (!curl.HasExited)
        {
            var status = await agent.StatusAsync(cancellationToken).ConfigureAwait(false);
            if (Download(status.Connections) is { } relay && relay.BytesFromService >= mark)
            {
                var victim = ServerIndex(servers, relay.Service);
                if (victim < 0)
                {
                    Check(false, $"relay {relay.Id} is served by {relay.Service}, none of the demo's nodes");
                    return null;
                }

                if ((victim + 1) % ServerCount == stopped)
                {
                    var other = Enumerable.Range(0, ServerCount).First(i => i != victim && i != stopped);
                    var moved = await agent.MigrateAsync(relay.Id, Service(servers[other]), cancellationToken).ConfigureAwait(false);
                    var outcome = moved.Outcomes.FirstOrDefault();
                    Say($"before the crash: relay {relay.Id} {relay.Service} -> {Service(servers[other])} {(outcome is { Completed: true } ? $"completed in {outcome.DurationMs:0.0} ms" : $"FAILED: {outcome?.FailureReason ?? moved.Error}")} (the buddy of server{victim + 1} is server{stopped + 1}, which is draining; server{other + 1}'s buddy is live)");
                    if (outcome is not { Completed: true })
                    {
                        Check(false, $"the move before the crash failed: {outcome?.FailureReason ?? moved.Error}");
                        return null;
                    }

                    // The node the connection moved to sends its buddy the whole state first: a moment (a few control
                    // round trips) before the replica is there to take over.
                    await Task.Delay(ReplicaSettle, cancellationToken).ConfigureAwait(false);
                    victim = other;
                }

                var at = _clock.Elapsed;
                nodes[victim].Kill();
                Say($"crash: SIGKILL of server{victim + 1} ({servers[victim]}), serving relay {relay.Id} (the agent had {Megabytes(relay.BytesFromService)} of {Megabytes(options.FileBytes)}): no drain, no FIN; its buddy holds the connection's replicated state");
                return new DemoCrash(victim, at, relay.Id);
            }

            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }

        Check(false, string.Create(CultureInfo.InvariantCulture, $"the download ended before the crash at {options.CrashAt:P0} of the file (mtcp.demo.crash-at)"));
        return null;
    }

    /// <summary>
    /// The failover as the processes logged it, in seconds after the SIGKILL: the survivor that saw the node unreachable,
    /// the agent's own detection if it came first, the relay's switch (the client received nothing between the kill and
    /// it), and the node that took the connection over. A failed check when no node took it over.
    /// </summary>
    private void ReportFailover(DemoCrash crash, ChildProcess[] nodes, IPAddress[] servers, ChildProcess agent)
    {
        var victimService = Service(servers[crash.Victim]);
        OutputLine? After(ChildProcess process, string text) => process.Lines.FirstOrDefault(line => line.At >= crash.At && line.Text.Contains(text, StringComparison.Ordinal));
        string Since(OutputLine line) => string.Create(CultureInfo.InvariantCulture, $"+{(line.At - crash.At).TotalSeconds:0.00} s");

        Console.WriteLine();
        Console.WriteLine($"failover after the crash of server{crash.Victim + 1} at {crash.At.TotalSeconds:0.0} s (times after the SIGKILL, from the processes' logs)");
        var events = new List<(OutputLine Line, string Text)>();
        var tookOver = false;
        for (var i = 0; i < nodes.Length; i++)
        {
            if (i == crash.Victim)
            {
                continue;
            }

            if (After(nodes[i], ": taking over its") is { } detected)
            {
                events.Add((detected, $"server{i + 1} detected it: {Message(detected.Text)}"));
            }

            if (After(nodes[i], "took over") is { } took)
            {
                events.Add((took, $"server{i + 1} took the connection over: {Message(took.Text)}"));
                tookOver = true;
            }
        }

        if (After(agent, $"server {victimService} fell silent") is { } silent)
        {
            events.Add((silent, $"the agent found the server silent first: {Message(silent.Text)}"));
        }

        var switched = After(agent, $"relay {crash.Relay}: migrated {victimService} -> ");
        if (switched is not null)
        {
            events.Add((switched, string.Create(CultureInfo.InvariantCulture, $"the agent's relay moved to the buddy: the client waited {(switched.At - crash.At).TotalSeconds:0.00} s for its next byte: {Message(switched.Text)}")));
        }

        foreach (var (line, text) in events.OrderBy(e => e.Line.At))
        {
            Console.WriteLine($"  {Since(line),8}  {text}");
        }

        Check(tookOver && switched is not null, $"the failover did not happen: {(tookOver ? "" : "no node logged that it took the connection over; ")}{(switched is null ? $"the agent's relay {crash.Relay} never left {victimService}" : "")}");
    }

    /// <summary>A log line without its logger's prefix: Akka's bracketed level, time, thread and actor, or the console's time and level.</summary>
    private static string Message(string line) =>
        line.StartsWith('[') && line.LastIndexOf("] ", StringComparison.Ordinal) is var end and > 0 ? line[(end + 2)..] : ConsolePrefix().Replace(line, "");

    private async Task StopNodeAsync(ChildProcess[] nodes, IPAddress[] servers, int victim, List<int> live)
    {
        var since = _clock.Elapsed;
        Say($"stopping server{victim + 1} ({servers[victim]}), which is not serving the download: SIGTERM");
        nodes[victim].Terminate();
        var exit = await nodes[victim].WaitForExitAsync(ViewTimeout).ConfigureAwait(false);
        Check(exit == 0, $"server{victim + 1} exited with {exit?.ToString(CultureInfo.InvariantCulture) ?? "no exit within 30 s"} after SIGTERM");
        Say($"server{victim + 1} left the cluster and exited with {exit?.ToString(CultureInfo.InvariantCulture) ?? "(still running)"}");
        foreach (var i in live.Where(i => !nodes[i].HasExited).ToArray())
        {
            try
            {
                // Any view without the stopped node: the crash of another node may have shrunk it further meanwhile.
                var view = await nodes[i].WaitForLineAsync(
                    "cluster view: ", ViewTimeout, since, text => !text.Contains(Service(servers[victim]), StringComparison.Ordinal)).ConfigureAwait(false);
                Say($"server{i + 1} follows: {view.Text[(view.Text.IndexOf("cluster view", StringComparison.Ordinal))..]}");
            }
            catch (DemoFailedException e)
            {
                Check(false, $"server{i + 1} still lists {servers[victim]}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// The load-balancing act (thesis 6.2.3, push): the companion downloads all reach the agent's first service endpoint,
    /// server1, whose load then exceeds its idle peers' by the threshold; its policy asks some of their clients to
    /// migrate (MIGRATE_TRIGGER). Returns the companions' relays as the agent recorded them once all have closed; a
    /// failed check when a download failed or no server moved any.
    /// </summary>
    private async Task<IReadOnlyList<AgentRelay>> BalanceLoadAsync(AgentControl agent, IPEndPoint listen, IPAddress[] servers, CancellationToken cancellationToken)
    {
        var balancing = options.LoadBalancing;
        var expected = GenerateFile(Path.Combine(_files, CompanionFileName), balancing.CompanionBytes, options.Seed + 1);
        Say($"load balancing: every node runs mtcp.hosts.server.policy = load-balancing (imbalance-threshold {DemoLoadBalancing.ImbalanceThreshold} connections, evaluated every 500 ms); "
            + $"{balancing.Companions} downloads of {CompanionFileName} ({Megabytes(balancing.CompanionBytes)} at {Megabytes(balancing.CompanionRate)}/s each) through the agent all reach server1 ({servers[0]}), its first service endpoint");
        // A second round when the first moved none: on a busy machine the nodes' load reports and evaluations may not
        // fit in one round of companions.
        var status = await agent.StatusAsync(cancellationToken).ConfigureAwait(false);
        var pushed = 0;
        for (var round = 1; round <= 2 && pushed == 0; round++)
        {
            if (round > 1)
            {
                Say("load balancing: the nodes moved none of the companions; once more");
            }

            var downloads = Enumerable.Range(1, balancing.Companions).Select(i =>
            {
                var output = Path.Combine(_scratch.FullName, $"companion-{round}-{i}.bin");
                var curl = ChildProcess.Start($"curl-{round}-{i}", "curl", dll: null, ["-sS", "--globoff", "--fail", "--max-time", "90", "--limit-rate", balancing.CompanionRate.ToString(CultureInfo.InvariantCulture), "-o", output, $"http://{listen}/{CompanionFileName}"], _scratch.FullName, _clock, _ => true);
                _children.Add(curl);
                return (Output: output, Curl: curl);
            }).ToList();

            foreach (var (output, curl) in downloads)
            {
                var exit = await curl.WaitForExitAsync(TimeSpan.FromSeconds(100)).ConfigureAwait(false);
                Check(exit == 0, $"companion download {curl.Name} exited with {exit?.ToString(CultureInfo.InvariantCulture) ?? "no exit within 100 s"}");
                var actual = File.Exists(output) ? await Sha256Async(output, cancellationToken).ConfigureAwait(false) : "(no file)";
                Check(actual == expected, $"companion download {curl.Name}: SHA-256 {actual}, generated {expected}");
            }

            // The agent records a relay once both sides have closed: wait for every companion's, so that the download
            // that follows is the only relay open.
            var deadline = Stopwatch.StartNew();
            status = await agent.StatusAsync(cancellationToken).ConfigureAwait(false);
            while ((status.Connections.Count > 0 || status.RecentlyClosed.Count < round * balancing.Companions) && deadline.Elapsed < ViewTimeout)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                status = await agent.StatusAsync(cancellationToken).ConfigureAwait(false);
            }

            if (status.Connections.Count > 0)
            {
                Say($"load balancing: {status.Connections.Count} companion relay(s) still open {ViewTimeout.TotalSeconds:0} s after their downloads ended: "
                    + string.Join(", ", status.Connections.Select(relay => $"relay {relay.Id} on {relay.Service}, {Megabytes(relay.BytesFromService)} from it, {relay.Migrations.Count} migrations")));
            }

            pushed = status.RecentlyClosed.Sum(relay => relay.Migrations.Count(m => m.Completed && m.Cause == "server"));
        }

        Say($"load balancing: the companion downloads verified (SHA-256); the nodes moved {pushed} of them (server-triggered migrations)");
        Check(pushed >= 1, $"no server-triggered migration: server1 held {balancing.Companions} connections and pushed none to its idle peers");
        return status.RecentlyClosed;
    }

    /// <summary>The download's relay among <paramref name="relays"/>, if there.</summary>
    private AgentRelay? Download(IEnumerable<AgentRelay> relays) => relays.FirstOrDefault(relay => relay.Id > _lastRelayBeforeDownload);

    private async Task<AgentRelay?> FinalRelayAsync(AgentControl agent, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            var status = await agent.StatusAsync(cancellationToken).ConfigureAwait(false);
            if (Download(status.RecentlyClosed) is { } relay)
            {
                return relay;
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        Check(false, "the agent never reported the relay closed");
        return null;
    }

    /// <summary>
    /// Which node served which bytes of the HTTP response (as the agent received them: a migration's boundary is the
    /// agent's byte count when the switch completed), each migration's client wait and the state the destination
    /// received, from the agent's status and the destination's log.
    /// </summary>
    private void PrintTimeline(AgentRelay? relay, IReadOnlyList<AgentRelay> balanced, ChildProcess[] nodes, IPAddress[] servers, DemoCrash? crash)
    {
        if (balanced.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("load balancing (server-triggered migrations of the companion downloads, from the agent's status)");
            foreach (var companion in balanced)
            {
                var moves = companion.Migrations.Where(m => m.Completed).ToList();
                Console.WriteLine(moves.Count == 0
                    ? $"  relay {companion.Id} (cid {companion.Cid}) stayed on {companion.Service}"
                    : string.Join('\n', moves.Select(m => $"  relay {companion.Id} (cid {companion.Cid}) at {m.At:HH:mm:ss.fff} by {m.Cause} ({m.Reason}): {m.From} -> {m.To}, client wait {m.DurationMs:0.0} ms")));
            }
        }

        Console.WriteLine();
        Console.WriteLine("timeline (bytes of the HTTP response as the agent received them)");
        if (relay is null)
        {
            return;
        }

        // Each destination logs every connection that migrated in, named by its first Cid, with the hop, in order.
        var arrivals = nodes.Select(node => new Queue<Match>(node.Lines.Select(line => ArrivalLine().Match(line.Text)).Where(match => match.Success && match.Groups["cid"].Value == relay.Cid))).ToArray();
        var from = 0L;
        var serving = relay.Migrations.FirstOrDefault()?.From ?? relay.Service;
        var index = 0;
        foreach (var migration in relay.Migrations)
        {
            index++;
            if (!migration.Completed)
            {
                Console.WriteLine($"    migration {index} by {migration.Cause} ({migration.Reason}): {migration.From} -> {migration.To} failed after {migration.DurationMs:0.0} ms ({migration.FailureReason}); stayed on {migration.From}");
                continue;
            }

            Console.WriteLine($"  {Megabytes(from),8} - {Megabytes(migration.AtByteFromService),-9} {serving}");
            var destination = ServerIndex(servers, migration.To);
            var takeover = crash is not null && migration.Cause is "server" or "failover" && ServerIndex(servers, migration.From) == crash.Victim;
            var arrival = destination >= 0 && arrivals[destination].TryDequeue(out var line) ? line : null;
            var state = arrival is null
                ? "arrival not logged"
                : (takeover ? $"state from its replica (the origin was killed): {arrival.Groups["reply"].Value} bytes" : $"state reply {arrival.Groups["reply"].Value} bytes after {arrival.Groups["ms"].Value} ms")
                    + $", application snapshot {arrival.Groups["snapshot"].Value} bytes";
            Console.WriteLine($"    migration {index} at {migration.At:HH:mm:ss.fff} by {migration.Cause} ({migration.Reason}): {migration.From} -> {migration.To}, client wait {migration.DurationMs:0.0} ms, {state}");
            from = migration.AtByteFromService;
            serving = migration.To;
        }

        Console.WriteLine($"  {Megabytes(from),8} - {Megabytes(relay.BytesFromService),-9} {serving}");
        foreach (var (at, text) in _events.Where(e => e.Text.Contains("stopping", StringComparison.Ordinal) || e.Text.Contains("follows", StringComparison.Ordinal) || e.Text.StartsWith("crash:", StringComparison.Ordinal) || e.Text.StartsWith("before the crash:", StringComparison.Ordinal)))
        {
            Console.WriteLine($"  at {at.TotalSeconds,5:0.0} s: {text}");
        }
    }

    /// <summary>A node's file service as the agent and the nodes write it: <c>address:port</c>, an IPv6 address in brackets.</summary>
    private static string Service(IPAddress server) => new IPEndPoint(server, FilePort).ToString();

    /// <summary>Which of <paramref name="servers"/> an endpoint the agent reported names; -1 for none.</summary>
    private static int ServerIndex(IPAddress[] servers, string endpoint) =>
        IPEndPoint.TryParse(endpoint, out var parsed) ? Array.IndexOf(servers, parsed.Address) : -1;

    private static string Megabytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.00} MiB");

    /// <summary>
    /// A server node at <paramref name="control"/>'s address: the file server on <see cref="FilePort"/> over the demo's
    /// files, the cluster's migration key, a certificate of the demo's CA, joining through <paramref name="seed"/>
    /// (itself: a cluster of its own), with <paramref name="extra"/> HOCON over that.
    /// </summary>
    private ChildProcess StartNode(string name, IPEndPoint control, IPEndPoint seed, string extra)
    {
        var certificate = ClusterCertificates.IssueNode(_certificates, name, [control.Address.ToString()], _certificates, TimeSpan.FromDays(1));
        var config = WriteConfig($"{name}.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{control.Address}}", port = {{control.Port}} }
            akka.cluster.seed-nodes = ["akka.ssl.tcp://mtcp@{{seed}}"]
            {{ClusterCertificates.SecurityConfig(_certificates, certificate)}}
            akka.loglevel = WARNING
            {{options.RuntimeConfig(control.Address.ToString())}}
            mtcp.hosts.server.file { enabled = on, port = {{FilePort}}, root = "{{_files}}" }
            mtcp.hosts.server.request.enabled = off
            mtcp.migration.cluster-key = "{{_migrationKey}}"
            {{extra}}
            """);
        return Start(name, "Mtcp.Server", ["--config", config]);
    }

    private ChildProcess Start(string name, string project, IEnumerable<string> arguments)
    {
        var child = ChildProcess.Start(name, "dotnet", HostDll(project), arguments, _scratch.FullName, _clock, IsWorthShowing);
        _children.Add(child);
        return child;
    }

    private static bool IsWorthShowing(string line) =>
        !line.Contains(" akka: [", StringComparison.Ordinal)
        && (line.Contains("transport:", StringComparison.Ordinal) || line.Contains("migration", StringComparison.Ordinal) || line.Contains("policy", StringComparison.Ordinal)
            || line.Contains("WARN", StringComparison.Ordinal)
            || line.Contains("ERROR", StringComparison.Ordinal) || line.Contains("left the cluster", StringComparison.Ordinal) || line.Contains("shutdown requested", StringComparison.Ordinal));

    private void Say(string text)
    {
        lock (_events)
        {
            _events.Add((_clock.Elapsed, text));
        }

        Console.WriteLine($"{_clock.Elapsed.TotalSeconds,6:0.0} s  {text}");
    }

    private void Check(bool condition, string failure)
    {
        if (!condition)
        {
            lock (_failures)
            {
                _failures.Add(failure);
            }

            Say($"CHECK FAILED: {failure}");
        }
    }

    private string WriteConfig(string name, string hocon)
    {
        var path = Path.Combine(_scratch.FullName, name);

        // The cluster key is a secret: readable by this user only.
        File.WriteAllText(path, hocon);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }

    private static string GenerateFile(string path, long length, int seed)
    {
        var random = new Random(seed);
        var buffer = new byte[1 << 20];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var file = File.Create(path);
        for (long written = 0; written < length; written += buffer.Length)
        {
            var count = (int)Math.Min(buffer.Length, length - written);
            random.NextBytes(buffer.AsSpan(0, count));
            hash.AppendData(buffer, 0, count);
            file.Write(buffer, 0, count);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async Task<string> Sha256Async(string path, CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>The host's build output beside this one: Hosts/&lt;project&gt;/bin/&lt;configuration&gt;/&lt;tfm&gt;/.</summary>
    private static string HostDll(string project)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var hosts = output.Parent!.Parent!.Parent!.Parent!;
        var dll = Path.Combine(hosts.FullName, project, "bin", output.Parent.Name, output.Name, $"{project}.dll");
        return File.Exists(dll) ? dll : throw new DemoFailedException($"{dll} is missing: build with dotnet run --project Hosts/Mtcp.Demo");
    }

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3} [A-Z]+ +")]
    private static partial Regex ConsolePrefix();

    [GeneratedRegex(@"migration in: cid (?<cid>\S+), .* resumes from a (?<snapshot>\d+)-byte application snapshot; state reply (?<reply>\d+) bytes, (?<ms>[\d.]+) ms")]
    private static partial Regex ArrivalLine();
}

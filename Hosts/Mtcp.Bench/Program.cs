using System.CommandLine;
using Mtcp.Bench;

var bytes = new Option<long>("--bytes")
{
    Description = "bytes moved over the connection in each run",
    DefaultValueFactory = _ => 1L << 30,
};
var runs = new Option<int>("--runs")
{
    Description = "runs per transport; the median is reported",
    DefaultValueFactory = _ => 5,
};
var transports = new Option<string[]>("--transports")
{
    Description = "MTCP transports to measure (memory, udp, raw, and over IPv6 raw-ipv6, udp-ipv6); raw is skipped without CAP_NET_RAW, the IPv6 ones without root",
    DefaultValueFactory = _ => ["memory", "udp", "raw", "raw-ipv6", "udp-ipv6"],
    AllowMultipleArgumentsPerToken = true,
};

var throughput = new Command("throughput", "bulk transfer over one connection on loopback, per MTCP transport and over kernel TCP in the same run")
{
    bytes,
    runs,
    transports,
};
throughput.SetAction(async (parse, cancellationToken) =>
{
    var options = new ThroughputOptions(parse.GetValue(bytes), parse.GetValue(runs), parse.GetValue(transports) ?? []);
    return await ThroughputBenchmark.RunAsync(options, cancellationToken);
});

var migrations = new Option<int>("--migrations")
{
    Description = "measured migrations per state size (after 30 unmeasured ones)",
    DefaultValueFactory = _ => 200,
};
var stateSizes = new Option<int[]>("--state-sizes")
{
    Description = "application state sizes in bytes (thesis fig. 5.2: 0, 5 KB, 10 KB, 16 KB, 64 KB)",
    DefaultValueFactory = _ => [0, 5 * 1024, 10 * 1024, 16 * 1024, 64 * 1024],
    AllowMultipleArgumentsPerToken = true,
};
var warmUp = new Option<double>("--warm-up")
{
    Description = "seconds of unmeasured migrations, handshakes and control round trips before measuring (lets tiered JIT finish)",
    DefaultValueFactory = _ => 10,
};
var migrationTransport = new Option<string>("--transport")
{
    Description = "the MTCP transport of every node (memory, udp, raw)",
    DefaultValueFactory = _ => "memory",
};

var migration = new Command("migration", "thesis fig. 5.2: migration latency per application state size, beside a fresh handshake and a control round trip")
{
    migrations,
    stateSizes,
    migrationTransport,
    warmUp,
};
migration.SetAction(async (parse, cancellationToken) =>
{
    var options = new MigrationOptions(parse.GetValue(migrations), parse.GetValue(stateSizes) ?? [], parse.GetValue(migrationTransport) ?? "memory", TimeSpan.FromSeconds(parse.GetValue(warmUp)));
    return await MigrationBenchmark.RunAsync(options, cancellationToken);
});

var stream = StreamCommand.Create();

var lossBytes = new Option<long?>("--bytes")
{
    Description = "bytes moved over the connection in each run (default 8 MB; 2 MB with --quick)",
};
var lossRuns = new Option<int>("--runs")
{
    Description = "runs per loss rate and per stack, interleaved; the median is reported",
    DefaultValueFactory = _ => 3,
};
var lossRates = new Option<double[]>("--loss")
{
    Description = "loss rates in percent, each applied in both directions",
    DefaultValueFactory = _ => [0, 0.5, 1, 2, 5],
    AllowMultipleArgumentsPerToken = true,
};
var quick = new Option<bool>("--quick")
{
    Description = "2 MB per run instead of 8 MB: the whole benchmark in a few minutes",
};
var lossNodeConfig = new Option<string?>("--node-config")
{
    Description = "HOCON laid over the reference settings of both MTCP nodes, e.g. \"mtcp.runtime.receive-burst = 1\" (one actor message per segment)",
};
var loss = new Command("loss", "goodput of one connection under random loss in both directions (network namespaces, nftables), MTCP against kernel TCP in the same run; needs root")
{
    lossBytes,
    lossRuns,
    lossRates,
    quick,
    lossNodeConfig,
};
loss.SetAction(async (parse, cancellationToken) =>
{
    var bytesPerRun = parse.GetValue(lossBytes) ?? (parse.GetValue(quick) ? 2_000_000 : 8_000_000);
    return await LossBenchmark.RunAsync(new LossOptions(bytesPerRun, parse.GetValue(lossRuns), parse.GetValue(lossRates) ?? [], parse.GetValue(lossNodeConfig)), cancellationToken);
});

var root = new RootCommand("MTCP benchmarks; each writes artifacts/bench/<name>.md and .json") { throughput, migration, stream, loss, FailoverCommand.Create() };
foreach (var command in ScaleCommand.Create())
{
    root.Subcommands.Add(command);
}

return await root.Parse(args).InvokeAsync();

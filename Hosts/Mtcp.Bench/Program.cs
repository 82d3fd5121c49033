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
    Description = "MTCP transports to measure (memory, udp, raw); raw is skipped without CAP_NET_RAW",
    DefaultValueFactory = _ => ["memory", "udp", "raw"],
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

var stream = StreamCommand.Create();

var root = new RootCommand("MTCP benchmarks; each writes artifacts/bench/<name>.md and .json") { throughput, stream };
return await root.Parse(args).InvokeAsync();

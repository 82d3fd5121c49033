using System.CommandLine;
using Akka.Configuration;
using Mtcp.Wire;

namespace Mtcp.Bench;

/// <summary>The <c>scale</c> command (<see cref="ScaleBenchmark"/>) and the hidden <c>scale-client</c> it runs as its client process (<see cref="ScaleClient"/>).</summary>
internal static class ScaleCommand
{
    public static IEnumerable<Command> Create()
    {
        var max = new Option<int>("--max")
        {
            Description = "the largest N; N runs 1000, 10000 and this, as far as they do not exceed it",
            DefaultValueFactory = _ => 50_000,
        };
        var sizes = new Option<string>("--sizes")
        {
            Description = "the N to run, comma-separated (e.g. 50000), in place of 1000, 10000 and --max",
        };
        var duration = new Option<string>("--duration")
        {
            Description = "how long the connections migrate, as a HOCON duration (60s, 2m)",
            DefaultValueFactory = _ => "60s",
        };
        var inFlight = new Option<int>("--in-flight")
        {
            Description = "migrations under way at a time",
            DefaultValueFactory = _ => 64,
        };
        var openConcurrency = new Option<int>("--open-concurrency")
        {
            Description = "handshakes under way at a time while the connections open (the accept backlog is mtcp.runtime.accept-backlog)",
            DefaultValueFactory = _ => 64,
        };
        var echoBytes = new Option<int>("--echo-bytes")
        {
            Description = "bytes echoed through each connection before the migrations",
            DefaultValueFactory = _ => 64 * 1024,
        };
        var network = new Option<string>("--network")
        {
            Description = "three octets of a loopback network: the nodes take .2 and .3, the client .10 and up (one address per 12,000 connections)",
            DefaultValueFactory = _ => "127.0.0",
        };
        var serverConfig = new Option<string>("--server-config")
        {
            Description = "HOCON appended to each server node's configuration, to compare a setting against the shipped one (e.g. \"mtcp.control.silent-origin-takeover = off\")",
            DefaultValueFactory = _ => "",
        };
        var scale = new Command("scale", "N connections to two server processes: memory per connection, idle CPU, migrations/s back and forth, every byte checked (issue 13)")
        {
            max,
            sizes,
            duration,
            inFlight,
            openConcurrency,
            echoBytes,
            network,
            serverConfig,
        };
        scale.SetAction(async (parse, cancellationToken) =>
        {
            int[] ns = parse.GetValue(sizes) is { } list
                ? [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(n => int.Parse(n, System.Globalization.CultureInfo.InvariantCulture))]
                : [.. new[] { 1_000, 10_000, parse.GetValue(max) }.Where(n => n <= parse.GetValue(max))];
            var options = new ScaleOptions([.. ns.Distinct().Order()], Duration(parse.GetValue(duration) ?? ""), parse.GetValue(inFlight), parse.GetValue(openConcurrency), parse.GetValue(echoBytes), parse.GetValue(network) ?? "127.0.0", parse.GetValue(serverConfig) ?? "");
            return await ScaleBenchmark.RunAsync(options, cancellationToken);
        });

        var transport = new Option<string>("--transport") { Description = "raw or udp", Required = true };
        var addresses = new Option<string>("--addresses") { Description = "local addresses, comma-separated: one runtime each", Required = true };
        var services = new Option<string>("--services") { Description = "the two service endpoints address:port, comma-separated; connections open to the first", Required = true };
        var client = new Command("scale-client", "the client process of the scale benchmark, driven over standard input")
        {
            Hidden = true,
        };
        client.Options.Add(transport);
        client.Options.Add(addresses);
        client.Options.Add(services);
        client.SetAction(async (parse, cancellationToken) =>
        {
            var options = new ScaleClientOptions(
                parse.GetValue(transport)!,
                parse.GetValue(addresses)!.Split(',', StringSplitOptions.RemoveEmptyEntries),
                [.. parse.GetValue(services)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Endpoint)]);
            return await ScaleClient.RunAsync(options, cancellationToken);
        });
        return [scale, client];
    }

    private static ServerEndpoint Endpoint(string text)
    {
        var colon = text.LastIndexOf(':');
        return new ServerEndpoint(IpAddress.Parse(text[..colon]), ushort.Parse(text[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static TimeSpan Duration(string text) => ConfigurationFactory.ParseString($"duration = {text}").GetTimeSpan("duration");
}

using System.CommandLine;

namespace Mtcp.Bench;

/// <summary>The <c>failover</c> command (<see cref="FailoverBenchmark"/>).</summary>
internal static class FailoverCommand
{
    public static Command Create()
    {
        var kills = new Option<int>("--kills")
        {
            Description = "SIGKILLs of the serving node with buddy replication and the reference failure detector; 0 (with --fast-kills 0 --client-kills 0) measures only the cost of replication",
            DefaultValueFactory = _ => 20,
        };
        var fastKills = new Option<int>("--fast-kills")
        {
            Description = "SIGKILLs with the fast failure detector (heartbeats every 100 ms, 200 ms pause); 0 skips them",
            DefaultValueFactory = _ => 5,
        };
        var clientKills = new Option<int>("--client-kills")
        {
            Description = "SIGKILLs with client-stored state (mtcp.migration.replication = client) and the reference failure detector; 0 skips them",
            DefaultValueFactory = _ => 20,
        };
        var fileSize = new Option<long>("--file-size")
        {
            Description = "bytes of each download a kill falls into",
            DefaultValueFactory = _ => 16L << 20,
        };
        var rate = new Option<long>("--rate")
        {
            Description = "the file server's pace in bytes per second while kills fall, so that a download surely runs at the kill",
            DefaultValueFactory = _ => 4L << 20,
        };
        var killAt = new Option<long>("--kill-at")
        {
            Description = "bytes of the file the client has received when its node is killed",
            DefaultValueFactory = _ => 4L << 20,
        };
        var goodputSize = new Option<long>("--goodput-size")
        {
            Description = "bytes of each download measuring goodput, buddy and client against off",
            DefaultValueFactory = _ => 64L << 20,
        };
        var echoSize = new Option<long>("--echo-size")
        {
            Description = "bytes uploaded (RESP ECHO) in each upload measurement, buddy and client against off",
            DefaultValueFactory = _ => 32L << 20,
        };
        var requests = new Option<int>("--requests")
        {
            Description = "PING round trips per repetition, buddy and client against off",
            DefaultValueFactory = _ => 2000,
        };
        var repetitions = new Option<int>("--repetitions")
        {
            Description = "repetitions of the cost measurements; medians are reported",
            DefaultValueFactory = _ => 3,
        };
        var network = new Option<string>("--network")
        {
            Description = "three octets of a loopback network: the nodes take .2 to .7, the client .10, the control round trip's two actor systems .11",
            DefaultValueFactory = _ => "127.0.11",
        };
        var costConfig = new Option<string>("--cost-config")
        {
            Description = "HOCON laid over the reference configuration of every node of the cost measurement's clusters, e.g. \"mtcp.migration.buddy-state { min-progress = 0, progress-per-state-byte = 0, max-progress = 0 }\" to send every snapshot to the buddy",
            DefaultValueFactory = _ => "",
        };
        var clientConfig = new Option<string>("--client-config")
        {
            Description = "HOCON laid over the benchmark's client runtime (every mode alike), e.g. \"mtcp.tcp.nagle = off\" for a client that sets no-delay, as request/response clients do, or \"mtcp.tcp.send-buffer-size = 1MiB\"",
            DefaultValueFactory = _ => "",
        };
        var command = new Command("failover", "SIGKILL of the serving node under a download: time to the next new byte, bytes lost and duplicated; the cost of buddy replication and of client-stored state against none (issue 11)")
        {
            kills,
            fastKills,
            clientKills,
            fileSize,
            rate,
            killAt,
            goodputSize,
            echoSize,
            requests,
            repetitions,
            network,
            costConfig,
            clientConfig,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new FailoverOptions(
                parse.GetValue(kills),
                parse.GetValue(fastKills),
                parse.GetValue(clientKills),
                parse.GetValue(fileSize),
                parse.GetValue(rate),
                parse.GetValue(killAt),
                parse.GetValue(goodputSize),
                parse.GetValue(echoSize),
                parse.GetValue(requests),
                parse.GetValue(repetitions),
                parse.GetValue(network) ?? "127.0.11",
                parse.GetValue(costConfig) ?? "",
                parse.GetValue(clientConfig) ?? "");
            return await FailoverBenchmark.RunAsync(options, cancellationToken);
        });
        return command;
    }
}

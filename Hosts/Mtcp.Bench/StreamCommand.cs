using System.CommandLine;

namespace Mtcp.Bench;

/// <summary>The <c>stream</c> command: the stream-server experiment of thesis 5.3.2 (<see cref="StreamBenchmark"/>).</summary>
internal static class StreamCommand
{
    public static Command Create()
    {
        var bytes = new Option<long?>("--bytes")
        {
            Description = "length of the long stream in bytes (default: mtcp.bench.stream.profiles.long.stream-length, 64 MiB); the 256 KB stream of the thesis always runs",
        };
        var transport = new Option<string?>("--transport")
        {
            Description = "MTCP transport: memory, udp or raw (default: mtcp.bench.stream.transport)",
        };
        var command = new Command("stream", "the stream-server experiment (thesis 5.3.2, fig. 5.4): degrading servers, no migration vs the throughput policy at several state sizes")
        {
            bytes,
            transport,
        };
        command.SetAction(async (parse, cancellationToken) =>
            await StreamBenchmark.RunAsync(new StreamOptions(parse.GetValue(bytes), parse.GetValue(transport)), cancellationToken));
        return command;
    }
}

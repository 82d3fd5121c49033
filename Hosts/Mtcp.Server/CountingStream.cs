using System.Diagnostics.Metrics;
using Mtcp.Actors.Api;

namespace Mtcp.Server;

/// <summary>Passes reads and writes to a connection's stream and counts their bytes on the node's meter (<see cref="ServerMetrics.Io"/>).</summary>
internal sealed class CountingStream(Stream inner, Counter<long> io, KeyValuePair<string, object?> application) : PassThroughStream(inner)
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        io.Add(read, application, ServerMetrics.Receive);
        return read;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        io.Add(buffer.Length, application, ServerMetrics.Transmit);
    }
}

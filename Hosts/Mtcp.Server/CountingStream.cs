using System.Diagnostics.Metrics;
using Mtcp.Actors.Api;

namespace Mtcp.Server;

/// <summary>Passes reads and writes to a connection's stream and counts their bytes on the node's meter.</summary>
internal sealed class CountingStream(Stream inner, Counter<long> received, Counter<long> sent, KeyValuePair<string, object?> application) : PassThroughStream(inner)
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        received.Add(read, application);
        return read;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        sent.Add(buffer.Length, application);
    }
}

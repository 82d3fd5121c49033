using System.Buffers.Binary;

namespace Mtcp.Apps;

/// <summary>
/// How the stream server degrades (thesis 5.3.2): after <see cref="DegradeAfterChunks"/> chunks of one visit, each
/// further chunk waits <see cref="DelayStep"/> longer than the one before, up to <see cref="MaxDelay"/>.
/// </summary>
public sealed record StreamServerOptions(long StreamLength, int ChunkSize, int DegradeAfterChunks, TimeSpan DelayStep, TimeSpan MaxDelay)
{
    /// <summary>The delay before the <paramref name="chunksThisVisit"/>-th chunk (0-based) served on this server.</summary>
    public TimeSpan DelayBefore(long chunksThisVisit) => new SteppedDelay(DegradeAfterChunks, DelayStep, MaxDelay).Before(chunksThisVisit);
}

/// <summary>
/// The stream server of thesis 5.3.2: after the client's request line it pushes <see cref="StreamServerOptions.StreamLength"/>
/// bytes in chunks, taking a snapshot (the number of the next chunk) after each one. The server degrades the longer
/// one server serves the connection, which is what makes a throughput-triggered client move; a migrated connection
/// starts its visit on the new server undegraded. Byte <c>i</c> of the stream is <see cref="ByteAt"/>(i), so a client
/// can check every byte wherever it came from.
/// </summary>
public sealed class StreamServer(StreamServerOptions options, TimeProvider timeProvider) : IServerApplication
{
    /// <summary>Snapshot layout: the number of the next chunk to write, big-endian.</summary>
    public const int SnapshotLength = sizeof(long);

    public string Name => "stream";

    public static byte ByteAt(long offset) => (byte)(offset % 251);

    public async Task ServeAsync(Stream connection, IConnectionState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(state);
        var snapshot = new byte[SnapshotLength];
        long chunk;
        var imported = state.Import();
        if (imported.Kind is ConnectionKind.New)
        {
            var reader = new ProtocolReader(connection, maxLineLength: 1024);
            if (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is null)
            {
                return;
            }

            chunk = 0;
            BinaryPrimitives.WriteInt64BigEndian(snapshot, chunk);
            state.Export(snapshot);
        }
        else
        {
            chunk = BinaryPrimitives.ReadInt64BigEndian(imported.Snapshot.Span);
        }

        var buffer = new byte[options.ChunkSize];
        for (long visit = 0; chunk * options.ChunkSize < options.StreamLength; chunk++, visit++)
        {
            var delay = options.DelayBefore(visit);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, timeProvider, cancellationToken).ConfigureAwait(false);
            }

            var offset = chunk * options.ChunkSize;
            var length = (int)Math.Min(options.ChunkSize, options.StreamLength - offset);
            for (var i = 0; i < length; i++)
            {
                buffer[i] = ByteAt(offset + i);
            }

            await connection.WriteAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            BinaryPrimitives.WriteInt64BigEndian(snapshot, chunk + 1);
            state.Export(snapshot);
        }
    }
}

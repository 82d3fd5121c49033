using System.Buffers.Binary;
using System.Security.Cryptography;
using Mtcp.Actors.Api;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// The server applications of the multi-node tests, written against the MTCP contract (thesis 3.3.2): each exports
/// its state after every unit of work and resumes from an imported state. The client's first 9 bytes choose the
/// application: 'D' and a length (the stream server of thesis ch. 5: the state is the offset written), or 'U' and
/// a length (request/response: 64 KB requests, each answered with SHA-256(previous answer || request); the state is
/// the count and the last answer), or 'L' and a length (the download with 1 MB of application state: the offset
/// followed by filler that is a function of the offset, see <see cref="LargeState"/>), or one of the property
/// services of ReferenceApps.Property.cs.
/// </summary>
internal static partial class ReferenceApps
{
    public const byte Download = (byte)'D';
    public const byte Upload = (byte)'U';
    public const byte LargeStateDownload = (byte)'L';
    public const int CommandLength = 9;
    public const int ChunkLength = 64 * 1024;
    public const int RequestLength = 64 * 1024;
    public const int DigestLength = 32;
    public const ulong DownloadKey = 11;
    public const ulong UploadKey = 12;
    public const ulong LargeStateKey = 13;

    /// <summary>Bytes of the large-state download's application state: 1 MB.</summary>
    public const int LargeStateLength = 1 << 20;

    private const int StateLength = 1 + 8 + 8 + DigestLength;

    public static async Task AcceptLoopAsync(MtcpListener listener, ServerNode node, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            MtcpConnection connection;
            try
            {
                connection = await listener.AcceptAsync(stopping);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }

            node.Accepted?.Invoke(node, connection);
            _ = Task.Run(() => ServeAsync(connection, node), CancellationToken.None);
        }
    }

    public static byte[] Command(byte kind, long length)
    {
        var command = new byte[CommandLength];
        command[0] = kind;
        BinaryPrimitives.WriteInt64BigEndian(command.AsSpan(1), length);
        return command;
    }

    public static byte[] NextDigest(ReadOnlySpan<byte> previous, ReadOnlySpan<byte> request)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(previous);
        hash.AppendData(request);
        return hash.GetHashAndReset();
    }

    private static async Task ServeAsync(MtcpConnection connection, ServerNode node)
    {
        try
        {
            var imported = connection.ImportState();
            var state = new byte[StateLength];
            if (imported.Origin == ConnectionOrigin.Migrated)
            {
                node.CountMigratedIn();
            }

            if (imported.AppState.Length == PropertyStateLength)
            {
                await ServePropertyServiceAsync(connection, node, imported.AppState.ToArray(), resumed: true);
                return;
            }

            if (imported.AppState.Length == LargeStateLength)
            {
                node.RecordLargeStateImport(imported.AppState.Span);
                await ServeLargeStateDownloadAsync(connection, imported.AppState.ToArray());
                await connection.DisposeAsync();
                return;
            }

            if (imported.AppState.Length == StateLength)
            {
                imported.AppState.Span.CopyTo(state);
            }
            else
            {
                // NEW, or migrated before the first export: the restart point is the start of the stream.
                await connection.Stream.ReadExactlyAsync(state.AsMemory(0, CommandLength));
                if (IsPropertyService(state[0]))
                {
                    var propertyState = new byte[PropertyStateLength];
                    state.AsSpan(0, CommandLength).CopyTo(propertyState);
                    await ServePropertyServiceAsync(connection, node, propertyState, resumed: false);
                    return;
                }

                connection.ExportState(state);
            }

            var total = BinaryPrimitives.ReadInt64BigEndian(state.AsSpan(1));
            if (state[0] == LargeStateDownload)
            {
                var large = LargeState(total, 0);
                connection.ExportState(large);
                await ServeLargeStateDownloadAsync(connection, large);
            }
            else if (state[0] == Download)
            {
                await ServeDownloadAsync(connection, state, total);
            }
            else
            {
                await ServeUploadAsync(connection, state, total);
            }

            await connection.DisposeAsync();
        }
        catch (ConnectionMigratedException)
        {
            node.CountMigratedAway();
        }
        catch (IOException)
        {
            // The client went away (a test that ended or failed); nothing to serve.
        }
    }

    private static async Task ServeDownloadAsync(MtcpConnection connection, byte[] state, long total)
    {
        var buffer = new byte[ChunkLength];
        var offset = BinaryPrimitives.ReadInt64BigEndian(state.AsSpan(9));
        while (offset < total)
        {
            var count = (int)Math.Min(buffer.Length, total - offset);
            StreamPattern.Fill(DownloadKey, offset, buffer.AsSpan(0, count));
            await connection.Stream.WriteAsync(buffer.AsMemory(0, count));
            offset += count;
            BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(9), offset);
            connection.ExportState(state);
        }
    }

    /// <summary>
    /// The large-state download's application state after <paramref name="offset"/> bytes of a
    /// <paramref name="total"/>-byte download: kind, total and offset (as the download's), then filler that is the
    /// stream pattern at the offset, so every export differs from the previous one in all of its bytes.
    /// </summary>
    public static byte[] LargeState(long total, long offset)
    {
        var state = new byte[LargeStateLength];
        state[0] = LargeStateDownload;
        BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(1), total);
        BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(9), offset);
        StreamPattern.Fill(LargeStateKey, offset, state.AsSpan(17));
        return state;
    }

    /// <summary>The download's offset recorded in a large state.</summary>
    public static long LargeStateOffset(ReadOnlySpan<byte> state) => BinaryPrimitives.ReadInt64BigEndian(state[9..]);

    private static async Task ServeLargeStateDownloadAsync(MtcpConnection connection, byte[] state)
    {
        var buffer = new byte[ChunkLength];
        var total = BinaryPrimitives.ReadInt64BigEndian(state.AsSpan(1));
        var offset = LargeStateOffset(state);
        while (offset < total)
        {
            var count = (int)Math.Min(buffer.Length, total - offset);
            StreamPattern.Fill(DownloadKey, offset, buffer.AsSpan(0, count));
            await connection.Stream.WriteAsync(buffer.AsMemory(0, count));
            offset += count;
            connection.ExportState(LargeState(total, offset));
        }
    }

    private static async Task ServeUploadAsync(MtcpConnection connection, byte[] state, long total)
    {
        var request = new byte[RequestLength];
        var served = BinaryPrimitives.ReadInt64BigEndian(state.AsSpan(9));
        var requests = total / RequestLength;
        while (served < requests)
        {
            await connection.Stream.ReadExactlyAsync(request);
            var digest = NextDigest(state.AsSpan(17, DigestLength), request);
            await connection.Stream.WriteAsync(digest);
            served++;
            BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(9), served);
            digest.CopyTo(state, 17);
            connection.ExportState(state);
        }
    }
}

using System.Buffers.Binary;
using Mtcp.Actors.Api;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// The services of the sans-IO migration property test (<see cref="ReferenceService"/>), served through the runtime:
/// the stream server of thesis ch. 5 ('S'), the file server of ch. 6 ('F') and the request/response server of fig. 3.5
/// ('R'), each exporting its state every k chunks or messages. The client's command names the service and its
/// parameters, since one listener serves every schedule: kind, session bytes, chunk or message size, k, and the key
/// of the stream (the file's name, the requests' pattern).
/// </summary>
internal static partial class ReferenceApps
{
    public const byte StreamService = (byte)'S';
    public const byte FileService = (byte)'F';
    public const byte RequestResponseService = (byte)'R';

    /// <summary>Kind, total, unit (chunk or message size), k, key.</summary>
    public const int PropertyCommandLength = 1 + 8 + 4 + 4 + 8;

    /// <summary>The command, then the progress (bytes sent, or messages answered) and the request/response digest.</summary>
    private const int PropertyStateLength = PropertyCommandLength + 8 + 8;

    public static byte[] PropertyCommand(byte kind, long total, int unit, int snapshotEvery, ulong key)
    {
        var command = new byte[PropertyCommandLength];
        command[0] = kind;
        BinaryPrimitives.WriteInt64BigEndian(command.AsSpan(1), total);
        BinaryPrimitives.WriteInt32BigEndian(command.AsSpan(9), unit);
        BinaryPrimitives.WriteInt32BigEndian(command.AsSpan(13), snapshotEvery);
        BinaryPrimitives.WriteUInt64BigEndian(command.AsSpan(17), key);
        return command;
    }

    private static bool IsPropertyService(byte kind) => kind is StreamService or FileService or RequestResponseService;

    /// <param name="state">the imported state (<paramref name="resumed"/>), or the command's first bytes, already read.</param>
    private static async Task ServePropertyServiceAsync(MtcpConnection connection, ServerNode node, byte[] state, bool resumed)
    {
        var kind = (char)state[0];
        try
        {
            if (!resumed)
            {
                await connection.Stream.ReadExactlyAsync(state.AsMemory(CommandLength, PropertyCommandLength - CommandLength));
                BinaryPrimitives.WriteUInt64BigEndian(state.AsSpan(PropertyCommandLength + 8), RequestResponseServerSession.DigestSeed);
                if (state[0] == FileService)
                {
                    // Thesis 6.2.1: the file server's first restart point is the request it has read.
                    connection.ExportState(state);
                }
            }

            if (state[0] == RequestResponseService)
            {
                await AnswerRequestsAsync(connection, state);
            }
            else
            {
                await SendStreamAsync(connection, state);
            }

            await connection.DisposeAsync();
        }
        catch (ConnectionMigratedException)
        {
            node.CountMigratedAway();
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            node.RecordApplicationFailure($"'{kind}' service to {connection.RemoteEndPoint}: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Stream and file: the bytes of the key's pattern up to the total, with an export after every k chunks.</summary>
    private static async Task SendStreamAsync(MtcpConnection connection, byte[] state)
    {
        var (total, unit, every, key) = PropertyParameters(state);
        var buffer = new byte[every * unit];
        var offset = BinaryPrimitives.ReadInt64BigEndian(state.AsSpan(PropertyCommandLength));
        while (offset < total)
        {
            // Up to the next restart point in one write: the export then covers exactly k chunks more.
            var end = Math.Min(total, ((offset / unit / every) + 1) * every * unit);
            var count = (int)(end - offset);
            StreamPattern.Fill(key, offset, buffer.AsSpan(0, count));
            await connection.Stream.WriteAsync(buffer.AsMemory(0, count));
            offset = end;
            if (offset % unit == 0 && offset / unit % every == 0)
            {
                BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(PropertyCommandLength), offset);
                connection.ExportState(state);
            }
        }
    }

    /// <summary>
    /// Request/response: reads messages up to the next restart point (never beyond, so that an export covers every byte
    /// read), answers each, and exports the count and digest every k messages once the answers are written; closes
    /// after the client's FIN.
    /// </summary>
    private static async Task AnswerRequestsAsync(MtcpConnection connection, byte[] state)
    {
        var (_, unit, every, _) = PropertyParameters(state);
        var requests = new byte[every * unit];
        var responses = new byte[every * unit];
        var answered = BinaryPrimitives.ReadInt64BigEndian(state.AsSpan(PropertyCommandLength));
        var digest = BinaryPrimitives.ReadUInt64BigEndian(state.AsSpan(PropertyCommandLength + 8));
        while (true)
        {
            var room = (int)(every - (answered % every)) * unit;
            var read = await connection.Stream.ReadAsync(requests.AsMemory(0, room));
            if (read == 0)
            {
                return;
            }

            var whole = (read + unit - 1) / unit * unit;
            if (whole > read)
            {
                // The rest of a message cut by the read; the client's FIN inside a message is a protocol error.
                await connection.Stream.ReadExactlyAsync(requests.AsMemory(read, whole - read));
            }

            for (var i = 0; i < whole; i += unit)
            {
                digest = RequestResponseServerSession.Process(requests.AsSpan(i, unit), digest, responses.AsSpan(i, unit));
                answered++;
            }

            await connection.Stream.WriteAsync(responses.AsMemory(0, whole));
            if (answered % every == 0)
            {
                BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(PropertyCommandLength), answered);
                BinaryPrimitives.WriteUInt64BigEndian(state.AsSpan(PropertyCommandLength + 8), digest);
                connection.ExportState(state);
            }
        }
    }

    private static (long Total, int Unit, int Every, ulong Key) PropertyParameters(byte[] state)
    {
        var total = BinaryPrimitives.ReadInt64BigEndian(state.AsSpan(1));
        var unit = BinaryPrimitives.ReadInt32BigEndian(state.AsSpan(9));
        var every = BinaryPrimitives.ReadInt32BigEndian(state.AsSpan(13));
        if (total < 0 || unit is < 1 or > 64 * 1024 || every is < 1 or > 64 || total % unit != 0)
        {
            throw new InvalidDataException($"bad service parameters: total {total}, unit {unit}, k {every}");
        }

        return (total, unit, every, BinaryPrimitives.ReadUInt64BigEndian(state.AsSpan(17)));
    }
}

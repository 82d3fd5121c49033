using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Stack.Migration;

// The file server of thesis fig. 6.1 on a Generic Host: a client sends a file name and a newline, the server sends
// the file and closes. README, "A migration-aware server", shows this file.
var builder = Host.CreateApplicationBuilder(args);
FileInfo[] overrides = builder.Configuration["config"] is { } path ? [new FileInfo(path)] : [];
var config = HostConfig.Load(typeof(FileServer).Assembly, "Mtcp.Sample.sample-node.conf", overrides);
var root = Path.GetFullPath(config.GetString("mtcp.hosts.sample.root"));
builder.Services
    .AddMtcpServer("mtcp", config)
    .MapConnections((ushort)config.GetInt("mtcp.hosts.sample.port"), (connection, stopping) => FileServer.ServeAsync(connection, root, stopping));
await builder.Build().RunAsync();

internal static class FileServer
{
    public static async Task ServeAsync(MtcpConnection connection, string root, CancellationToken stopping)
    {
        string name;
        long offset;
        var imported = connection.ImportState();                            // get_state
        if (imported.Origin == ConnectionOrigin.Migrated)
        {
            (name, offset) = Decode(imported.AppState.Span);                // resume where the origin was
        }
        else
        {
            name = await ReadLineAsync(connection.Stream, stopping);
            offset = 0;
            connection.ExportState(Encode(name, offset));
        }

        var path = Path.GetFullPath(Path.Combine(root, name));
        if (Path.GetDirectoryName(path) != root)
        {
            throw new IOException($"{name} is not a file of the served directory");
        }

        await using var file = File.OpenRead(path);
        file.Position = offset;
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await file.ReadAsync(buffer, stopping)) > 0)
        {
            await connection.Stream.WriteAsync(buffer.AsMemory(0, read), stopping);
            offset += read;
            connection.ExportState(Encode(name, offset));                   // set_state after every write
        }
    }

    // Byte by byte: nothing past the newline is read before the first export (its snapshot covers what was read).
    private static async Task<string> ReadLineAsync(Stream stream, CancellationToken stopping)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (await stream.ReadAsync(one, stopping) == 1 && one[0] != '\n')
        {
            line.Add(one[0]);
            if (line.Count > 255)
            {
                throw new IOException("the file name line is longer than 255 bytes");
            }
        }

        return Encoding.UTF8.GetString([.. line]).TrimEnd('\r');
    }

    private static byte[] Encode(string name, long offset)
    {
        var state = new byte[8 + Encoding.UTF8.GetByteCount(name)];
        BinaryPrimitives.WriteInt64BigEndian(state, offset);
        Encoding.UTF8.GetBytes(name, state.AsSpan(8));
        return state;
    }

    private static (string Name, long Offset) Decode(ReadOnlySpan<byte> state) =>
        (Encoding.UTF8.GetString(state[8..]), BinaryPrimitives.ReadInt64BigEndian(state));
}

using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Mtcp.Process.Tests;

/// <summary>A minimal RESP client (what redis-cli sends and reads) over kernel TCP, every read bounded by a timeout.</summary>
public sealed class RespClient : IDisposable
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);
    private readonly TcpClient _client = new();
    private NetworkStream? _stream;

    public Socket Socket => _client.Client;

    public async Task ConnectAsync(IPEndPoint endPoint)
    {
        using var timeout = new CancellationTokenSource(ReplyTimeout);
        await _client.ConnectAsync(endPoint, timeout.Token);
        _stream = _client.GetStream();
    }

    /// <summary>Sends a command as a RESP array of bulk strings and returns the reply as text (nil as null).</summary>
    public async Task<string?> CommandAsync(params string[] arguments)
    {
        var request = new StringBuilder($"*{arguments.Length}\r\n");
        foreach (var argument in arguments)
        {
            request.Append(System.Globalization.CultureInfo.InvariantCulture, $"${Encoding.UTF8.GetByteCount(argument)}\r\n{argument}\r\n");
        }

        return await RawAsync(request.ToString());
    }

    /// <summary>Sends bytes as they are (e.g. an inline command) and reads one reply.</summary>
    public async Task<string?> RawAsync(string request)
    {
        using var timeout = new CancellationTokenSource(ReplyTimeout);
        await _stream!.WriteAsync(Encoding.UTF8.GetBytes(request), timeout.Token);
        var line = await ReadLineAsync(timeout.Token);
        if (line.StartsWith('$'))
        {
            var length = int.Parse(line.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
            if (length < 0)
            {
                return null;
            }

            var body = new byte[length + 2];
            await _stream.ReadExactlyAsync(body, timeout.Token);
            return Encoding.UTF8.GetString(body, 0, length);
        }

        return line;
    }

    /// <summary>Reads until the server closes: 0 bytes means a FIN; a reset throws.</summary>
    public async Task<int> ReadAsync(byte[] buffer, TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        return await _stream!.ReadAsync(buffer, cancellation.Token);
    }

    public void Dispose() => _client.Dispose();

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            if (await _stream!.ReadAsync(one, cancellationToken) == 0)
            {
                throw new EndOfStreamException($"the connection closed after \"{Encoding.UTF8.GetString([.. line])}\"");
            }

            if (one[0] == '\n')
            {
                return Encoding.UTF8.GetString([.. line]).TrimEnd('\r');
            }

            line.Add(one[0]);
        }
    }
}

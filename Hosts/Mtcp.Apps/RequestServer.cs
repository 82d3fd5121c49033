using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Mtcp.Apps;

/// <summary>
/// Bounds of the request/response server (together they bound its snapshot), and how it degrades:
/// <paramref name="AnswerDelay"/> delays answer <c>n</c> of a visit, none by default.
/// </summary>
public sealed record RequestServerOptions(int MaxKeys, int MaxValueBytes, int MaxArguments, SteppedDelay AnswerDelay = default);

/// <summary>
/// A request/response server speaking a subset of RESP (the Redis protocol), so that <c>redis-cli</c> and
/// <c>nc</c> work unmodified: PING, ECHO, SET, GET and INCR on a map of this connection, COMMAND (answered empty) and
/// QUIT; both RESP arrays and inline commands. Its state (thesis 3.4 (2): request/response applications) is the
/// number of requests processed and the map, exported after every response. A degrading server
/// (<see cref="RequestServerOptions.AnswerDelay"/>) holds each answer back longer the more requests it served in the
/// connection's visit, as a failing server's response time grows; a connection that migrates in starts undegraded.
/// </summary>
public sealed class RequestServer(RequestServerOptions options, TimeProvider? timeProvider = null) : IServerApplication
{
    public string Name => "request";

    public async Task ServeAsync(Stream connection, IConnectionState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(state);
        var imported = state.Import();
        var session = imported.Kind is ConnectionKind.New ? new RequestSession(0, new Dictionary<string, byte[]>(StringComparer.Ordinal)) : RequestSession.Decode(imported.Snapshot.Span);
        var reader = new ProtocolReader(connection, maxLineLength: Math.Max(1024, options.MaxValueBytes + 256));
        for (long answerOfVisit = 0; !cancellationToken.IsCancellationRequested; answerOfVisit++)
        {
            List<byte[]>? request;
            try
            {
                request = await ReadRequestAsync(reader, cancellationToken).ConfigureAwait(false);
            }
            catch (ProtocolViolationException e)
            {
                await connection.WriteAsync(Encoding.UTF8.GetBytes($"-ERR Protocol error: {e.Message}\r\n"), cancellationToken).ConfigureAwait(false);
                return;
            }

            if (request is null)
            {
                return;
            }

            if (request.Count == 0)
            {
                continue;
            }

            var delay = options.AnswerDelay.Before(answerOfVisit);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, timeProvider ?? TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }

            var command = Encoding.UTF8.GetString(request[0]).ToUpperInvariant();
            await connection.WriteAsync(Execute(command, request, session), cancellationToken).ConfigureAwait(false);
            session = session with { RequestsProcessed = session.RequestsProcessed + 1 };
            state.Export(session.Encode());
            if (command == "QUIT")
            {
                return;
            }
        }
    }

    private byte[] Execute(string command, List<byte[]> request, RequestSession session)
    {
        return (command, request.Count) switch
        {
            ("PING", 1) => Simple("PONG"),
            ("PING", 2) or ("ECHO", 2) => Bulk(request[1]),
            ("GET", 2) => session.Values.TryGetValue(Encoding.UTF8.GetString(request[1]), out var value) ? Bulk(value) : "$-1\r\n"u8.ToArray(),
            ("SET", 3) => Set(Encoding.UTF8.GetString(request[1]), request[2], session),
            ("INCR", 2) => Increment(Encoding.UTF8.GetString(request[1]), session),
            ("COMMAND", _) => "*0\r\n"u8.ToArray(),
            ("QUIT", 1) => Simple("OK"),
            ("PING" or "ECHO" or "GET" or "SET" or "INCR" or "QUIT", _) => Error($"wrong number of arguments for '{command.ToLowerInvariant()}' command"),
            _ => Error($"unknown command '{command}'"),
        };
    }

    private byte[] Set(string key, byte[] value, RequestSession session)
    {
        if (value.Length > options.MaxValueBytes)
        {
            return Error($"value longer than {options.MaxValueBytes} bytes");
        }

        if (!session.Values.ContainsKey(key) && session.Values.Count >= options.MaxKeys)
        {
            return Error($"this connection already holds {options.MaxKeys} keys");
        }

        session.Values[key] = value;
        return Simple("OK");
    }

    /// <summary>
    /// Redis's INCR: the key's value, a decimal 64-bit integer (0 when absent), plus one, stored and answered as an
    /// integer reply. Not idempotent, so a client can tell that every request was applied exactly once.
    /// </summary>
    private byte[] Increment(string key, RequestSession session)
    {
        var current = 0L;
        if (session.Values.TryGetValue(key, out var value)
            && !long.TryParse(Encoding.ASCII.GetString(value), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out current))
        {
            return Error("value is not an integer or out of range");
        }

        if (current == long.MaxValue)
        {
            return Error("increment or decrement would overflow");
        }

        var next = (current + 1).ToString(CultureInfo.InvariantCulture);
        var stored = Set(key, Encoding.ASCII.GetBytes(next), session);
        return stored[0] == '-' ? stored : Encoding.ASCII.GetBytes($":{next}\r\n");
    }

    /// <summary>One request as its arguments; null at end of stream; empty for a blank inline line.</summary>
    private async ValueTask<List<byte[]>?> ReadRequestAsync(ProtocolReader reader, CancellationToken cancellationToken)
    {
        var line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        if (line is null)
        {
            return null;
        }

        if (!line.StartsWith('*'))
        {
            return [.. line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(Encoding.UTF8.GetBytes)];
        }

        var count = ParseLength(line, options.MaxArguments, "argument count");
        var arguments = new List<byte[]>(count);
        var lineEnd = new byte[2];
        for (var i = 0; i < count; i++)
        {
            var header = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) ?? throw new ProtocolViolationException("the stream ended inside a request");
            if (!header.StartsWith('$'))
            {
                throw new ProtocolViolationException($"expected '$', got '{header[..Math.Min(header.Length, 1)]}'");
            }

            // The argument and its CRLF are read apart, so the argument's bytes are copied once, not again without the CRLF.
            var argument = new byte[ParseLength(header, options.MaxValueBytes + 256, "bulk length")];
            await reader.ReadExactlyAsync(argument, cancellationToken).ConfigureAwait(false);
            await reader.ReadExactlyAsync(lineEnd, cancellationToken).ConfigureAwait(false);
            if (lineEnd[0] != '\r' || lineEnd[1] != '\n')
            {
                throw new ProtocolViolationException("a bulk string must end in CRLF");
            }

            arguments.Add(argument);
        }

        return arguments;
    }

    private static int ParseLength(string line, int max, string what) =>
        int.TryParse(line.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value <= max
            ? value
            : throw new ProtocolViolationException($"invalid {what} '{line}' (at most {max})");

    private static byte[] Simple(string text) => Encoding.UTF8.GetBytes($"+{text}\r\n");

    private static byte[] Error(string text) => Encoding.UTF8.GetBytes($"-ERR {text}\r\n");

    private static byte[] Bulk(byte[] value)
    {
        var header = Encoding.UTF8.GetBytes($"${value.Length}\r\n");
        return [.. header, .. value, (byte)'\r', (byte)'\n'];
    }
}

/// <summary>
/// The request server's application state: requests processed and the connection's map. Layout, big-endian:
/// requests (8 bytes), entry count (4), then per entry key length (4), UTF-8 key, value length (4), value.
/// </summary>
public sealed record RequestSession(long RequestsProcessed, Dictionary<string, byte[]> Values)
{
    public byte[] Encode()
    {
        var length = sizeof(long) + sizeof(int) + Values.Sum(pair => (2 * sizeof(int)) + Encoding.UTF8.GetByteCount(pair.Key) + pair.Value.Length);
        var bytes = new byte[length];
        BinaryPrimitives.WriteInt64BigEndian(bytes, RequestsProcessed);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), Values.Count);
        var offset = 12;
        foreach (var (key, value) in Values)
        {
            var keyLength = Encoding.UTF8.GetBytes(key, bytes.AsSpan(offset + 4));
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(offset), keyLength);
            offset += 4 + keyLength;
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(offset), value.Length);
            value.CopyTo(bytes.AsSpan(offset + 4));
            offset += 4 + value.Length;
        }

        return bytes;
    }

    public static RequestSession Decode(ReadOnlySpan<byte> bytes)
    {
        var requests = BinaryPrimitives.ReadInt64BigEndian(bytes);
        var count = BinaryPrimitives.ReadInt32BigEndian(bytes[8..]);
        var values = new Dictionary<string, byte[]>(count, StringComparer.Ordinal);
        var offset = 12;
        for (var i = 0; i < count; i++)
        {
            var keyLength = BinaryPrimitives.ReadInt32BigEndian(bytes[offset..]);
            var key = Encoding.UTF8.GetString(bytes.Slice(offset + 4, keyLength));
            offset += 4 + keyLength;
            var valueLength = BinaryPrimitives.ReadInt32BigEndian(bytes[offset..]);
            values[key] = bytes.Slice(offset + 4, valueLength).ToArray();
            offset += 4 + valueLength;
        }

        return new RequestSession(requests, values);
    }
}

using System.Buffers.Binary;
using System.Text;

namespace Mtcp.Apps;

/// <summary>Where the file server serves from and how patient it is with a request.</summary>
/// <param name="Pace">
/// when set, each visit of a connection (new or migrated in) writes its chunks at this curve's pace: a best rate that
/// degrades after a threshold (a failing or overloaded server, as in thesis 5.3.2); null writes as fast as the
/// connection takes. Its chunk size is <paramref name="ChunkSize"/>.
/// </param>
public sealed record FileServerOptions(string RootDirectory, int MaxRequestLineLength, int MaxHeaderCount, TimeSpan RequestTimeout, int ChunkSize, DegradationCurve? Pace = null);

/// <summary>
/// The web server of thesis fig. 6.1 (B), speaking enough HTTP/1.1 (RFC 9112) for <c>curl</c>: one GET of a file
/// under the root directory per connection, answered with Content-Length and then closed. Its state is the file's
/// name and the offset reached, exported after the headers and after every chunk (fig. 6.1 lines 8 and 27); a
/// migrated connection reopens the file and seeks to the offset (lines 13-14).
/// </summary>
/// <remarks>With <see cref="FileServerOptions.Pace"/> the body is written through a <see cref="PacedStream"/> per visit.</remarks>
public sealed class FileServer(FileServerOptions options, TimeProvider? time = null) : IServerApplication
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public string Name => "file";

    public async Task ServeAsync(Stream connection, IConnectionState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(state);
        FileSnapshot snapshot;
        var imported = state.Import();
        if (imported.Kind is ConnectionKind.New)
        {
            var request = await ReadRequestAsync(connection, cancellationToken).ConfigureAwait(false);
            if (request is null)
            {
                return;
            }

            if (request.Error is { } error)
            {
                await WriteAsciiAsync(connection, StatusResponse(error.Status, error.Reason, error.Detail), cancellationToken).ConfigureAwait(false);
                return;
            }

            snapshot = new FileSnapshot(request.FileName!, Offset: 0, HeadersWritten: false);
            state.Export(snapshot.Encode());
        }
        else
        {
            // The snapshot comes from another node's state reply: its name is checked against this node's root like a
            // request's, so that no peer (or a file server of another root) can make this node serve a file outside it.
            snapshot = FileSnapshot.TryDecode(imported.Snapshot.Span)
                ?? throw new ProtocolViolationException($"the migrated-in snapshot of {imported.Snapshot.Length} bytes is not a file server snapshot");
        }

        var path = ResolveBelowRoot(snapshot.FileName)
            ?? throw new ProtocolViolationException($"the migrated-in snapshot names {snapshot.FileName}, which is not a file below the root");
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, useAsync: true);
        await using (stream.ConfigureAwait(false))
        {
            if (!snapshot.HeadersWritten)
            {
                var headers = $"HTTP/1.1 200 OK\r\nContent-Length: {stream.Length}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
                await WriteAsciiAsync(connection, headers, cancellationToken).ConfigureAwait(false);
                snapshot = snapshot with { HeadersWritten = true };
                state.Export(snapshot.Encode());
            }

            stream.Seek(snapshot.Offset, SeekOrigin.Begin);
            var buffer = new byte[options.ChunkSize];
            var body = options.Pace is { } pace ? new PacedStream(connection, pace, _time) : connection;
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                await body.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                snapshot = snapshot with { Offset = snapshot.Offset + read };
                state.Export(snapshot.Encode());
            }
        }
    }

    /// <summary>Reads the request line and headers; null when the client closed without sending anything.</summary>
    private async Task<FileRequest?> ReadRequestAsync(Stream connection, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        var reader = new ProtocolReader(connection, options.MaxRequestLineLength);
        try
        {
            var requestLine = await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false);
            if (requestLine is null)
            {
                return null;
            }

            for (var headers = 0; ; headers++)
            {
                var header = await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false);
                if (header is null)
                {
                    return null;
                }

                if (header.Length == 0)
                {
                    break;
                }

                if (headers == options.MaxHeaderCount)
                {
                    return FileRequest.Failed(431, "Request Header Fields Too Large", $"more than {options.MaxHeaderCount} header fields");
                }
            }

            return ParseRequestLine(requestLine);
        }
        catch (ProtocolViolationException e)
        {
            return FileRequest.Failed(400, "Bad Request", e.Message);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return FileRequest.Failed(408, "Request Timeout", $"no complete request within {options.RequestTimeout.TotalSeconds:0.#} s");
        }
    }

    private FileRequest ParseRequestLine(string requestLine)
    {
        var parts = requestLine.Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || !parts[1].StartsWith('/'))
        {
            return FileRequest.Failed(400, "Bad Request", "the request line must be \"GET /path HTTP/1.1\"");
        }

        if (parts[0] != "GET")
        {
            return FileRequest.Failed(405, "Method Not Allowed", $"only GET is served, not {parts[0]}");
        }

        var path = Uri.UnescapeDataString(parts[1].Split('?', 2)[0]).TrimStart('/');
        if (path.Length == 0 || path.Split('/').Any(segment => segment is ".." or "."))
        {
            return FileRequest.Failed(400, "Bad Request", "the path must name a file below the root");
        }

        var lexical = Path.GetFullPath(Path.Join(options.RootDirectory, path));
        if (!File.Exists(lexical))
        {
            return FileRequest.Failed(404, "Not Found", $"no file /{path}");
        }

        return ResolveBelowRoot(path) is null
            ? FileRequest.Failed(400, "Bad Request", "the path must name a file below the root")
            : new FileRequest(path, Error: null);
    }

    /// <summary>
    /// The real path (every symbolic link resolved, as realpath(3)) of the regular file <paramref name="name"/> names
    /// relative to the root, or null when it does not exist, is not a regular file, or resolves outside the root's own
    /// real path: a link out of the root, <c>..</c>, or an absolute name.
    /// </summary>
    private string? ResolveBelowRoot(string name)
    {
        if (name.Length == 0 || name.Contains('\0', StringComparison.Ordinal) || Path.IsPathRooted(name))
        {
            return null;
        }

        var root = RealPath(Path.GetFullPath(options.RootDirectory));
        var file = root is null ? null : RealPath(Path.Join(root, name));
        return file is not null && file.StartsWith(Path.TrimEndingDirectorySeparator(root!) + Path.DirectorySeparatorChar, StringComparison.Ordinal) && File.Exists(file)
            ? file
            : null;
    }

    /// <summary>
    /// <paramref name="absolutePath"/> with every symbolic link of every component followed and <c>.</c> and <c>..</c>
    /// applied in order, as the kernel walks it; null when a component does not exist or more than 40 links are
    /// followed (Linux's MAXSYMLINKS: a loop).
    /// </summary>
    private static string? RealPath(string absolutePath)
    {
        const int MaxLinks = 40;
        var separator = Path.DirectorySeparatorChar;
        var pending = new Stack<string>(absolutePath.Split(separator).Reverse());
        var resolved = Path.GetPathRoot(absolutePath) ?? separator.ToString();
        var links = 0;
        while (pending.TryPop(out var component))
        {
            if (component is "" or ".")
            {
                continue;
            }

            if (component == "..")
            {
                resolved = Path.GetDirectoryName(resolved) ?? resolved;
                continue;
            }

            var candidate = Path.Join(resolved, component);
            if (new FileInfo(candidate).LinkTarget is { } target)
            {
                if (++links > MaxLinks)
                {
                    return null;
                }

                if (Path.IsPathRooted(target))
                {
                    resolved = Path.GetPathRoot(target) ?? resolved;
                }

                foreach (var part in target.Split(separator).Reverse())
                {
                    pending.Push(part);
                }

                continue;
            }

            if (!Path.Exists(candidate))
            {
                return null;
            }

            resolved = candidate;
        }

        return resolved;
    }

    private static string StatusResponse(int status, string reason, string detail)
    {
        var body = $"{status} {reason}: {detail}\n";
        return $"HTTP/1.1 {status} {reason}\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{body}";
    }

    private static async Task WriteAsciiAsync(Stream connection, string text, CancellationToken cancellationToken) =>
        await connection.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken).ConfigureAwait(false);

    private sealed record RequestError(int Status, string Reason, string Detail);

    private sealed record FileRequest(string? FileName, RequestError? Error)
    {
        public static FileRequest Failed(int status, string reason, string detail) => new(null, new RequestError(status, reason, detail));
    }
}

/// <summary>
/// The file server's application state (fig. 6.1 <c>state.fname</c>, <c>state.off</c>) plus whether the response
/// headers were written. Layout: flags (1 byte), name length (2 bytes), UTF-8 name, offset (8 bytes), big-endian.
/// </summary>
public readonly record struct FileSnapshot(string FileName, long Offset, bool HeadersWritten)
{
    private const byte HeadersWrittenFlag = 1;

    public byte[] Encode()
    {
        var nameLength = Encoding.UTF8.GetByteCount(FileName);
        var bytes = new byte[1 + sizeof(ushort) + nameLength + sizeof(long)];
        bytes[0] = HeadersWritten ? HeadersWrittenFlag : (byte)0;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(1), checked((ushort)nameLength));
        Encoding.UTF8.GetBytes(FileName, bytes.AsSpan(3));
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(3 + nameLength), Offset);
        return bytes;
    }

    /// <summary>The snapshot <see cref="Encode"/> wrote, or null when <paramref name="bytes"/> are not one (wrong length, negative offset).</summary>
    public static FileSnapshot? TryDecode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 1 + sizeof(ushort) + sizeof(long))
        {
            return null;
        }

        var nameLength = BinaryPrimitives.ReadUInt16BigEndian(bytes[1..]);
        if (bytes.Length != 1 + sizeof(ushort) + nameLength + sizeof(long))
        {
            return null;
        }

        var name = Encoding.UTF8.GetString(bytes.Slice(3, nameLength));
        var offset = BinaryPrimitives.ReadInt64BigEndian(bytes[(3 + nameLength)..]);
        return offset < 0 ? null : new FileSnapshot(name, offset, (bytes[0] & HeadersWrittenFlag) != 0);
    }
}

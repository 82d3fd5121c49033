using System.Buffers.Binary;
using Mtcp.Stack;
using Mtcp.Stack.Migration;

namespace Mtcp.TestKit;

/// <summary>
/// A server application in the thesis's model (3.3.2): it defines a per-connection state, exports it at restart points
/// and, on a migrated connection, resumes from the imported snapshot. A session whose connection migrated away sees
/// EMIGRATED and stops.
/// </summary>
public abstract class ServerSession(TcpConnection connection, ImportedState imported)
{
    public TcpConnection Connection { get; } = connection;

    public ImportedState Imported { get; } = imported;

    /// <summary>True once a read or write failed with EMIGRATED.</summary>
    public bool Emigrated { get; private set; }

    public int Snapshots { get; private set; }

    protected bool CloseCalled { get; private set; }

    /// <summary>While true the application neither reads nor writes (a busy server: data piles up unread).</summary>
    public bool Paused { get; set; }

    public void Pump(Instant now)
    {
        // A migrated-away connection is CLOSED too; the application must hear EMIGRATED from its next call.
        if (Paused || Emigrated || (Connection.State == TcpState.Closed && !Connection.IsMigratedAway))
        {
            return;
        }

        try
        {
            Step(now);
        }
        catch (ConnectionMigratedException)
        {
            Emigrated = true;
        }
    }

    protected abstract void Step(Instant now);

    protected void Export(ReadOnlySpan<byte> state)
    {
        Connection.ExportState(state);
        Snapshots++;
    }

    protected void CloseOnce(Instant now)
    {
        if (!CloseCalled)
        {
            CloseCalled = true;
            Connection.Close(now);
        }
    }

    /// <summary>True when the client's FIN is in and every byte before it was read.</summary>
    protected bool AtEndOfStream => Connection.State is TcpState.CloseWait or TcpState.LastAck or TcpState.Closing or TcpState.TimeWait && Connection.BytesReadable == 0;
}

/// <summary>
/// The stream server of thesis ch. 5: pushes <c>chunks</c> chunks of a reproducible stream and exports the chunk number
/// every <c>snapshotEvery</c> chunks, then closes.
/// </summary>
public sealed class StreamServerSession : ServerSession
{
    private readonly int _chunks;
    private readonly int _chunkSize;
    private readonly ulong _key;
    private readonly int _snapshotEvery;
    private readonly byte[] _scratch;
    private int _chunk;
    private int _offsetInChunk;

    public StreamServerSession(TcpConnection connection, ImportedState imported, int chunks, int chunkSize, ulong key, int snapshotEvery)
        : base(connection, imported)
    {
        _chunks = chunks;
        _chunkSize = chunkSize;
        _key = key;
        _snapshotEvery = snapshotEvery;
        _scratch = new byte[chunkSize];
        _chunk = imported.AppState.Length >= 4 ? BinaryPrimitives.ReadInt32BigEndian(imported.AppState.Span) : 0;
    }

    public static byte[] Reference(int chunks, int chunkSize, ulong key)
    {
        var bytes = new byte[chunks * chunkSize];
        StreamPattern.Fill(key, 0, bytes);
        return bytes;
    }

    protected override void Step(Instant now)
    {
        while (_chunk < _chunks)
        {
            var rest = _scratch.AsSpan(0, _chunkSize - _offsetInChunk);
            StreamPattern.Fill(_key, ((long)_chunk * _chunkSize) + _offsetInChunk, rest);
            var written = Connection.Write(rest);
            _offsetInChunk += written;
            if (_offsetInChunk < _chunkSize)
            {
                return;
            }

            _chunk++;
            _offsetInChunk = 0;
            if (_chunk % _snapshotEvery == 0)
            {
                ExportChunk();
            }
        }

        CloseOnce(now);
    }

    private void ExportChunk()
    {
        Span<byte> state = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(state, _chunk);
        Export(state);
    }
}

/// <summary>
/// The file server of thesis ch. 6 (and 3.3.2's web server example): reads an 8-byte file name, exports (name, offset)
/// every <c>snapshotEvery</c> chunks while sending the file, then closes.
/// </summary>
public sealed class FileServerSession : ServerSession
{
    public const int NameLength = 8;

    private readonly int _fileSize;
    private readonly int _chunkSize;
    private readonly int _snapshotEvery;
    private readonly byte[] _request = new byte[NameLength];
    private readonly byte[] _scratch;
    private int _requestRead;
    private ulong? _name;
    private long _offset;

    public FileServerSession(TcpConnection connection, ImportedState imported, int fileSize, int chunkSize, int snapshotEvery)
        : base(connection, imported)
    {
        _fileSize = fileSize;
        _chunkSize = chunkSize;
        _snapshotEvery = snapshotEvery;
        _scratch = new byte[chunkSize];
        if (imported.AppState.Length == 16)
        {
            _name = BinaryPrimitives.ReadUInt64BigEndian(imported.AppState.Span);
            _offset = BinaryPrimitives.ReadInt64BigEndian(imported.AppState.Span[8..]);
        }
    }

    public static byte[] Reference(ulong name, int fileSize)
    {
        var bytes = new byte[fileSize];
        StreamPattern.Fill(name, 0, bytes);
        return bytes;
    }

    protected override void Step(Instant now)
    {
        if (_name is null)
        {
            _requestRead += Connection.Read(_request.AsSpan(_requestRead));
            if (_requestRead < NameLength)
            {
                return;
            }

            _name = BinaryPrimitives.ReadUInt64BigEndian(_request);
            ExportNameAndOffset();
        }

        while (_offset < _fileSize)
        {
            var end = Math.Min(_fileSize, ((_offset / _chunkSize) + 1) * _chunkSize);
            var rest = _scratch.AsSpan(0, (int)(end - _offset));
            StreamPattern.Fill(_name.Value, _offset, rest);
            var written = Connection.Write(rest);
            _offset += written;
            if (_offset < end)
            {
                return;
            }

            if (_offset / _chunkSize % _snapshotEvery == 0)
            {
                ExportNameAndOffset();
            }
        }

        CloseOnce(now);
    }

    private void ExportNameAndOffset()
    {
        Span<byte> state = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(state, _name!.Value);
        BinaryPrimitives.WriteInt64BigEndian(state[8..], _offset);
        Export(state);
    }
}

/// <summary>
/// The request/response server of thesis fig. 3.5: its state is the number of messages read (plus a running digest
/// of them, so a message processed twice or skipped changes every later response). Each response is a function of
/// the message and the digest; the state is exported every <c>snapshotEvery</c> messages, once the response is
/// written. It closes after the client's FIN.
/// </summary>
public sealed class RequestResponseServerSession : ServerSession
{
    /// <summary>The running digest before the first message.</summary>
    public const ulong DigestSeed = 0xCBF29CE484222325UL;

    private readonly int _messageSize;
    private readonly int _snapshotEvery;
    private readonly byte[] _message;
    private readonly byte[] _response;
    private int _have;
    private int _responseWritten;
    private bool _responsePending;

    public RequestResponseServerSession(TcpConnection connection, ImportedState imported, int messageSize, int snapshotEvery)
        : base(connection, imported)
    {
        _messageSize = messageSize;
        _snapshotEvery = snapshotEvery;
        _message = new byte[messageSize];
        _response = new byte[messageSize];
        Digest = DigestSeed;
        if (imported.AppState.Length == 12)
        {
            MessagesRead = BinaryPrimitives.ReadInt32BigEndian(imported.AppState.Span);
            Digest = BinaryPrimitives.ReadUInt64BigEndian(imported.AppState.Span[4..]);
        }
    }

    /// <summary>Messages read, as of this session (the imported count plus those read here).</summary>
    public int MessagesRead { get; private set; }

    public ulong Digest { get; private set; }

    /// <summary>The client's side: the messages it sends and the responses it must get back, exactly once each.</summary>
    public static (byte[] Requests, byte[] Responses) Reference(int messages, int messageSize, ulong key)
    {
        var requests = new byte[messages * messageSize];
        StreamPattern.Fill(key, 0, requests);
        var responses = new byte[requests.Length];
        var digest = DigestSeed;
        for (var i = 0; i < messages; i++)
        {
            var message = requests.AsSpan(i * messageSize, messageSize);
            digest = Process(message, digest, responses.AsSpan(i * messageSize, messageSize));
        }

        return (requests, responses);
    }

    protected override void Step(Instant now)
    {
        while (true)
        {
            if (_responsePending)
            {
                _responseWritten += Connection.Write(_response.AsSpan(_responseWritten));
                if (_responseWritten < _messageSize)
                {
                    return;
                }

                _responsePending = false;
                if (MessagesRead % _snapshotEvery == 0)
                {
                    ExportCountAndDigest();
                }
            }

            _have += Connection.Read(_message.AsSpan(_have));
            if (_have < _messageSize)
            {
                break;
            }

            _have = 0;
            Digest = Process(_message, Digest, _response);
            MessagesRead++;
            _responsePending = true;
            _responseWritten = 0;
        }

        if (_have == 0 && AtEndOfStream)
        {
            CloseOnce(now);
        }
    }

    private void ExportCountAndDigest()
    {
        Span<byte> state = stackalloc byte[12];
        BinaryPrimitives.WriteInt32BigEndian(state, MessagesRead);
        BinaryPrimitives.WriteUInt64BigEndian(state[4..], Digest);
        Export(state);
    }

    /// <summary>
    /// Answers one message: writes its response (as long as the message) and returns the digest after it. Shared with
    /// the runtime's request/response service, so that both are held to the same reference.
    /// </summary>
    public static ulong Process(ReadOnlySpan<byte> message, ulong digest, Span<byte> response)
    {
        foreach (var b in message)
        {
            digest = unchecked((digest ^ b) * 0x100000001B3UL);
        }

        for (var i = 0; i < message.Length; i++)
        {
            response[i] = (byte)(message[i] ^ (byte)(digest >> (8 * (i % 8))));
        }

        return digest;
    }
}

/// <summary>
/// A server that half-closes first: it writes a greeting, shuts down its sending side (FIN-WAIT) and exports, then reads
/// the client's upload to the client's FIN, exporting (bytes read, digest of them) every <c>snapshotEvery</c> chunks.
/// A connection that migrates after the shutdown resumes with the greeting sent and its FIN queued (the snapshot's
/// SS_CANTSENDMORE); one that migrates before it writes the greeting again from the start.
/// </summary>
public sealed class UploadServerSession : ServerSession
{
    private readonly int _greetingLength;
    private readonly int _chunkSize;
    private readonly int _snapshotEvery;
    private readonly byte[] _scratch;
    private int _greetingWritten;
    private bool _shutDown;

    public UploadServerSession(TcpConnection connection, ImportedState imported, int greetingLength, int chunkSize, int snapshotEvery)
        : base(connection, imported)
    {
        _greetingLength = greetingLength;
        _chunkSize = chunkSize;
        _snapshotEvery = snapshotEvery;
        _scratch = new byte[chunkSize];
        Digest = RequestResponseServerSession.DigestSeed;
        if (imported.AppState.Length == 16)
        {
            _shutDown = true;
            _greetingWritten = greetingLength;
            BytesRead = BinaryPrimitives.ReadInt64BigEndian(imported.AppState.Span);
            Digest = BinaryPrimitives.ReadUInt64BigEndian(imported.AppState.Span[8..]);
        }
    }

    /// <summary>Bytes of the upload read, as of this session (the imported count plus those read here).</summary>
    public long BytesRead { get; private set; }

    /// <summary>FNV-1a over every byte of the upload read so far: a byte read twice or skipped changes it.</summary>
    public ulong Digest { get; private set; }

    /// <summary>The digest of a whole upload, to compare with the last session's <see cref="Digest"/>.</summary>
    public static ulong DigestOf(ReadOnlySpan<byte> upload) => Fold(RequestResponseServerSession.DigestSeed, upload);

    protected override void Step(Instant now)
    {
        if (_greetingWritten < _greetingLength)
        {
            var rest = _scratch.AsSpan(0, Math.Min(_chunkSize, _greetingLength - _greetingWritten));
            StreamPattern.Fill(MigrationTestbed.StreamKey, _greetingWritten, rest);
            _greetingWritten += Connection.Write(rest);
            if (_greetingWritten < _greetingLength)
            {
                return;
            }
        }

        if (!_shutDown)
        {
            _shutDown = true;
            CloseOnce(now);
            ExportReadAndDigest();
        }

        int read;
        while ((read = Connection.Read(_scratch)) > 0)
        {
            var chunksBefore = BytesRead / _chunkSize;
            Digest = Fold(Digest, _scratch.AsSpan(0, read));
            BytesRead += read;
            if (BytesRead / _chunkSize / _snapshotEvery > chunksBefore / _snapshotEvery)
            {
                ExportReadAndDigest();
            }
        }
    }

    private static ulong Fold(ulong digest, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            digest = unchecked((digest ^ b) * 0x100000001B3UL);
        }

        return digest;
    }

    private void ExportReadAndDigest()
    {
        Span<byte> state = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(state, BytesRead);
        BinaryPrimitives.WriteUInt64BigEndian(state[8..], Digest);
        Export(state);
    }
}

/// <summary>
/// The client application: writes <c>toSend</c>, checks every byte it reads against <c>expected</c>, and closes once it
/// sent everything and either got all it expects (<c>closeFirst</c>) or saw the server's FIN.
/// </summary>
public sealed class ClientApplication(byte[] toSend, byte[] expected, bool closeFirst)
{
    private readonly byte[] _buffer = new byte[16 * 1024];

    public long Sent { get; private set; }

    public long Received { get; private set; }

    /// <summary>Offset of the first byte that differs from the reference (or lies beyond it), -1 when none.</summary>
    public long FirstMismatch { get; private set; } = -1;

    public bool PeerClosed { get; private set; }

    public bool CloseCalled { get; private set; }

    public List<TcpEvent> Events { get; } = [];

    public bool ReceivedAll => Received == expected.Length;

    /// <summary>While true the application does not close (to hold the connection in CLOSE_WAIT for a test).</summary>
    public bool HoldClose { get; set; }

    /// <summary>While true the application neither reads nor writes (a slow reader: the window closes).</summary>
    public bool Paused { get; set; }

    /// <summary>
    /// Bytes the application may still read, or null for no limit: a test that tops it up as time passes makes a
    /// reader slower than the stream (as <c>curl --limit-rate</c> behind the agent), whose window closes and reopens.
    /// </summary>
    public long? ReadBudget { get; set; }

    /// <summary>
    /// When true the application shuts down its sending side as soon as it sent everything, before the answer is in
    /// (as <c>nc -N</c> does), and goes on reading until the server's FIN: a half-close (RFC 9293 §3.10.4).
    /// </summary>
    public bool HalfCloseAfterSending { get; set; }

    public void Pump(Instant now, MtcpClientConnection connection)
    {
        while (connection.PollEvent(out var e))
        {
            Events.Add(e);
            PeerClosed |= e == TcpEvent.PeerClosed;
        }

        if (Paused)
        {
            return;
        }

        if (Sent < toSend.Length)
        {
            Sent += connection.Write(toSend.AsSpan((int)Sent));
        }

        int read;
        while ((read = connection.Read(_buffer.AsSpan(0, (int)Math.Min(_buffer.Length, ReadBudget ?? _buffer.Length)))) > 0)
        {
            ReadBudget -= read;
            var chunk = _buffer.AsSpan(0, read);
            if (FirstMismatch < 0)
            {
                var fits = (int)Math.Min(read, expected.Length - Received);
                var differ = chunk[..fits].CommonPrefixLength(expected.AsSpan((int)Received, fits));
                if (differ < read)
                {
                    FirstMismatch = Received + differ;
                }
            }

            Received += read;
        }

        // A close in SYN-SENT deletes the connection (RFC 9293 §3.10.4): the half-close waits for the handshake.
        var halfClose = HalfCloseAfterSending && Events.Contains(TcpEvent.Connected);
        if (!CloseCalled && !HoldClose && Sent == toSend.Length && (halfClose || (ReceivedAll && (closeFirst || PeerClosed))))
        {
            CloseCalled = true;
            connection.Close(now);
        }
    }
}

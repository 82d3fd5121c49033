using Mtcp.Stack;

namespace Mtcp.TestKit;

/// <summary>
/// The application on one end of a bulk transfer: writes <see cref="BytesToSend"/> bytes of
/// <see cref="StreamPattern"/>(sendKey), closes, reads everything the peer sends and checks it against
/// <see cref="StreamPattern"/>(receiveKey). Records every event so a test can assert on the whole run.
/// </summary>
public sealed class BulkTransferApplication
{
    private readonly ulong _sendKey;
    private readonly ulong _receiveKey;
    private readonly byte[] _buffer = new byte[64 * 1024];

    private readonly ApplicationPacing? _pacing;
    private Instant _readingResumesAt;

    /// <param name="bytesToSend">Bytes of the send pattern to write before closing.</param>
    /// <param name="sendKey">Pattern key of the bytes written.</param>
    /// <param name="receiveKey">Pattern key the received bytes are checked against.</param>
    /// <param name="closeWhenDone">Close once everything is written.</param>
    /// <param name="pacing">Erratic reading and writing (random chunk sizes, pauses); null for a greedy application.</param>
    public BulkTransferApplication(long bytesToSend, ulong sendKey, ulong receiveKey, bool closeWhenDone = true, ApplicationPacing? pacing = null)
    {
        BytesToSend = bytesToSend;
        _sendKey = sendKey;
        _receiveKey = receiveKey;
        CloseWhenDone = closeWhenDone;
        _pacing = pacing;
    }

    public long BytesToSend { get; }

    public bool CloseWhenDone { get; set; }

    public long BytesWritten { get; private set; }

    public long BytesRead { get; private set; }

    /// <summary>Stream offset of the first received byte that differed from the pattern, or -1.</summary>
    public long FirstMismatch { get; private set; } = -1;

    public bool CloseCalled { get; private set; }

    /// <summary>How many times the read log was checked against the stream and released (MTCP snapshots).</summary>
    public int ReadLogReleases { get; private set; }

    /// <summary>Stream offset of the first read-log byte that differed from what was read, or -1.</summary>
    public long FirstReadLogMismatch { get; private set; } = -1;

    public bool PeerClosed { get; private set; }

    public List<TcpEvent> Events { get; } = [];

    /// <summary>Virtual time at which the peer's FIN was seen, for goodput figures.</summary>
    public Instant? PeerClosedAt { get; private set; }

    public void Pump(Instant now, TcpConnection connection)
    {
        while (connection.PollEvent(out var e))
        {
            Events.Add(e);
            if (e == TcpEvent.PeerClosed)
            {
                PeerClosed = true;
                PeerClosedAt = now;
            }
        }

        if (now >= _readingResumesAt)
        {
            ReadAvailable(now, connection);
        }

        while (BytesWritten < BytesToSend && connection.CanWrite && connection.SendBufferFree > 0)
        {
            var chunk = (int)Math.Min(Math.Min(_buffer.Length, connection.SendBufferFree), BytesToSend - BytesWritten);
            if (_pacing is { } pacing)
            {
                chunk = Math.Min(chunk, pacing.Random.Next(1, pacing.MaxWriteChunk + 1));
            }

            StreamPattern.Fill(_sendKey, BytesWritten, _buffer.AsSpan(0, chunk));
            var written = connection.Write(_buffer.AsSpan(0, chunk));
            BytesWritten += written;
            if (written < chunk || _pacing is not null)
            {
                break;
            }
        }

        if (CloseWhenDone && !CloseCalled && BytesWritten == BytesToSend && connection.State is TcpState.Established or TcpState.CloseWait)
        {
            CloseCalled = true;
            connection.Close(now);
        }
    }

    /// <summary>Reads whatever is left, ignoring pacing: the application's last look once the connection is done.</summary>
    public void FinishReading(Instant now, TcpConnection connection)
    {
        ReadAvailable(now, connection, greedy: true);
    }

    /// <summary>
    /// What an MTCP snapshot does to the receive side: the read log must hold exactly the bytes read since the last
    /// release, and is then released up to the read cursor.
    /// </summary>
    private void CheckAndReleaseReadLog(TcpConnection connection)
    {
        var logOffset = BytesRead - connection.ReadLogLength;
        connection.GetReadLog(out var first, out var second);
        if (FirstReadLogMismatch < 0)
        {
            var mismatch = StreamPattern.FirstMismatch(_receiveKey, logOffset, first);
            FirstReadLogMismatch = mismatch >= 0 ? mismatch : StreamPattern.FirstMismatch(_receiveKey, logOffset + first.Length, second);
        }

        connection.ReleaseReadLog(connection.ReadNext);
        ReadLogReleases++;
    }

    private void ReadAvailable(Instant now, TcpConnection connection, bool greedy = false)
    {
        var limit = _pacing is { } p && !greedy ? p.Random.Next(1, p.MaxReadChunk + 1) : _buffer.Length;
        int read;
        while ((read = connection.Read(_buffer.AsSpan(0, Math.Min(limit, _buffer.Length)))) > 0)
        {
            if (FirstMismatch < 0)
            {
                var mismatch = StreamPattern.FirstMismatch(_receiveKey, BytesRead, _buffer.AsSpan(0, read));
                FirstMismatch = mismatch;
            }

            BytesRead += read;
            if (connection.RetainReadLog && (_pacing is null || _pacing.Random.NextDouble() < _pacing.ReadLogReleaseProbability))
            {
                CheckAndReleaseReadLog(connection);
            }

            if (_pacing is { } pacing && !greedy)
            {
                if (pacing.Random.NextDouble() < pacing.ReadPauseProbability)
                {
                    _readingResumesAt = now + (pacing.MaxReadPause * pacing.Random.NextDouble());
                }

                break;
            }
        }
    }
}

/// <summary>
/// Makes a <see cref="BulkTransferApplication"/> erratic: reads and writes of random sizes, and reading that stops
/// for a while, so windows close and the persist timer, window updates and a full send buffer all get exercised.
/// </summary>
/// <param name="Random">Source of the randomness (seeded by the test).</param>
/// <param name="MaxReadChunk">Largest single read, bytes.</param>
/// <param name="MaxWriteChunk">Largest single write, bytes.</param>
/// <param name="ReadPauseProbability">Chance, after each read, that reading stops for up to <paramref name="MaxReadPause"/>.</param>
/// <param name="MaxReadPause">Longest pause in reading.</param>
/// <param name="ReadLogReleaseProbability">With a retained read log, the chance after each read that it is checked and released.</param>
public sealed record ApplicationPacing(Random Random, int MaxReadChunk, int MaxWriteChunk, double ReadPauseProbability, TimeSpan MaxReadPause, double ReadLogReleaseProbability = 1);

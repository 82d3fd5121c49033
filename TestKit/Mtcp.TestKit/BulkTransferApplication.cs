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

    public BulkTransferApplication(long bytesToSend, ulong sendKey, ulong receiveKey, bool closeWhenDone = true)
    {
        BytesToSend = bytesToSend;
        _sendKey = sendKey;
        _receiveKey = receiveKey;
        CloseWhenDone = closeWhenDone;
    }

    public long BytesToSend { get; }

    public bool CloseWhenDone { get; set; }

    public long BytesWritten { get; private set; }

    public long BytesRead { get; private set; }

    /// <summary>Stream offset of the first received byte that differed from the pattern, or -1.</summary>
    public long FirstMismatch { get; private set; } = -1;

    public bool CloseCalled { get; private set; }

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

        int read;
        while ((read = connection.Read(_buffer)) > 0)
        {
            if (FirstMismatch < 0)
            {
                var mismatch = StreamPattern.FirstMismatch(_receiveKey, BytesRead, _buffer.AsSpan(0, read));
                FirstMismatch = mismatch;
            }

            BytesRead += read;
        }

        while (BytesWritten < BytesToSend && connection.CanWrite && connection.SendBufferFree > 0)
        {
            var chunk = (int)Math.Min(Math.Min(_buffer.Length, connection.SendBufferFree), BytesToSend - BytesWritten);
            StreamPattern.Fill(_sendKey, BytesWritten, _buffer.AsSpan(0, chunk));
            var written = connection.Write(_buffer.AsSpan(0, chunk));
            BytesWritten += written;
            if (written < chunk)
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
}

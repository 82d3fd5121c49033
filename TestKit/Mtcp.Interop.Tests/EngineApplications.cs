using System.Security.Cryptography;
using Mtcp.Stack;

namespace Mtcp.Interop.Tests;

/// <summary>Echoes every byte back; closes once the peer has closed and the echo is all written.</summary>
internal sealed class EngineEchoApplication : IEngineApplication
{
    private readonly byte[] _pending = new byte[256 * 1024];
    private int _pendingStart;
    private int _pendingEnd;
    private bool _peerClosed;
    private bool _closeCalled;

    public long BytesEchoed { get; private set; }

    public List<TcpEvent> Events { get; } = [];

    public bool Finished => _closeCalled;

    public void Pump(Instant now, TcpConnection connection)
    {
        while (connection.PollEvent(out var e))
        {
            Events.Add(e);
            _peerClosed |= e == TcpEvent.PeerClosed;
        }

        while (true)
        {
            if (_pendingStart == _pendingEnd)
            {
                _pendingStart = _pendingEnd = 0;
            }

            if (_pendingEnd < _pending.Length)
            {
                _pendingEnd += connection.Read(_pending.AsSpan(_pendingEnd));
            }

            if (_pendingStart == _pendingEnd)
            {
                break;
            }

            var written = connection.Write(_pending.AsSpan(_pendingStart, _pendingEnd - _pendingStart));
            _pendingStart += written;
            BytesEchoed += written;
            if (written == 0)
            {
                break;
            }
        }

        if (_peerClosed && !_closeCalled && _pendingStart == _pendingEnd && connection.BytesReadable == 0)
        {
            connection.Close(now);
            _closeCalled = true;
        }
    }
}

/// <summary>Sends a payload, closes after the last byte, and hashes everything the peer sends back until its FIN.</summary>
internal sealed class EngineSendAndHashApplication(byte[] payload) : IEngineApplication
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _sent;
    private bool _closeCalled;
    private bool _peerClosed;
    private byte[]? _sha256;

    public long BytesReceived { get; private set; }

    public List<TcpEvent> Events { get; } = [];

    public byte[] ReceivedSha256 => _sha256 ?? throw new InvalidOperationException("the peer has not closed yet");

    public bool Finished => _sha256 is not null && _closeCalled;

    public void Pump(Instant now, TcpConnection connection)
    {
        while (connection.PollEvent(out var e))
        {
            Events.Add(e);
            if (e == TcpEvent.PeerClosed)
            {
                _peerClosed = true;
            }
        }

        int read;
        while ((read = connection.Read(_buffer)) > 0)
        {
            _hash.AppendData(_buffer, 0, read);
            BytesReceived += read;
        }

        if (_peerClosed && _sha256 is null && connection.BytesReadable == 0)
        {
            _sha256 = _hash.GetHashAndReset();
        }

        while (_sent < payload.Length && connection.CanWrite)
        {
            var written = connection.Write(payload.AsSpan(_sent));
            _sent += written;
            if (written == 0)
            {
                break;
            }
        }

        if (_sent == payload.Length && !_closeCalled && connection.State is TcpState.Established or TcpState.CloseWait)
        {
            connection.Close(now);
            _closeCalled = true;
        }
    }
}

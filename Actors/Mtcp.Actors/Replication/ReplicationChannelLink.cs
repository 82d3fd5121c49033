using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Mtcp.Actors.Configuration;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

/// <summary>
/// One connection of the direct replication channel, either end, once its TLS handshake is done (docs/failover.md):
/// a writer thread takes every sealed envelope queued since its last write and writes their frames
/// (<see cref="ReplicationChannelFrame"/>) in one TLS write; a reader thread reads frames and hands each envelope to
/// the receiver it was started with, which opens it. No actor hop and no serializer on either path: the two crossings
/// of Akka.Remote were most of a replicated byte's ACK delay. The first error, end of stream, refused frame or
/// overfull queue closes the connection and is reported once.
/// </summary>
internal sealed class ReplicationChannelLink : IDisposable
{
    /// <summary>Bytes of frames gathered into one write at most (one frame larger than this goes alone).</summary>
    private const int CoalescedWriteBytes = 256 * 1024;

    private readonly Socket _socket;
    private readonly SslStream _tls;
    private readonly int _maxFrameLength;
    private readonly long _maxQueuedBytes;
    private readonly object _gate = new();
    private readonly Queue<byte[]> _queue = new();
    private long _queuedBytes;
    private bool _closed;
    private bool _reportClose;
    private Action<ReplicationChannelLink, string>? _closedBy;
    private byte[] _readBuffer = new byte[64 * 1024];
    private int _readStart;
    private int _readEnd;
    private long _framesSent;
    private long _framesReceived;

    private ReplicationChannelLink(Socket socket, SslStream tls, int maxFrameLength, long maxQueuedBytes)
    {
        _socket = socket;
        _tls = tls;
        _maxFrameLength = maxFrameLength;
        _maxQueuedBytes = maxQueuedBytes;
        Remote = (IPEndPoint)socket.RemoteEndPoint!;
    }

    /// <summary>The peer's end of the connection.</summary>
    public IPEndPoint Remote { get; }

    public long FramesSent => Interlocked.Read(ref _framesSent);

    public long FramesReceived => Interlocked.Read(ref _framesReceived);

    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closed;
            }
        }
    }

    /// <summary>
    /// Opens the channel to <paramref name="peer"/> from <paramref name="local"/>, this node's control host (the peer
    /// admits a member's channel only from that member's host, and the kernel would otherwise pick the source address):
    /// a kernel TCP connection (no delay: every frame is an update or an ack someone waits for) and the client end of
    /// mutual TLS 1.3, within <c>handshake-timeout</c>.
    /// </summary>
    /// <exception cref="IOException">the connection or the handshake failed, or took too long; the message says which.</exception>
    public static async Task<ReplicationChannelLink> ConnectAsync(IPAddress local, IPEndPoint peer, string peerHost, ReplicationChannelSettings settings, SslClientAuthenticationOptions tls)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(tls);
        var socket = new Socket(peer.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = new CancellationTokenSource(settings.HandshakeTimeout);
        SslStream? stream = null;
        try
        {
            socket.Bind(new IPEndPoint(local, 0));
            await socket.ConnectAsync(peer, deadline.Token).ConfigureAwait(false);
            stream = new SslStream(new NetworkStream(socket, ownsSocket: true));
            tls.TargetHost ??= peerHost;
            tls.EnabledSslProtocols = SslProtocols.Tls13;
            await stream.AuthenticateAsClientAsync(tls, deadline.Token).ConfigureAwait(false);
            return new ReplicationChannelLink(socket, stream, settings.MaxFrameLength, settings.MaxQueuedBytes);
        }
        catch (Exception e) when (e is SocketException or IOException or AuthenticationException or OperationCanceledException)
        {
            stream?.Dispose();
            socket.Dispose();
            var reason = e is OperationCanceledException ? $"no connection and TLS handshake within {settings.HandshakeTimeout}" : e.Message;
            throw new IOException($"replication channel to {peer}: {reason}", e);
        }
    }

    /// <summary>
    /// The server end of mutual TLS 1.3 on an accepted <paramref name="socket"/>; the caller bounds it with
    /// <paramref name="cancellationToken"/> (the handshake deadline). The socket is closed when it fails.
    /// </summary>
    public static async Task<ReplicationChannelLink> AcceptAsync(Socket socket, ReplicationChannelSettings settings, SslServerAuthenticationOptions tls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(tls);
        socket.NoDelay = true;
        var stream = new SslStream(new NetworkStream(socket, ownsSocket: true));
        try
        {
            tls.EnabledSslProtocols = SslProtocols.Tls13;
            await stream.AuthenticateAsServerAsync(tls, cancellationToken).ConfigureAwait(false);
            return new ReplicationChannelLink(socket, stream, settings.MaxFrameLength, settings.MaxQueuedBytes);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Reads the next frame and returns its envelope, valid until the next read; null at the end of the stream.
    /// Called by the reader thread, or before <see cref="Start"/> by whoever reads the first frame.
    /// </summary>
    /// <exception cref="InvalidDataException">the frame's length is zero or over the control frame limit.</exception>
    public ReadOnlyMemory<byte>? ReadEnvelope()
    {
        while (true)
        {
            var status = ReplicationChannelFrame.TryRead(_readBuffer.AsSpan(_readStart, _readEnd - _readStart), _maxFrameLength, out var envelope, out var frameLength);
            switch (status)
            {
                case ReplicationChannelFrameStatus.Complete:
                    var at = _readStart + ReplicationChannelFrame.HeaderLength;
                    _readStart += frameLength;
                    Interlocked.Increment(ref _framesReceived);
                    return _readBuffer.AsMemory(at, envelope.Length);
                case ReplicationChannelFrameStatus.Empty:
                    throw new InvalidDataException("a frame of length 0");
                case ReplicationChannelFrameStatus.TooLong:
                    throw new InvalidDataException($"a frame over the control frame limit ({_maxFrameLength} bytes)");
            }

            var needed = Math.Max(frameLength, ReplicationChannelFrame.HeaderLength);
            if (_readStart == _readEnd)
            {
                _readStart = _readEnd = 0;
            }
            else if (_readBuffer.Length - _readStart < needed)
            {
                Buffer.BlockCopy(_readBuffer, _readStart, _readBuffer, 0, _readEnd - _readStart);
                _readEnd -= _readStart;
                _readStart = 0;
            }

            if (_readBuffer.Length < needed)
            {
                Array.Resize(ref _readBuffer, needed);
            }

            var read = _tls.Read(_readBuffer, _readEnd, _readBuffer.Length - _readEnd);
            if (read == 0)
            {
                return null;
            }

            _readEnd += read;
        }
    }

    /// <summary>
    /// Starts the writer and the reader threads: each envelope read goes to <paramref name="receive"/> (false: the frame
    /// was refused and the connection closes); <paramref name="closed"/> hears once why the connection ended, unless
    /// this node disposed it.
    /// </summary>
    public void Start(string name, Func<ReadOnlyMemory<byte>, bool> receive, Action<ReplicationChannelLink, string> closed)
    {
        lock (_gate)
        {
            _closedBy = closed;
            _reportClose = true;
        }

        new Thread(WriteLoop) { IsBackground = true, Name = $"mtcp-replication-writer {name}" }.Start();
        new Thread(() => ReadLoop(receive)) { IsBackground = true, Name = $"mtcp-replication-reader {name}" }.Start();
    }

    /// <summary>Queues <paramref name="envelope"/> for the writer; false when the connection is closed, or closes now because its queue is over its bound.</summary>
    public bool Send(byte[] envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        lock (_gate)
        {
            if (_closed)
            {
                return false;
            }

            if (_queuedBytes + envelope.Length > _maxQueuedBytes)
            {
                Close($"more than max-queued-bytes ({_maxQueuedBytes}) waiting to be written: the peer does not read");
                return false;
            }

            _queue.Enqueue(envelope);
            _queuedBytes += envelope.Length;
            if (_queue.Count == 1)
            {
                Monitor.Pulse(_gate);
            }
        }

        return true;
    }

    /// <summary>Closes the connection without reporting it: this node is done with it.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _reportClose = false;
        }

        Close("closed by this node");
    }

    /// <summary>Closes the connection (once) and reports <paramref name="reason"/> to whoever started it.</summary>
    public void Close(string reason)
    {
        Action<ReplicationChannelLink, string>? report;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            _queue.Clear();
            _queuedBytes = 0;
            report = _reportClose ? _closedBy : null;
            Monitor.PulseAll(_gate);
        }

        _tls.Dispose();
        _socket.Dispose();
        report?.Invoke(this, reason);
    }

    private void WriteLoop()
    {
        var batch = new byte[CoalescedWriteBytes];
        try
        {
            while (true)
            {
                var length = 0;
                var frames = 0;
                lock (_gate)
                {
                    while (_queue.Count == 0 && !_closed)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (_closed)
                    {
                        return;
                    }

                    while (_queue.TryPeek(out var envelope))
                    {
                        var frameLength = ReplicationChannelFrame.GetEncodedLength(envelope.Length);
                        if (length > 0 && length + frameLength > batch.Length)
                        {
                            break;
                        }

                        if (frameLength > batch.Length)
                        {
                            batch = new byte[frameLength];
                        }

                        length += ReplicationChannelFrame.Write(batch.AsSpan(length), envelope);
                        _queue.Dequeue();
                        _queuedBytes -= envelope.Length;
                        frames++;
                    }
                }

                _tls.Write(batch, 0, length);
                _tls.Flush();
                Interlocked.Add(ref _framesSent, frames);
                if (batch.Length > CoalescedWriteBytes)
                {
                    batch = new byte[CoalescedWriteBytes];
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or NotSupportedException)
        {
            Close($"write failed: {e.Message}");
        }
    }

    private void ReadLoop(Func<ReadOnlyMemory<byte>, bool> receive)
    {
        try
        {
            while (!IsClosed)
            {
                if (ReadEnvelope() is not { } envelope)
                {
                    Close("the peer closed it");
                    return;
                }

                if (!receive(envelope))
                {
                    Close("a frame was refused");
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidDataException or InvalidOperationException or NotSupportedException)
        {
            Close(e is InvalidDataException ? $"refused {e.Message}" : $"read failed: {e.Message}");
        }
    }
}

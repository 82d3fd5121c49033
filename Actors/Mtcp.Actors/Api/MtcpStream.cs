using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Mtcp.Actors.Endpoints;

namespace Mtcp.Actors.Api;

/// <summary>
/// The byte stream of one MTCP connection. A write completes once its bytes are in the connection's send buffer,
/// so a writer faster than the network waits instead of growing memory; a read takes bytes from the receive
/// buffer, whose window closes while nobody reads, so a slow reader slows the sender instead of growing memory.
/// One read and one write may be in flight at a time (as on a socket). Disposing closes gracefully: the bytes
/// already written are still delivered, then a FIN (RFC 9293 §3.10.4). <see cref="Shutdown"/> closes one direction
/// while the other goes on (a half-close), across migrations as well.
/// </summary>
public sealed class MtcpStream : Stream
{
    private readonly EndpointChannel _channel;
    private int _disposed;

    /// <summary>1 once a FIN was asked for (a shutdown of writing, or the stream disposed): it is asked for once.</summary>
    private int _finRequested;
    private int _readShutDown;

    internal MtcpStream(EndpointChannel channel) => _channel = channel;

    public IPEndPoint LocalEndPoint => new(_channel.LocalAddress.ToIPAddress(), _channel.Key.LocalPort);

    public IPEndPoint RemoteEndPoint => new(_channel.Key.RemoteAddress.ToIPAddress(), _channel.Key.RemotePort);

    /// <summary>
    /// The connection's first Cid (thesis 3.2.1): its first 4-tuple, which names it in the logs of every node it visits
    /// while <see cref="LocalEndPoint"/> and <see cref="RemoteEndPoint"/> change with each migration.
    /// </summary>
    public Mtcp.Wire.ConnectionId FirstCid => _channel.FirstCid;

    public override bool CanRead => Volatile.Read(ref _disposed) == 0;

    public override bool CanWrite => Volatile.Read(ref _disposed) == 0 && Volatile.Read(ref _finRequested) == 0;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (buffer.IsEmpty || Volatile.Read(ref _readShutDown) != 0)
        {
            return ValueTask.FromResult(0);
        }

        var token = _channel.Reader.Start(buffer, cancellationToken);
        _channel.Endpoint.Tell(ReadRequested.Instance);
        return new ValueTask<int>(_channel.Reader, token);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _finRequested) != 0)
        {
            return ValueTask.FromException(new IOException("writing was shut down on this stream (Shutdown(SocketShutdown.Send)): its FIN is sent or queued"));
        }

        if (buffer.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        var token = _channel.Writer.StartWrite(buffer, cancellationToken);
        _channel.Endpoint.Tell(WriteRequested.Instance);
        return new ValueTask(_channel.Writer, token);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var count = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, count).CopyTo(buffer);
            return count;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Nothing to do: a completed write's bytes are already the engine's to send, as with a socket.</summary>
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested ? Task.FromCanceled(cancellationToken) : Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// Shuts down one direction or both, as <see cref="Socket.Shutdown"/> does, and the stream stays open for the other.
    /// <see cref="SocketShutdown.Send"/>: a FIN follows the bytes already written (RFC 9293 §3.10.4) and later writes
    /// fail with <see cref="IOException"/>; reading goes on until the peer's FIN, so the peer sees the end of the
    /// stream and can still answer (a half-close). <see cref="SocketShutdown.Receive"/>: the pending read and every
    /// later one return 0 while writing goes on; the peer is not told, and bytes it still sends stay unread (its window
    /// closes), as on a socket. A connection migrates in either half-closed state: a server endpoint that shut down
    /// writing before its last snapshot resumes with its FIN sent (thesis 4.2.2, so_state SS_CANTSENDMORE).
    /// </summary>
    /// <exception cref="InvalidOperationException">writing is shut down while a write is in flight: await it first.</exception>
    public void Shutdown(SocketShutdown how)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (how is SocketShutdown.Receive or SocketShutdown.Both && Interlocked.Exchange(ref _readShutDown, 1) == 0)
        {
            _channel.Reader.EndOfStream();
        }

        if (how is SocketShutdown.Send or SocketShutdown.Both)
        {
            if (_channel.Writer.IsPending)
            {
                throw new InvalidOperationException("a write is in progress on this stream: the FIN would overtake it; await the write before Shutdown(SocketShutdown.Send)");
            }

            RequestFin();
        }
    }

    /// <summary>Abandons the connection: the peer gets a RST and pending calls fail (RFC 9293 §3.10.5).</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _channel.Endpoint.Tell(AbortRequested.Instance);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            RequestFin();
        }

        base.Dispose(disposing);
    }

    private void RequestFin()
    {
        if (Interlocked.Exchange(ref _finRequested, 1) == 0)
        {
            _channel.Endpoint.Tell(CloseRequested.Instance);
        }
    }

    public override string ToString() => $"MTCP stream {LocalEndPoint} <-> {RemoteEndPoint}";
}

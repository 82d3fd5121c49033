using System.Net;
using Akka.Actor;
using Mtcp.Actors.Endpoints;

namespace Mtcp.Actors.Api;

/// <summary>
/// The byte stream of one MTCP connection. A write completes once its bytes are in the connection's send buffer,
/// so a writer faster than the network waits instead of growing memory; a read takes bytes from the receive
/// buffer, whose window closes while nobody reads, so a slow reader slows the sender instead of growing memory.
/// One read and one write may be in flight at a time (as on a socket). Disposing closes gracefully: the bytes
/// already written are still delivered, then a FIN (RFC 9293 §3.10.4).
/// </summary>
public sealed class MtcpStream : Stream
{
    private readonly EndpointChannel _channel;
    private int _disposed;

    internal MtcpStream(EndpointChannel channel) => _channel = channel;

    public IPEndPoint LocalEndPoint => new(_channel.LocalAddress.ToIPAddress(), _channel.Key.LocalPort);

    public IPEndPoint RemoteEndPoint => new(_channel.Key.RemoteAddress.ToIPAddress(), _channel.Key.RemotePort);

    public override bool CanRead => Volatile.Read(ref _disposed) == 0;

    public override bool CanWrite => Volatile.Read(ref _disposed) == 0;

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
        if (buffer.IsEmpty)
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
            _channel.Endpoint.Tell(CloseRequested.Instance);
        }

        base.Dispose(disposing);
    }

    public override string ToString() => $"MTCP stream {LocalEndPoint} <-> {RemoteEndPoint}";
}

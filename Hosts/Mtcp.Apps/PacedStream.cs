namespace Mtcp.Apps;

/// <summary>
/// The server side of one visit of a connection, writing at the pace of a <see cref="DegradationCurve"/>: write
/// <c>n</c> is due <c>Interval(0) + ... + Interval(n - 1)</c> after the first. Waiting for a schedule rather than
/// sleeping each interval lets sub-millisecond intervals add up exactly with millisecond timers. A server that fell
/// behind (a stall longer than <see cref="MaxCatchUp"/>) does not burst to catch up.
/// </summary>
public sealed class PacedStream(Stream inner, DegradationCurve curve, TimeProvider time) : Stream
{
    private static readonly TimeSpan MaxCatchUp = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan TimerSlack = TimeSpan.FromMilliseconds(1);

    private readonly long _started = time.GetTimestamp();
    private TimeSpan _due;
    private long _writes;

    public override bool CanRead => inner.CanRead;

    public override bool CanWrite => inner.CanWrite;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var now = time.GetElapsedTime(_started);
        if (_due < now - MaxCatchUp)
        {
            _due = now - MaxCatchUp;
        }

        var wait = _due - now;
        if (wait >= TimerSlack)
        {
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }

        await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _due += curve.Interval(_writes++);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}

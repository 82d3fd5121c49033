using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using Mtcp.Stack;
using Mtcp.Stack.Migration;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// One direction of an application stream, shared between the stream (which starts a read or a write) and the
/// endpoint actor (which completes it from its engine). It is reused for every call, so a read or a write costs
/// no allocation; like a socket, a direction allows one call in flight at a time. The caller's buffer is only
/// touched by the actor while the call is pending, under the operation's lock, so a cancelled call never sees
/// its buffer written after the cancellation returned.
/// </summary>
internal sealed class StreamOperation : IValueTaskSource<int>, IValueTaskSource
{
    private readonly object _gate = new();
    private readonly string _direction;
    private readonly ExportsInFlight _exports;
    private ManualResetValueTaskSourceCore<int> _core = new() { RunContinuationsAsynchronously = true };
    private Memory<byte> _buffer;
    private int _transferred;
    private bool _pending;
    private CancellationTokenRegistration _cancellation;
    private CancellationToken _token;
    private bool _endOfStream;
    private string? _failure;
    private Exception? _failureCause;
    private Exception? _failureException;
    private bool _endOfStreamOnMigration;
    private bool _ended;

    /// <param name="exports">the connection's exports not yet taken by its actor: the actor serves this direction only when there are none.</param>
    public StreamOperation(string direction, ExportsInFlight exports)
    {
        _direction = direction;
        _exports = exports;
    }

    /// <summary>True while a call waits for the actor.</summary>
    public bool IsPending
    {
        get
        {
            lock (_gate)
            {
                return _pending;
            }
        }
    }

    /// <summary>
    /// True: <see cref="Emigrate"/> ends this direction as <see cref="EndOfStream"/> does, with no exception to throw
    /// (<see cref="Api.MtcpConnection.EndOfStreamOnMigration"/>, for reads); false: it fails every call with EMIGRATED.
    /// </summary>
    public bool EndOfStreamOnMigration
    {
        get
        {
            lock (_gate)
            {
                return _endOfStreamOnMigration;
            }
        }

        set
        {
            lock (_gate)
            {
                _endOfStreamOnMigration = value;
            }
        }
    }

    /// <summary>Starts a call over <paramref name="buffer"/>; the actor is told separately.</summary>
    /// <exception cref="InvalidOperationException">a call in this direction is still pending.</exception>
    public short Start(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_pending)
            {
                throw new InvalidOperationException($"another {_direction} is already in progress on this stream");
            }

            _core.Reset();
            var version = _core.Version;
            if (_failureException is not null)
            {
                _core.SetException(_failureException);
            }
            else if (_failure is not null)
            {
                _core.SetException(new IOException(_failure, _failureCause));
            }
            else if (_endOfStream)
            {
                _core.SetResult(0);
            }
            else if (cancellationToken.IsCancellationRequested)
            {
                _core.SetException(new OperationCanceledException(cancellationToken));
            }
            else
            {
                _buffer = buffer;
                _transferred = 0;
                _pending = true;
                _token = cancellationToken;
                if (cancellationToken.CanBeCanceled)
                {
                    // Runs inline if cancellation raced in; the lock is re-entrant, so Cancel completes the call here.
                    _cancellation = cancellationToken.UnsafeRegister(static state => ((StreamOperation)state!).Cancel(), this);
                }
            }

            return version;
        }
    }

    /// <summary>
    /// Actor side: reads what the engine holds into the pending read; completes it with 0 at end of stream. Not while an
    /// export is in flight (<see cref="ExportsInFlight"/>): checked under the lock the call was started under, after the
    /// application counted its export.
    /// </summary>
    public void ServeRead(IStreamBuffers connection, bool peerFinished)
    {
        lock (_gate)
        {
            if (!_pending || _exports.Any)
            {
                return;
            }

            var count = connection.Read(_buffer.Span);
            if (count > 0 || peerFinished)
            {
                Complete(count);
            }
        }
    }

    /// <summary>Actor side: moves as much of the pending write as the send buffer accepts; completes once all is in. Not while an export is in flight.</summary>
    public void ServeWrite(IStreamBuffers connection)
    {
        lock (_gate)
        {
            if (!_pending || _exports.Any)
            {
                return;
            }

            _transferred += connection.Write(_buffer.Span[_transferred..]);
            if (_transferred == _buffer.Length)
            {
                Complete(_transferred);
            }
        }
    }

    /// <summary>Actor side: no more data will come; the pending and every later read returns 0.</summary>
    public void EndOfStream()
    {
        lock (_gate)
        {
            _endOfStream = true;
            if (_pending)
            {
                Complete(0);
            }
        }
    }

    /// <summary>
    /// Actor side: the connection migrated away (thesis 4.2.3, EMIGRATED). The pending and every later call return 0 when
    /// <see cref="EndOfStreamOnMigration"/> is set, and fail with <paramref name="emigrated"/> otherwise; a later
    /// <see cref="Fail"/> (the endpoint stopping) changes neither.
    /// </summary>
    public void Emigrate(ConnectionMigratedException emigrated)
    {
        lock (_gate)
        {
            if (!_endOfStreamOnMigration)
            {
                FailWith(emigrated);
                return;
            }

            if (_failure is null)
            {
                _ended = true;
                EndOfStream();
            }
        }
    }

    /// <summary>Actor side: the connection is gone; the pending and every later call fails with an <see cref="IOException"/>.</summary>
    public void Fail(string reason, Exception? cause = null)
    {
        lock (_gate)
        {
            if (_failure is not null || _ended)
            {
                return;
            }

            _failure = reason;
            _failureCause = cause;
            if (_pending)
            {
                Finish();
                _core.SetException(new IOException(reason, cause));
            }
        }
    }

    /// <summary>
    /// Actor side: the pending and every later call fails with <paramref name="exception"/> itself, for a failure the
    /// application must tell from an I/O error (the connection migrated away, EMIGRATED).
    /// </summary>
    public void FailWith(Exception exception)
    {
        lock (_gate)
        {
            if (_failure is not null || _ended)
            {
                return;
            }

            _failure = exception.Message;
            _failureException = exception;
            if (_pending)
            {
                Finish();
                _core.SetException(exception);
            }
        }
    }

    /// <summary>Marks a write buffer as the call's buffer; the actor only reads it.</summary>
    public short StartWrite(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        Start(MemoryMarshal.AsMemory(buffer), cancellationToken);

    private void Cancel()
    {
        lock (_gate)
        {
            if (_pending)
            {
                Finish();
                _core.SetException(new OperationCanceledException(_token));
            }
        }
    }

    private void Complete(int result)
    {
        Finish();
        _core.SetResult(result);
    }

    private void Finish()
    {
        _pending = false;
        _buffer = default;
        _token = default;

        // Unregister, not Dispose: Dispose would wait for a running Cancel, which waits for this lock.
        _cancellation.Unregister();
        _cancellation = default;
    }

    public int GetResult(short token) => _core.GetResult(token);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

/// <summary>The byte stream an endpoint actor serves reads and writes from: one control block, or the client's MTCP socket.</summary>
internal interface IStreamBuffers
{
    int Read(Span<byte> destination);

    int Write(ReadOnlySpan<byte> data);
}

/// <summary>A server endpoint's (or plain client's) stream: one engine.</summary>
internal sealed class TcpConnectionBuffers(TcpConnection connection) : IStreamBuffers
{
    public int Read(Span<byte> destination) => connection.Read(destination);

    public int Write(ReadOnlySpan<byte> data) => connection.Write(data);
}

/// <summary>A migrating client's stream: the socket over its control blocks, which hides every migration.</summary>
internal sealed class ClientConnectionBuffers(MtcpClientConnection connection) : IStreamBuffers
{
    public int Read(Span<byte> destination) => connection.Read(destination);

    public int Write(ReadOnlySpan<byte> data) => connection.Write(data);
}

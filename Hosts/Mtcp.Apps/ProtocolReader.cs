using System.Text;

namespace Mtcp.Apps;

/// <summary>Thrown when a client's request does not follow the application's protocol.</summary>
public sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>
/// A small buffered reader for line-oriented protocols over a byte stream: lines end in LF (a preceding CR is
/// dropped), and binary payloads of known length can be read in between.
/// </summary>
/// <remarks>
/// The buffer starts at <see cref="InitialBufferBytes"/> and doubles only when a line does not fit, up to the line
/// limit: a server holds one reader per connection, most of them idle between short request lines, and a migrated
/// connection makes a new one on every node it visits (the scale benchmark's request server allocated 4.3 KB per
/// connection and per migration for a buffer its RESP lines never filled).
/// </remarks>
public sealed class ProtocolReader
{
    /// <summary>The buffer's first size in bytes: room for a request line of the sample applications' protocols.</summary>
    public const int InitialBufferBytes = 256;

    private readonly Stream _stream;
    private readonly int _limit;
    private byte[] _buffer;
    private int _start;
    private int _end;

    public ProtocolReader(Stream stream, int maxLineLength)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineLength, 16);
        _stream = stream;
        _limit = maxLineLength + 2;
        _buffer = new byte[Math.Min(_limit, InitialBufferBytes)];
    }

    /// <summary>The next line without its terminator; null at end of stream before any byte of a line.</summary>
    /// <exception cref="ProtocolViolationException">the line is longer than the limit, or the stream ends inside it.</exception>
    public async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start + scanned, _end - _start - scanned);
            if (newline >= 0)
            {
                var length = newline - _start;
                if (length > 0 && _buffer[newline - 1] == '\r')
                {
                    length--;
                }

                var line = Encoding.UTF8.GetString(_buffer, _start, length);
                _start = newline + 1;
                return line;
            }

            scanned = _end - _start;
            if (scanned >= _limit - 2)
            {
                throw new ProtocolViolationException($"a line is longer than {_limit - 2} bytes");
            }

            if (!await FillAsync(cancellationToken).ConfigureAwait(false))
            {
                return scanned == 0 ? null : throw new ProtocolViolationException("the stream ended inside a line");
            }
        }
    }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes.</summary>
    /// <exception cref="ProtocolViolationException">the stream ended first.</exception>
    public async ValueTask ReadExactlyAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var buffered = Math.Min(_end - _start, destination.Length);
        _buffer.AsMemory(_start, buffered).CopyTo(destination);
        _start += buffered;
        if (buffered < destination.Length)
        {
            try
            {
                await _stream.ReadExactlyAsync(destination[buffered..], cancellationToken).ConfigureAwait(false);
            }
            catch (EndOfStreamException)
            {
                throw new ProtocolViolationException("the stream ended inside a payload");
            }
        }
    }

    /// <summary>Reads what is buffered, or else from the stream: at most <paramref name="destination"/>.Length bytes, 0 at its end.</summary>
    public ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_end == _start)
        {
            return _stream.ReadAsync(destination, cancellationToken);
        }

        var count = Math.Min(_end - _start, destination.Length);
        _buffer.AsMemory(_start, count).CopyTo(destination);
        _start += count;
        return ValueTask.FromResult(count);
    }

    private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            // A line longer than the buffer, still within the limit (ReadLineAsync checks it before filling).
            Array.Resize(ref _buffer, Math.Min(_limit, _buffer.Length * 2));
        }

        var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        _end += read;
        return read > 0;
    }
}

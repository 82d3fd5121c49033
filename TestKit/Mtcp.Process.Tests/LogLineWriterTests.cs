using System.Text;
using Mtcp.Hosting;

namespace Mtcp.Process.Tests;

/// <summary>
/// The hosts' log writer (mtcp.hosts.log-flush-interval): at most one write per interval (a line after a quiet interval
/// at once, the lines soon after it together at the interval's end), a warning at once with every line before it,
/// nothing lost on flush, and the lines in their order and format.
/// </summary>
[Trait("Category", "Process")]
public sealed class LogLineWriterTests
{
    private static readonly DateTime At = new(2026, 12, 8, 1, 2, 3, 456, DateTimeKind.Utc);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_line_after_a_quiet_interval_must_go_out_at_once_and_the_lines_soon_after_it_in_one_write()
    {
        var output = new RecordingStream();
        using var writer = new LogLineWriter(output, TimeSpan.FromMilliseconds(500));

        writer.WriteLine(At, "INFO ", "Mtcp.Server", "first", null, urgent: false);
        writer.WriteLine(At, "INFO ", "Mtcp.Server", "second", null, urgent: false);
        writer.WriteLine(At, "DEBUG", "akka", "third", null, urgent: false);
        Assert.Equal(["01:02:03.456 INFO  Mtcp.Server: first\n"], output.Writes);

        var written = await output.NextWrite(1).WaitAsync(Bound);
        Assert.Equal("01:02:03.456 INFO  Mtcp.Server: second\n01:02:03.456 DEBUG akka: third\n", written);
        Assert.Equal(2, output.Writes.Count);
    }

    [Fact]
    public void A_warning_must_go_out_at_once_after_every_line_before_it()
    {
        var output = new RecordingStream();
        using var writer = new LogLineWriter(output, TimeSpan.FromHours(1));

        writer.WriteLine(At, "INFO ", "Mtcp.Server", "migration out", null, urgent: false);
        writer.WriteLine(At, "INFO ", "Mtcp.Server", "migration in", null, urgent: false);
        writer.WriteLine(At, "WARN ", "Mtcp.Server", "a warning", new InvalidOperationException("why"), urgent: true);

        Assert.Equal(2, output.Writes.Count);
        Assert.Equal($"01:02:03.456 INFO  Mtcp.Server: migration in\n01:02:03.456 WARN  Mtcp.Server: a warning\n{new InvalidOperationException("why")}\n", output.Writes[1]);
    }

    [Fact]
    public void A_zero_interval_must_write_each_line_as_it_is_logged()
    {
        var output = new RecordingStream();
        using var writer = new LogLineWriter(output, TimeSpan.Zero);

        writer.WriteLine(At, "INFO ", "Mtcp.Agent", "one", null, urgent: false);
        writer.WriteLine(At, "INFO ", "Mtcp.Agent", "two", null, urgent: false);

        Assert.Equal(["01:02:03.456 INFO  Mtcp.Agent: one\n", "01:02:03.456 INFO  Mtcp.Agent: two\n"], output.Writes);
    }

    [Fact]
    public void Flush_dispose_and_a_shorter_interval_must_write_what_is_buffered()
    {
        var output = new RecordingStream();
        var writer = new LogLineWriter(output, TimeSpan.FromHours(1));

        writer.WriteLine(At, "INFO ", "Mtcp.Server", "at once", null, urgent: false);
        writer.WriteLine(At, "INFO ", "Mtcp.Server", "flushed", null, urgent: false);
        writer.Flush();
        writer.WriteLine(At, "INFO ", "Mtcp.Server", "at the new interval", null, urgent: false);
        writer.FlushInterval = TimeSpan.Zero;
        writer.FlushInterval = TimeSpan.FromHours(1);
        writer.WriteLine(At, "INFO ", "Mtcp.Server", "disposed", null, urgent: false);
        writer.Dispose();

        Assert.Equal(
            ["01:02:03.456 INFO  Mtcp.Server: at once\n", "01:02:03.456 INFO  Mtcp.Server: flushed\n", "01:02:03.456 INFO  Mtcp.Server: at the new interval\n", "01:02:03.456 INFO  Mtcp.Server: disposed\n"],
            output.Writes);
    }

    [Fact]
    public void A_burst_must_go_out_once_the_buffer_is_full_whatever_the_interval()
    {
        var output = new RecordingStream();
        using var writer = new LogLineWriter(output, TimeSpan.FromHours(1));
        var message = new string('x', 1000);
        var lineBytes = "01:02:03.456 INFO  Mtcp.Server: ".Length + message.Length + 1;
        var linesToFill = (LogLineWriter.FlushBytes + lineBytes - 1) / lineBytes;

        // The first line goes out at once; then one line more than fills the buffer: it stays in the next one.
        for (var i = 0; i <= linesToFill + 1; i++)
        {
            writer.WriteLine(At, "INFO ", "Mtcp.Server", message, null, urgent: false);
        }

        Assert.Equal(2, output.Writes.Count);
        var write = output.Writes[1];
        Assert.True(Encoding.UTF8.GetByteCount(write) >= LogLineWriter.FlushBytes, $"{write.Length} chars written");
        Assert.Equal(linesToFill, write.Count(c => c == '\n'));
    }

    [Fact]
    public void A_negative_interval_must_be_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogLineWriter(new RecordingStream(), TimeSpan.FromMilliseconds(-1)));
        using var writer = new LogLineWriter(new RecordingStream(), TimeSpan.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.FlushInterval = TimeSpan.FromMilliseconds(-1));
    }

    /// <summary>A stream that records what each write brought, as UTF-8 text.</summary>
    private sealed class RecordingStream : Stream
    {
        private readonly List<string> _writes = [];
        private readonly List<TaskCompletionSource<string>> _awaited = [];

        /// <summary>The write after the first <paramref name="index"/> ones, when it comes.</summary>
        public Task<string> NextWrite(int index)
        {
            lock (_writes)
            {
                while (_awaited.Count <= index)
                {
                    _awaited.Add(new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
                }

                if (index < _writes.Count)
                {
                    _awaited[index].TrySetResult(_writes[index]);
                }

                return _awaited[index].Task;
            }
        }

        public IReadOnlyList<string> Writes
        {
            get
            {
                lock (_writes)
                {
                    return [.. _writes];
                }
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var text = Encoding.UTF8.GetString(buffer);
            lock (_writes)
            {
                _writes.Add(text);
                if (_writes.Count <= _awaited.Count)
                {
                    _awaited[_writes.Count - 1].TrySetResult(text);
                }
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

using System.Text;
using Mtcp.Apps;

namespace Mtcp.Process.Tests;

/// <summary>
/// The sample applications' line reader starts with a small buffer and grows it only for a long line, up to the
/// line limit: lines and payloads must read the same whatever the buffer's size.
/// </summary>
[Trait("Category", "Process")]
public sealed class ProtocolReaderTests
{
    [Fact]
    public async Task Reader_must_read_a_line_longer_than_its_first_buffer_and_the_payload_after_it()
    {
        var longLine = new string('x', (ProtocolReader.InitialBufferBytes * 10) + 7);
        var payload = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        using var stream = new MemoryStream([.. Encoding.UTF8.GetBytes($"short\r\n{longLine}\r\n"), .. payload, .. "last\n"u8.ToArray()]);
        var reader = new ProtocolReader(stream, maxLineLength: 4096);

        Assert.Equal("short", await reader.ReadLineAsync(CancellationToken.None));
        Assert.Equal(longLine, await reader.ReadLineAsync(CancellationToken.None));
        var read = new byte[payload.Length];
        await reader.ReadExactlyAsync(read, CancellationToken.None);
        Assert.Equal(payload, read);
        Assert.Equal("last", await reader.ReadLineAsync(CancellationToken.None));
        Assert.Null(await reader.ReadLineAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Reader_must_take_a_line_at_its_limit_and_refuse_one_byte_longer()
    {
        const int Limit = 1000;
        var atLimit = new string('a', Limit);
        using var fits = new MemoryStream(Encoding.UTF8.GetBytes(atLimit + "\r\n"));
        Assert.Equal(atLimit, await new ProtocolReader(fits, Limit).ReadLineAsync(CancellationToken.None));

        using var tooLong = new MemoryStream(Encoding.UTF8.GetBytes(atLimit + "b\r\n"));
        var error = await Assert.ThrowsAsync<ProtocolViolationException>(async () => await new ProtocolReader(tooLong, Limit).ReadLineAsync(CancellationToken.None));
        Assert.Contains($"longer than {Limit} bytes", error.Message, StringComparison.Ordinal);
    }
}

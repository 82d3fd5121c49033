using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Buffers on demand: a connection's ring storage follows the bytes it holds (grows toward the configured sizes,
/// which are maxima) and goes back to the pool when the connection is idle or closed, while the window it advertises
/// stays the configured maximum minus the unread bytes, its right edge never moving back (RFC 9293 §3.8.6).
/// </summary>
[Trait("Category", "Stack")]
public sealed class BufferMemoryTests
{
    private const int BufferSize = 256 * 1024;
    private const int WindowShift = 7;

    private static readonly TcpConfig Config = new()
    {
        SendBufferSize = BufferSize,
        ReceiveBufferSize = BufferSize,
        WindowScaleShift = WindowShift,
    };

    private static byte[] Bytes(int count) => Enumerable.Range(0, count).Select(i => (byte)(i * 31 + 7)).ToArray();

    [Fact]
    public void An_established_connection_must_hold_no_ring_storage_until_bytes_flow()
    {
        var link = new DirectLink(Config, Config);
        Assert.Equal(TcpState.Established, link.Client.State);
        Assert.Equal(0, link.Client.BufferStorageBytes);
        Assert.Equal(0, link.Server.BufferStorageBytes);
    }

    [Fact]
    public void Storage_must_grow_with_unread_bytes_and_return_when_read_and_acknowledged()
    {
        var link = new DirectLink(Config, Config);
        var rightEdges = new List<SeqNumber>();
        link.Drop = (sender, header) =>
        {
            if (sender == link.Server && header.Has(TcpFlags.Ack))
            {
                rightEdges.Add(header.AcknowledgmentNumber + (header.Window << WindowShift));
            }

            return false;
        };

        var stream = Bytes(192 * 1024);
        var written = 0;
        var received = new List<byte>();
        var chunk = new byte[16 * 1024];
        var peakServerStorage = 0;
        while (received.Count < stream.Length)
        {
            written += link.Client.Write(stream.AsSpan(written));
            link.Exchange();
            peakServerStorage = Math.Max(peakServerStorage, link.Server.BufferStorageBytes);

            // A slow reader: one chunk per round, so unread bytes pile up and the ring must grow.
            var read = link.Server.Read(chunk);
            received.AddRange(chunk.AsSpan(0, read).ToArray());
            link.Elapse(TimeSpan.FromMilliseconds(50));
        }

        Assert.Equal(stream, received);
        Assert.InRange(peakServerStorage, 64 * 1024, 2 * BufferSize);
        Assert.Equal(0, link.Server.BufferStorageBytes);
        Assert.Equal(0, link.Client.BufferStorageBytes);
        // RFC 7323 §2.4: with a scale factor the edge falls on a 2^shift boundary, so truncation alone may pull it back
        // by less than one unit; anything more would be a shrunk window.
        for (var i = 1; i < rightEdges.Count; i++)
        {
            Assert.True(rightEdges[i] - rightEdges[i - 1] > -(1 << WindowShift), $"the advertised right edge moved back at segment {i}: {rightEdges[i - 1]} -> {rightEdges[i]}");
        }
    }

    [Fact]
    public void A_small_exchange_must_take_small_storage()
    {
        var link = new DirectLink(Config, Config);
        link.Client.Write(Bytes(300));
        link.Exchange();
        Assert.InRange(link.Server.BufferStorageBytes, 300, 2 * PooledRing.MinimumStorage);
        Assert.Equal(300, link.Server.Read(new byte[1000]));
        Assert.Equal(0, link.Server.BufferStorageBytes);
    }

    [Fact]
    public void An_abort_must_give_back_unacknowledged_and_received_bytes()
    {
        var link = new DirectLink(Config, Config);
        link.Drop = (sender, _) => sender == link.Client; // nothing the client sends arrives: its bytes stay unacknowledged
        link.Client.Write(Bytes(20_000));
        link.Exchange();
        Assert.True(link.Client.BufferStorageBytes >= 20_000);

        link.Client.Abort(link.Now);
        Assert.Equal(TcpState.Closed, link.Client.State);
        Assert.Equal(0, link.Client.BufferStorageBytes);
    }

    [Fact]
    public void A_graceful_close_must_leave_no_storage_on_either_end()
    {
        var link = new DirectLink(Config, Config);
        link.Client.Write(Bytes(50_000));
        link.Server.Write(Bytes(30_000));
        link.Exchange();
        link.Client.Close(link.Now);
        link.Server.Close(link.Now);
        link.Exchange();
        Assert.Equal(50_000, link.Server.Read(new byte[64 * 1024]));
        Assert.Equal(30_000, link.Client.Read(new byte[64 * 1024]));
        link.Elapse(Config.TwoMsl + TimeSpan.FromSeconds(1));
        Assert.Equal(TcpState.Closed, link.Client.State);
        Assert.Equal(0, link.Client.BufferStorageBytes);
        Assert.Equal(0, link.Server.BufferStorageBytes);
    }
}

using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>The engine must not allocate per segment once a transfer is running (pooled rings, value-type headers).</summary>
[Trait("Category", "Stack")]
public sealed class AllocationTests
{
    [Fact]
    public void Steady_state_transfer_must_not_allocate()
    {
        var now = Instant.FromMilliseconds(1);
        var client = TcpConnection.Connect(TcpConfig.Default, 40000, 80, new SeqNumber(0xFFFF_0000), now);
        var server = TcpConnection.Listen(TcpConfig.Default, 80, new SeqNumber(0x7FFF_FFF0));
        var wire = new byte[65536];
        var data = new byte[16384];
        var sink = new byte[65536];
        new Random(5).NextBytes(data);

        // Warm up: handshake and a first megabyte, so every queue and buffer has reached its working size.
        var moved = Transfer(ref now, client, server, wire, data, sink, 1 << 20);
        Assert.Equal(1 << 20, moved);

        var before = GC.GetAllocatedBytesForCurrentThread();
        moved = Transfer(ref now, client, server, wire, data, sink, 4 << 20);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(4 << 20, moved);
        Assert.True(client.Stats.SegmentsSent > 2000, "the measured phase must cover thousands of segments");
        Assert.True(allocated < 1024, $"allocated {allocated} bytes while moving 4 MB");
    }

    /// <summary>Moves <paramref name="bytes"/> from client to server over a zero-loss, 100 µs hop.</summary>
    private static long Transfer(ref Instant now, TcpConnection client, TcpConnection server, byte[] wire, byte[] data, byte[] sink, long bytes)
    {
        long written = 0;
        long read = 0;
        for (var round = 0; read < bytes; round++)
        {
            Assert.True(round < 1_000_000, "transfer stalled");
            while (written < bytes && client.CanWrite && client.SendBufferFree > 0)
            {
                var accepted = client.Write(data.AsSpan(0, (int)Math.Min(data.Length, bytes - written)));
                written += accepted;
                if (accepted == 0)
                {
                    break;
                }
            }

            while (client.PollTransmit(now, wire, out var header, out var length))
            {
                server.HandleSegment(now, header, wire.AsSpan(0, length));
            }

            while (server.PollTransmit(now, wire, out var header, out var length))
            {
                client.HandleSegment(now, header, wire.AsSpan(0, length));
            }

            int n;
            while ((n = server.Read(sink)) > 0)
            {
                read += n;
            }

            while (client.PollEvent(out _) || server.PollEvent(out _))
            {
            }

            now += TimeSpan.FromMicroseconds(100);
            FireDueTimer(client, now);
            FireDueTimer(server, now);
        }

        return read;
    }

    private static void FireDueTimer(TcpConnection connection, Instant now)
    {
        if (connection.PollTimeout() is { } deadline && deadline <= now)
        {
            connection.HandleTimeout(now);
        }
    }
}

using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Interop.Tests;

/// <summary>Helpers shared by the transport tests: seeded segment bytes and a receive that must succeed.</summary>
internal static class TransportAssertions
{
    public static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Segment-shaped bytes; the transports carry any bytes, so content is seeded random.</summary>
    public static byte[] SeededBytes(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static byte[] ReceiveOne(IPacketTransport transport, byte[] buffer, IpAddress expectedSource)
    {
        var outcome = transport.Receive(buffer, ReceiveTimeout, out var received);
        Assert.Equal(ReceiveOutcome.Received, outcome);
        Assert.Equal(expectedSource, received.Source);
        Assert.Equal(transport.LocalAddress, received.Destination);
        return received.SliceOf(buffer.AsSpan()).ToArray();
    }

    /// <summary>Sends segments of the given sizes from one transport and checks each arrives intact at the other.</summary>
    public static void AssertCarries(IPacketTransport from, IPacketTransport to, int seed, params int[] lengths)
    {
        var buffer = new byte[to.ReceiveBufferLength];
        foreach (var length in lengths)
        {
            var segment = SeededBytes(seed + length, length);
            Assert.True(from.Send(to.LocalAddress, segment), $"send of {length} bytes was dropped locally");
            var arrived = ReceiveOne(to, buffer, from.LocalAddress);
            Assert.Equal(length, arrived.Length);
            Assert.True(segment.AsSpan().SequenceEqual(arrived), $"the {length}-byte segment arrived altered");
        }
    }

    /// <summary>
    /// Receives a batch of queued segments on the calling thread and checks that the receive path
    /// allocated nothing: buffers are the caller's and addresses are values.
    /// </summary>
    public static void AssertReceiveAllocatesNothing(IPacketTransport from, IPacketTransport to)
    {
        const int WarmUp = 50;
        const int Measured = 500;
        var segment = SeededBytes(7, 100);
        var buffer = new byte[to.ReceiveBufferLength];
        for (var i = 0; i < WarmUp + Measured; i++)
        {
            Assert.True(from.Send(to.LocalAddress, segment));
        }

        for (var i = 0; i < WarmUp; i++)
        {
            Assert.Equal(ReceiveOutcome.Received, to.Receive(buffer, ReceiveTimeout, out _));
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        var receivedCount = 0;
        for (var i = 0; i < Measured; i++)
        {
            if (to.Receive(buffer, ReceiveTimeout, out _) == ReceiveOutcome.Received)
            {
                receivedCount++;
            }
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(Measured, receivedCount);
        Assert.True(allocated == 0, $"receiving {Measured} segments allocated {allocated} bytes");
    }

    /// <summary>Blocks a thread in an unlimited receive, disposes the transport, and checks the receive ends as Closed.</summary>
    public static void AssertDisposeEndsBlockingReceive(IPacketTransport transport)
    {
        var outcome = ReceiveOutcome.Received;
        var receiver = new Thread(() => outcome = transport.Receive(new byte[transport.ReceiveBufferLength], Timeout.InfiniteTimeSpan, out _))
        {
            IsBackground = true,
        };
        receiver.Start();
        Thread.Sleep(100);
        transport.Dispose();
        Assert.True(receiver.Join(TimeSpan.FromSeconds(5)), $"receive on {transport} did not return after dispose");
        Assert.Equal(ReceiveOutcome.Closed, outcome);
        Assert.Throws<ObjectDisposedException>(() => transport.Send(transport.LocalAddress, new byte[20]));
    }
}

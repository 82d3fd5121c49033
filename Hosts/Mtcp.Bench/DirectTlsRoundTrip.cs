using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Mtcp.Hosting;

namespace Mtcp.Bench;

/// <summary>
/// The control round trip's baseline for a direct replication channel (docs/failover.md): the same messages, there and
/// back one at a time and then in bulk, over one kernel TCP connection on the same loopback address with mutual TLS
/// (<see cref="SslStream"/>, the nodes' certificates and peer check, <see cref="ControlPlaneSecurity"/>), each side read
/// and written by a dedicated thread; messages framed by a 4-byte big-endian length. Measured in the same run as
/// <see cref="ControlRoundTrip"/>, so their ratio says what leaving Akka.Remote's pipeline would save at this load.
/// </summary>
internal static class DirectTlsRoundTrip
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <inheritdoc cref="ControlRoundTrip.MeasureAsync"/>
    public static async Task<(double[] RoundTripsUs, double BulkBytesPerSecond)> MeasureAsync(
        string scratch, IPAddress address, int count, int warmUp, long bulkBytes, int bulkMessageBytes, int bulkWindow, CancellationToken cancellationToken)
    {
        var certificates = Directory.CreateDirectory(Path.Combine(scratch, "direct-round-trip")).FullName;
        ClusterCertificates.CreateAuthority(certificates, "mtcp-bench-direct-round-trip-ca", TimeSpan.FromDays(1));
        var asking = ControlPlaneSecurity.Read(ControlRoundTrip.NodeConfig(certificates, address, "asking"));
        var answering = ControlPlaneSecurity.Read(ControlRoundTrip.NodeConfig(certificates, address, "answering"));
        using var listener = new TcpListener(address, 0);
        listener.Start(1);
        var answerer = Task.Factory.StartNew(() => Answer(listener, answering), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(address, ((IPEndPoint)listener.LocalEndpoint).Port, cancellationToken);
        await using var tls = new SslStream(client.GetStream());
        using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            handshake.CancelAfter(Patience);
            await tls.AuthenticateAsClientAsync(asking.ClientAuthentication(address.ToString()), handshake.Token);
        }

        var result = await Task.Factory.StartNew(() => Ask(tls, count, warmUp, bulkBytes, bulkMessageBytes, bulkWindow), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        tls.Close();
        await answerer;
        return result;
    }

    private static (double[] RoundTripsUs, double BulkBytesPerSecond) Ask(SslStream tls, int count, int warmUp, long bulkBytes, int bulkMessageBytes, int bulkWindow)
    {
        var message = new byte[ControlRoundTrip.MessageBytes];
        var answer = new byte[ControlRoundTrip.MessageBytes];
        var roundTrips = new List<double>(count);
        for (var i = 0; i < warmUp + count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            Write(tls, message);
            Read(tls, answer);
            if (i >= warmUp)
            {
                roundTrips.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            }
        }

        // Bulk: this thread writes, a second reads the acks, at most bulkWindow messages unacknowledged.
        var messages = (int)(bulkBytes / bulkMessageBytes);
        var bulk = new byte[bulkMessageBytes];
        using var window = new SemaphoreSlim(bulkWindow, bulkWindow);
        var bulkStarted = Stopwatch.GetTimestamp();
        var acks = new Thread(() =>
        {
            var ack = new byte[ControlRoundTrip.MessageBytes];
            for (var i = 0; i < messages; i++)
            {
                Read(tls, ack);
                window.Release();
            }
        });
        acks.Start();
        for (var i = 0; i < messages; i++)
        {
            if (!window.Wait(Patience))
            {
                throw new TimeoutException($"no ack within {Patience}");
            }

            Write(tls, bulk);
        }

        acks.Join();
        return ([.. roundTrips], (double)messages * bulkMessageBytes / Stopwatch.GetElapsedTime(bulkStarted).TotalSeconds);
    }

    /// <summary>The answering side: a small message comes back as it is, a larger one is answered by a small one, until the asker closes.</summary>
    private static void Answer(TcpListener listener, ControlPlaneSecurity security)
    {
        using var accepted = listener.AcceptTcpClient();
        accepted.NoDelay = true;
        using var tls = new SslStream(accepted.GetStream());
        tls.AuthenticateAsServer(security.ServerAuthentication());
        var buffer = new byte[1 << 20];
        var ack = new byte[ControlRoundTrip.MessageBytes];
        while (TryReadLength(tls, out var length))
        {
            tls.ReadExactly(buffer, 0, length);
            Write(tls, length <= ControlRoundTrip.MessageBytes ? buffer.AsSpan(0, length) : ack);
        }
    }

    /// <summary>One frame in one write (one TLS record where it fits).</summary>
    private static void Write(SslStream tls, ReadOnlySpan<byte> message)
    {
        var frame = ArrayPool<byte>.Shared.Rent(sizeof(int) + message.Length);
        BinaryPrimitives.WriteInt32BigEndian(frame, message.Length);
        message.CopyTo(frame.AsSpan(sizeof(int)));
        tls.Write(frame, 0, sizeof(int) + message.Length);
        tls.Flush();
        ArrayPool<byte>.Shared.Return(frame);
    }

    private static void Read(SslStream tls, byte[] message)
    {
        if (!TryReadLength(tls, out var length) || length != message.Length)
        {
            throw new IOException("the answer is not a message of the length sent");
        }

        tls.ReadExactly(message);
    }

    private static bool TryReadLength(SslStream tls, out int length)
    {
        Span<byte> header = stackalloc byte[sizeof(int)];
        if (tls.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length)
        {
            length = 0;
            return false;
        }

        length = BinaryPrimitives.ReadInt32BigEndian(header);
        return length is > 0 and <= 1 << 20;
    }
}

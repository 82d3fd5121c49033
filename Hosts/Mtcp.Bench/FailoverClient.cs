using System.Diagnostics;
using System.Net;
using System.Text;
using Mtcp.Actors.Api;

namespace Mtcp.Bench;

/// <summary>One download of a file: its body as received, every read's time and the body's length after it, the migrations.</summary>
internal sealed record TimedDownload(byte[] Body, long[] ReadTimestamps, long[] BodyLengths, IReadOnlyList<(long Timestamp, MigrationReport Report)> Migrations, string? Failure);

/// <summary>The failover benchmark's client: an MTCP client of the benchmark's own runtime, speaking HTTP/1.1 and RESP.</summary>
internal static class FailoverClient
{
    private const int ReadBuffer = 64 * 1024;

    /// <summary>
    /// GETs <paramref name="path"/> from the file server and reads until the server closes, keeping every byte and the
    /// time of every read; <paramref name="bodyReceived"/> is called with the body's length after each read.
    /// </summary>
    public static async Task<TimedDownload> DownloadAsync(MtcpRuntime runtime, IPEndPoint service, string path, long expectedLength, CancellationToken cancellationToken, Action<long>? bodyReceived = null)
    {
        var migrations = new List<(long, MigrationReport)>();
        using var client = new MtcpClient(runtime);
        client.MigrationEnded += (_, report) =>
        {
            lock (migrations)
            {
                migrations.Add((Stopwatch.GetTimestamp(), report));
            }
        };

        // Room for every byte twice over: a duplicated range must be seen to be counted.
        var received = new byte[(expectedLength * 2) + ReadBuffer];
        var length = 0;
        var bodyStart = -1;
        var timestamps = new List<long>();
        var lengths = new List<long>();
        string? failure = null;
        try
        {
            var stream = await client.ConnectAsync(service, cancellationToken);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /{path} HTTP/1.1\r\nHost: {service}\r\n\r\n"), cancellationToken);
            while (length < received.Length - ReadBuffer)
            {
                var read = await stream.ReadAsync(received.AsMemory(length, ReadBuffer), cancellationToken);
                if (read == 0)
                {
                    break;
                }

                length += read;
                if (bodyStart < 0)
                {
                    var end = received.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
                    bodyStart = end < 0 ? -1 : end + 4;
                }

                timestamps.Add(Stopwatch.GetTimestamp());
                lengths.Add(bodyStart < 0 ? 0 : length - bodyStart);
                bodyReceived?.Invoke(lengths[^1]);
            }
        }
        catch (IOException e)
        {
            failure = e.Message;
        }

        var body = bodyStart < 0 ? [] : received[bodyStart..length];
        lock (migrations)
        {
            return new TimedDownload(body, [.. timestamps], [.. lengths], [.. migrations], failure);
        }
    }

    /// <summary>
    /// Pipelined RESP ECHOs of <paramref name="valueBytes"/> random bytes, at most <paramref name="window"/> unanswered,
    /// until <paramref name="totalBytes"/> went up; every answer checked. Returns the client's bytes per second.
    /// </summary>
    public static async Task<double> EchoGoodputAsync(MtcpRuntime runtime, IPEndPoint service, long totalBytes, int valueBytes, int window, CancellationToken cancellationToken)
    {
        using var client = new MtcpClient(runtime);
        var stream = await client.ConnectAsync(service, cancellationToken);
        var value = new byte[valueBytes];
        new Random(7).NextBytes(value);
        var request = Encoding.ASCII.GetBytes($"*2\r\n$4\r\nECHO\r\n${valueBytes}\r\n").Concat(value).Concat("\r\n"u8.ToArray()).ToArray();
        var answer = Encoding.ASCII.GetBytes($"${valueBytes}\r\n").Concat(value).Concat("\r\n"u8.ToArray()).ToArray();
        var requests = (int)Math.Max(1, totalBytes / valueBytes);
        using var slots = new SemaphoreSlim(window);
        var started = Stopwatch.GetTimestamp();
        var writer = Task.Run(
            async () =>
            {
                for (var i = 0; i < requests; i++)
                {
                    await slots.WaitAsync(cancellationToken);
                    await stream.WriteAsync(request, cancellationToken);
                }
            },
            cancellationToken);
        var reply = new byte[answer.Length];
        for (var i = 0; i < requests; i++)
        {
            await stream.ReadExactlyAsync(reply, cancellationToken);
            if (!reply.AsSpan().SequenceEqual(answer))
            {
                throw new InvalidOperationException($"ECHO {i} came back different");
            }

            slots.Release();
        }

        await writer;
        return (double)requests * request.Length / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>Round trips of one RESP PING each, one at a time, after <paramref name="warmUp"/> unmeasured ones; microseconds.</summary>
    public static async Task<double[]> PingRoundTripsAsync(MtcpRuntime runtime, IPEndPoint service, int count, int warmUp, CancellationToken cancellationToken)
    {
        using var client = new MtcpClient(runtime);
        var stream = await client.ConnectAsync(service, cancellationToken);
        var ping = "PING\r\n"u8.ToArray();
        var pong = new byte["+PONG\r\n"u8.Length];
        var roundTrips = new double[count];
        for (var i = -warmUp; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await stream.WriteAsync(ping, cancellationToken);
            await stream.ReadExactlyAsync(pong, cancellationToken);
            if (!pong.AsSpan().SequenceEqual("+PONG\r\n"u8))
            {
                throw new InvalidOperationException($"PING {i} was answered with {Encoding.ASCII.GetString(pong)}");
            }

            if (i >= 0)
            {
                roundTrips[i] = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
            }
        }

        return roundTrips;
    }
}

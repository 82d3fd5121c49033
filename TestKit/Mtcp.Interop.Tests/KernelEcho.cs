using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Mtcp.Interop.Tests;

/// <summary>
/// The kernel-TCP side of the echo transfers: a server that echoes one connection until end of
/// stream, and a client that sends a payload while reading the echo back, SHA-256 checked.
/// </summary>
internal static class KernelEcho
{
    public const int TransferBytes = 10 * 1024 * 1024;

    public static byte[] Payload(int seed, int length = TransferBytes)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Accepts one connection and echoes it until the peer shuts down its sending side, then closes.</summary>
    public static Thread StartEchoServer(Socket listener, Action<Exception> onFailure)
    {
        var thread = new Thread(() =>
        {
            try
            {
                using var connection = listener.Accept();
                Echo(connection);
            }
            catch (Exception e)
            {
                onFailure(e);
            }
        })
        {
            IsBackground = true,
            Name = "kernel echo server",
        };
        thread.Start();
        return thread;
    }

    public static void Echo(Socket connection)
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = connection.Receive(buffer)) > 0)
        {
            connection.Send(buffer.AsSpan(0, read));
        }

        connection.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Sends <paramref name="payload"/> on a connected socket while receiving the echo; returns the echo's length and hash and the elapsed time.</summary>
    public static (long Length, byte[] Sha256, TimeSpan Elapsed) SendAndReceiveEcho(Socket connection, byte[] payload, TimeSpan timeout)
    {
        connection.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        connection.SendTimeout = (int)timeout.TotalMilliseconds;
        var stopwatch = Stopwatch.StartNew();
        Exception? sendFailure = null;
        var sender = new Thread(() =>
        {
            try
            {
                var sent = 0;
                while (sent < payload.Length)
                {
                    sent += connection.Send(payload.AsSpan(sent, Math.Min(64 * 1024, payload.Length - sent)));
                }

                connection.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e)
            {
                sendFailure = e;
            }
        })
        {
            IsBackground = true,
            Name = "kernel echo client sender",
        };
        sender.Start();

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long received = 0;
        int read;
        while ((read = connection.Receive(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            received += read;
        }

        stopwatch.Stop();
        sender.Join();
        if (sendFailure is not null)
        {
            throw new InvalidOperationException("sending the payload failed", sendFailure);
        }

        return (received, hash.GetHashAndReset(), stopwatch.Elapsed);
    }
}

using System.Security.Cryptography;
using Akka.Configuration;
using Mtcp.TestKit;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>Configuration and byte-moving helpers shared by the runtime tests.</summary>
internal static class RuntimeTestSupport
{
    /// <summary>Short TIME-WAIT so that endpoints stop soon after a test's connections close.</summary>
    public const string FastCloseConfig = """
        mtcp.tcp.maximum-segment-lifetime = 200ms
        akka.loglevel = INFO
        """;

    public static Config NodeConfig(string address, string transport = "memory", string extra = "") =>
        ConfigurationFactory.ParseString($"""
            mtcp.runtime.transport = {transport}
            mtcp.runtime.local-address = "{address}"
            {extra}
            """);

    /// <summary>Writes <paramref name="length"/> bytes of the pattern stream <paramref name="key"/>; returns their SHA-256.</summary>
    public static async Task<byte[]> WritePatternAsync(Stream stream, ulong key, long length, int chunk, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[chunk];
        for (long offset = 0; offset < length; offset += chunk)
        {
            var count = (int)Math.Min(chunk, length - offset);
            StreamPattern.Fill(key, offset, buffer.AsSpan(0, count));
            hash.AppendData(buffer, 0, count);
            await stream.WriteAsync(buffer.AsMemory(0, count), cancellationToken);
        }

        return hash.GetHashAndReset();
    }

    /// <summary>Reads until <paramref name="length"/> bytes arrived, or until end of stream when length is null.</summary>
    public static async Task<(long Length, byte[] Sha256)> ReadAllAsync(Stream stream, long? length, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long total = 0;
        while (length is null || total < length)
        {
            var want = length is { } l ? (int)Math.Min(buffer.Length, l - total) : buffer.Length;
            var read = await stream.ReadAsync(buffer.AsMemory(0, want), cancellationToken);
            if (read == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, read);
            total += read;
        }

        return (total, hash.GetHashAndReset());
    }

    /// <summary>
    /// Moves <paramref name="bytes"/> each way over one connection at once and checks both directions by SHA-256.
    /// The server reads exactly what the client sends, writes its own bytes, and closes; the client reads until
    /// the server's FIN, so the graceful close is part of the check.
    /// </summary>
    public static async Task ExchangeBothWaysAsync(Stream client, Stream server, long bytes, int chunk, CancellationToken cancellationToken)
    {
        var serverSide = Task.Run(async () =>
        {
            var reading = ReadAllAsync(server, bytes, cancellationToken);
            var sent = await WritePatternAsync(server, key: 2, bytes, chunk, cancellationToken);
            var received = await reading;
            await server.DisposeAsync();
            return (sent, received);
        }, cancellationToken);

        var clientReading = ReadAllAsync(client, length: null, cancellationToken);
        var clientSent = await WritePatternAsync(client, key: 1, bytes, chunk, cancellationToken);
        var clientReceived = await clientReading;
        var (serverSent, serverReceived) = await serverSide;
        await client.DisposeAsync();

        Assert.Equal(bytes, serverReceived.Length);
        Assert.Equal(Convert.ToHexString(clientSent), Convert.ToHexString(serverReceived.Sha256));
        Assert.Equal(bytes, clientReceived.Length);
        Assert.Equal(Convert.ToHexString(serverSent), Convert.ToHexString(clientReceived.Sha256));
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Wire;

namespace Mtcp.Bench;

/// <summary>The client process of the scale benchmark: its transport, its local addresses, and the two service endpoints.</summary>
internal sealed record ScaleClientOptions(string Transport, IReadOnlyList<string> Addresses, IReadOnlyList<ServerEndpoint> Services);

/// <summary>Connections opened: how long it took and how many failed.</summary>
internal sealed record ScaleOpenResult(int Opened, int Failed, double Seconds, string? FirstError);

/// <summary>
/// Bytes echoed through every connection and checked: <paramref name="BytesLost"/> counts the echoed payload bytes
/// that did not come back, or came back different; <paramref name="SegmentsReceived"/> is the client's packet actors' count.
/// </summary>
internal sealed record ScaleEchoResult(long BytesEchoed, long BytesLost, int ConnectionsFailed, double Seconds, long SegmentsReceived, long AllocatedBytes, string? FirstError);

/// <summary>The migration phase as the client saw it: completed and failed migrations, waits, and one count per second.</summary>
internal sealed record ScaleMigrateResult(
    int Completed,
    int Failed,
    double Seconds,
    double WaitP50Ms,
    double WaitP99Ms,
    int[] CompletedPerSecond,
    Dictionary<string, int> FailureReasons);

/// <summary>
/// A process's managed memory and garbage collection since it started; <paramref name="LiveBytesAfterGen2"/> is what
/// survived its last gen2 collection (the live heap without garbage), 0 before the first.
/// </summary>
internal sealed record ScaleProcessStats(long HeapBytes, long AllocatedBytes, double GcPauseMs, int Gen0, int Gen1, int Gen2, long LiveBytesAfterGen2);

/// <summary>
/// The <c>scale-client</c> sub-command: a client process that opens many MTCP connections to the request server
/// (RESP ECHO) of one node, through one runtime per local address (each address has its own ephemeral port range),
/// and does what the orchestrating <c>scale</c> command writes on its standard input, one command a line:
/// <c>open N CONCURRENCY</c>, <c>echo BYTES</c>, <c>migrate SECONDS IN-FLIGHT</c>, <c>verify</c>, <c>stats</c>,
/// <c>quit</c>. Each is answered on standard output by one line, <see cref="ReplyPrefix"/> then "ok" and the result as
/// JSON, or "error" and a message.
/// </summary>
internal sealed class ScaleClient
{
    public const string ReplyPrefix = "scale-client: ";
    public const string ReadyLine = ReplyPrefix + "ready";
    private const int EchoRequestBytes = 4096;
    private const int VerifyBytes = 1024;
    private const int EchoConcurrency = 256;

    internal static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private readonly ScaleClientOptions _options;
    private readonly List<MtcpRuntime> _runtimes = [];
    private ScaleConnection?[] _connections = [];

    private ScaleClient(ScaleClientOptions options) => _options = options;

    public static async Task<int> RunAsync(ScaleClientOptions options, CancellationToken cancellationToken)
    {
        // The client's configuration is the reference one (MSL 30 s, the shipped ephemeral port range) with its
        // transport and addresses; one runtime per address.
        var system = ActorSystem.Create("scale-client", MtcpConfig.WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING")));
        var client = new ScaleClient(options);
        try
        {
            for (var i = 0; i < options.Addresses.Count; i++)
            {
                var runtime = MtcpRuntime.Start(system, fabric: null, ConfigurationFactory.ParseString($"mtcp.runtime.transport = {options.Transport}\nmtcp.runtime.local-address = \"{options.Addresses[i]}\""), $"mtcp-{i}");
                await runtime.EnableClientMigrationAsync(cancellationToken);
                client._runtimes.Add(runtime);
            }

            Console.WriteLine(ReadyLine);
            while (await Console.In.ReadLineAsync(cancellationToken) is { } line)
            {
                var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words.Length == 0)
                {
                    continue;
                }

                if (words[0] == "quit")
                {
                    break;
                }

                try
                {
                    object result = words[0] switch
                    {
                        "open" => await client.OpenAsync(Number(words, 1), Number(words, 2), cancellationToken),
                        "echo" => await client.EchoAsync(Number(words, 1), EchoRequestBytes, cancellationToken),
                        "verify" => await client.EchoAsync(VerifyBytes, VerifyBytes, cancellationToken),
                        "migrate" => await client.MigrateAsync(TimeSpan.FromSeconds(Number(words, 1)), Number(words, 2), cancellationToken),
                        "stats" => Stats(),
                        _ => throw new ArgumentException($"unknown command '{words[0]}'"),
                    };
                    Console.WriteLine(ReplyPrefix + "ok " + JsonSerializer.Serialize(result, result.GetType(), Json));
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
                {
                    Console.WriteLine(ReplyPrefix + "error " + e.Message.ReplaceLineEndings(" "));
                }
            }
        }
        finally
        {
            foreach (var connection in client._connections)
            {
                connection?.Client.Dispose();
            }

            foreach (var runtime in client._runtimes)
            {
                await runtime.DisposeAsync();
            }

            await system.Terminate();
        }

        return 0;
    }

    public static ScaleProcessStats Stats()
    {
        var blocking = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        var background = GC.GetGCMemoryInfo(GCKind.Background);
        return new(
            GC.GetTotalMemory(forceFullCollection: false),
            GC.GetTotalAllocatedBytes(),
            GC.GetTotalPauseDuration().TotalMilliseconds,
            GC.CollectionCount(0),
            GC.CollectionCount(1),
            GC.CollectionCount(2),
            (background.Index > blocking.Index ? background : blocking).PromotedBytes);
    }

    private static int Number(string[] words, int index) =>
        words.Length > index && int.TryParse(words[index], NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"'{string.Join(' ', words)}': argument {index} must be a positive number");

    /// <summary>Opens <paramref name="count"/> connections to the first service endpoint, at most <paramref name="concurrency"/> handshakes at a time.</summary>
    private async Task<ScaleOpenResult> OpenAsync(int count, int concurrency, CancellationToken cancellationToken)
    {
        _connections = new ScaleConnection?[count];
        var service = new IPEndPoint(_options.Services[0].Address.ToIPAddress(), _options.Services[0].Port);
        var failed = 0;
        string? firstError = null;
        var started = Stopwatch.GetTimestamp();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken }, async (i, token) =>
        {
            var client = new MtcpClient(_runtimes[i % _runtimes.Count]);
            try
            {
                var stream = await client.ConnectAsync(service, token);
                _connections[i] = new ScaleConnection(client, stream);
            }
            catch (IOException e)
            {
                client.Dispose();
                Interlocked.Increment(ref failed);
                Interlocked.CompareExchange(ref firstError, e.Message, null);
            }
        });
        return new ScaleOpenResult(count - failed, failed, Stopwatch.GetElapsedTime(started).TotalSeconds, firstError);
    }

    /// <summary>
    /// Echoes <paramref name="bytes"/> through every open connection in ECHO requests of <paramref name="requestBytes"/>
    /// payload bytes, each a pattern of its connection and request, and checks every byte of the answers.
    /// </summary>
    private async Task<ScaleEchoResult> EchoAsync(int bytes, int requestBytes, CancellationToken cancellationToken)
    {
        long lost = 0;
        long echoed = 0;
        var failedConnections = 0;
        string? firstError = null;
        var segmentsBefore = await SegmentsReceivedAsync(cancellationToken);
        var allocatedBefore = GC.GetTotalAllocatedBytes();
        var started = Stopwatch.GetTimestamp();
        await Parallel.ForEachAsync(Enumerable.Range(0, _connections.Length), new ParallelOptions { MaxDegreeOfParallelism = EchoConcurrency, CancellationToken = cancellationToken }, async (i, _) =>
        {
            if (_connections[i] is not { } connection)
            {
                return;
            }

            var request = new byte[requestBytes + 64];
            var answer = new byte[requestBytes + 64];
            for (var done = 0; done < bytes; done += requestBytes)
            {
                var length = Math.Min(requestBytes, bytes - done);
                try
                {
                    var matching = await connection.EchoAsync(request, answer, length, cancellationToken);
                    Interlocked.Add(ref lost, length - matching);
                    Interlocked.Add(ref echoed, length);
                }
                catch (Exception e) when (e is IOException or InvalidDataException or OperationCanceledException)
                {
                    // The connection is broken: what it had left to echo is lost.
                    Interlocked.Add(ref lost, bytes - done);
                    Interlocked.Add(ref echoed, bytes - done);
                    Interlocked.Increment(ref failedConnections);
                    Interlocked.CompareExchange(ref firstError, $"connection {i}: {e.Message}", null);
                    return;
                }
            }
        });
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
        return new ScaleEchoResult(echoed, lost, failedConnections, seconds, await SegmentsReceivedAsync(cancellationToken) - segmentsBefore, allocated, firstError);
    }

    private async Task<long> SegmentsReceivedAsync(CancellationToken cancellationToken)
    {
        long segments = 0;
        foreach (var runtime in _runtimes)
        {
            segments += (await runtime.GetStatisticsAsync(cancellationToken)).SegmentsReceived;
        }

        return segments;
    }

    /// <summary>
    /// For <paramref name="duration"/>, <paramref name="inFlight"/> workers migrate connections in turn to the other
    /// server; a connection migrating already is passed over.
    /// </summary>
    private async Task<ScaleMigrateResult> MigrateAsync(TimeSpan duration, int inFlight, CancellationToken cancellationToken)
    {
        var open = _connections.Where(c => c is not null).Select(c => c!).ToArray();
        if (open.Length == 0)
        {
            throw new InvalidOperationException("no connection is open");
        }

        var perSecond = new int[(int)Math.Ceiling(duration.TotalSeconds)];
        var waits = new List<double>[inFlight];
        var reasons = new Dictionary<string, int>();
        var failed = 0;
        var next = -1;
        var started = Stopwatch.GetTimestamp();
        var workers = Enumerable.Range(0, inFlight).Select(worker => Task.Run(
            async () =>
            {
                var own = waits[worker] = [];
                while (Stopwatch.GetElapsedTime(started) < duration)
                {
                    var connection = open[(int)((uint)Interlocked.Increment(ref next) % (uint)open.Length)];
                    if (Interlocked.CompareExchange(ref connection.Migrating, 1, 0) != 0)
                    {
                        continue;
                    }

                    try
                    {
                        // The server the connection is on now, not where this loop last moved it: a client failover
                        // (a server that fell silent under load) may have moved it to the other one meanwhile.
                        var to = connection.IsOn(_options.Services[0]) ? _options.Services[1] : _options.Services[0];
                        var report = await connection.Client.MigrateAsync(to, cancellationToken);
                        if (report.Outcome == MigrationOutcome.Completed)
                        {
                            own.Add(report.Duration.TotalMilliseconds);
                            var second = (int)Stopwatch.GetElapsedTime(started).TotalSeconds;
                            if (second < perSecond.Length)
                            {
                                Interlocked.Increment(ref perSecond[second]);
                            }
                        }
                        else
                        {
                            Failed(report.FailureReason ?? "failed");
                        }
                    }
                    catch (InvalidOperationException e)
                    {
                        Failed(e.Message);
                    }
                    finally
                    {
                        Volatile.Write(ref connection.Migrating, 0);
                    }
                }
            },
            cancellationToken)).ToArray();
        await Task.WhenAll(workers);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var all = waits.SelectMany(w => w).ToList();
        return new ScaleMigrateResult(all.Count, failed, seconds, Statistics.Percentile(all, 0.5), Statistics.Percentile(all, 0.99), perSecond, reasons);

        void Failed(string reason)
        {
            Interlocked.Increment(ref failed);
            lock (reasons)
            {
                reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
            }
        }
    }

    /// <summary>One client connection and whether a migration of it is under way.</summary>
    private sealed class ScaleConnection(MtcpClient client, MtcpStream stream)
    {
        private long _requests;

        public int Migrating;

        public MtcpClient Client => client;

        /// <summary>Whether the connection's server end is at <paramref name="server"/> now (it changes with each migration and failover).</summary>
        public bool IsOn(ServerEndpoint server)
        {
            var remote = stream.RemoteEndPoint;
            return remote.Port == server.Port && remote.Address.Equals(server.Address.ToIPAddress());
        }

        /// <summary>
        /// One RESP ECHO of <paramref name="length"/> payload bytes, a pattern of this connection and request; returns
        /// how many payload bytes came back as sent.
        /// </summary>
        /// <exception cref="InvalidDataException">the answer is not a bulk string of that length.</exception>
        public async Task<int> EchoAsync(byte[] request, byte[] answer, int length, CancellationToken cancellationToken)
        {
            var header = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"*2\r\n$4\r\nECHO\r\n${length}\r\n"));
            header.CopyTo(request, 0);
            Fill(request.AsSpan(header.Length, length), (uint)HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(client), _requests++));
            "\r\n"u8.CopyTo(request.AsSpan(header.Length + length));
            await stream.WriteAsync(request.AsMemory(0, header.Length + length + 2), cancellationToken);

            var expectedHeader = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"${length}\r\n"));
            var answerLength = expectedHeader.Length + length + 2;
            await stream.ReadExactlyAsync(answer.AsMemory(0, answerLength), cancellationToken);
            if (!answer.AsSpan(0, expectedHeader.Length).SequenceEqual(expectedHeader) || answer[answerLength - 2] != '\r' || answer[answerLength - 1] != '\n')
            {
                throw new InvalidDataException($"the answer to an ECHO of {length} bytes is not a bulk string of that length");
            }

            return Matching(request.AsSpan(header.Length, length), answer.AsSpan(expectedHeader.Length, length));
        }

        private static int Matching(ReadOnlySpan<byte> sent, ReadOnlySpan<byte> echoed)
        {
            var matching = 0;
            for (var i = 0; i < sent.Length; i++)
            {
                matching += echoed[i] == sent[i] ? 1 : 0;
            }

            return matching;
        }

        /// <summary>A xorshift pattern: every request's bytes differ, so a byte from another request or connection shows.</summary>
        private static void Fill(Span<byte> payload, uint seed)
        {
            var state = seed | 1;
            Span<byte> word = stackalloc byte[sizeof(uint)];
            for (var i = 0; i < payload.Length; i += sizeof(uint))
            {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                BinaryPrimitives.WriteUInt32LittleEndian(word, state);
                word[..Math.Min(sizeof(uint), payload.Length - i)].CopyTo(payload[i..]);
            }
        }
    }
}

using System.Net;
using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// Puts one connected <see cref="MtcpClient"/> under a <see cref="ClientPolicyActor"/> (thesis 5.3.2: the client-side
/// policy module watches the connection and triggers its migration). The application reads and writes through
/// <see cref="Stream"/>, and every read that returns data becomes a <see cref="SegmentObserved"/>, carrying the time the
/// application said it was blocked on its own reader since (<see cref="NoteReaderWait"/>) plus the application's own
/// time before the requests it wrote since (its user's pauses: not the server's rate either). Writes and reads together
/// mark the request boundaries of a request/response protocol (<see cref="RequestBoundaries"/>): with the response-time
/// trigger on, each first read of an answer becomes a <see cref="RequestCompleted"/>; with the latency trigger on, each
/// later read of an answer in progress becomes a <see cref="SegmentDelay"/> (its gap since the previous read, without an
/// SRTT: the runtime exposes none, so only the latency trigger's fixed bound judges it). The client's
/// migration reports become <see cref="MigrationCompleted"/> / <see cref="MigrationFailed"/>; every
/// <see cref="MigrateConnection"/> the policy decides is carried out with <see cref="MtcpClient.MigrateAsync"/>.
/// </summary>
/// <remarks>
/// Observations are what the application sees (bytes per completed read, on a monotonic clock), not segments: the
/// runtime has no per-segment hook yet. The alternate servers come from the caller (the service's server list), as the
/// client API does not expose the TCP_MIGRATE list it learned (thesis 4.2.3).
/// </remarks>
public sealed class ClientPolicyDriver : IAsyncDisposable
{
    private readonly MtcpClient _client;
    private readonly IActorRef _policy;
    private readonly IActorRef _executor;
    private readonly TimeProvider _time;
    private readonly long _startedAt;
    private readonly bool _timesResponses;
    private readonly bool _timesGaps;
    private readonly Lock _boundariesGate = new();
    private readonly RequestBoundaries _boundaries = new();
    private long _readerWaitTicks;
    private long _clientTimeTicks;
    private int _disposed;

    private ClientPolicyDriver(ActorSystem system, MtcpClient client, MtcpStream stream, ClientPolicySettings settings, IReadOnlyCollection<ServerEndpoint> servers, TimeProvider time)
    {
        _client = client;
        _time = time;
        _startedAt = time.GetTimestamp();
        _timesResponses = settings.Triggers.Contains(PolicyKind.ResponseTime);
        _timesGaps = settings.Triggers.Contains(PolicyKind.Latency);
        Connection = new ConnectionId(
            IpAddress.FromIPAddress(stream.LocalEndPoint.Address),
            (ushort)stream.LocalEndPoint.Port,
            IpAddress.FromIPAddress(stream.RemoteEndPoint.Address),
            (ushort)stream.RemoteEndPoint.Port);
        Origin = ToServer(stream.RemoteEndPoint);

        _executor = system.ActorOf(Props.Create(() => new MigrationExecutor(client, this)));
        _policy = system.ActorOf(ClientPolicyActor.Props(settings, _executor, Now()));
        _policy.Tell(new ConnectionAlternatesChanged(Connection, Origin, [.. servers.Where(s => s != Origin)], Now()));
        _client.MigrationEnded += OnMigrationEnded;
        Stream = new ObservedStream(stream, this);
    }

    /// <summary>The policy's name for the connection: its Cid on the origin server.</summary>
    public ConnectionId Connection { get; }

    /// <summary>The server the connection was opened to.</summary>
    public ServerEndpoint Origin { get; }

    /// <summary>The connection's stream; reads and writes through it are the policy's observations.</summary>
    public Stream Stream { get; }

    /// <summary>Raised for every decision the policy sent, before it is carried out (on an actor thread: keep it short).</summary>
    public event EventHandler<MigrateConnection>? Decided;

    /// <summary>
    /// Starts the policy for <paramref name="client"/>, which must be connected. <paramref name="servers"/> are the
    /// service's servers (the origin among them or not); the policy chooses its destinations among them.
    /// </summary>
    public static ClientPolicyDriver Start(ActorSystem system, MtcpClient client, ClientPolicySettings settings, IReadOnlyCollection<ServerEndpoint> servers, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(servers);
        var stream = client.Stream ?? throw new InvalidOperationException("connect the client before starting its policy");
        return new ClientPolicyDriver(system, client, stream, settings, servers, time ?? TimeProvider.System);
    }

    /// <summary>
    /// The application was blocked for <paramref name="wait"/> passing bytes read from the connection on to its own
    /// reader (a relay's write to a client that reads slowly): it goes with the next observation, so that the policy
    /// does not take a slow reader for a slow server.
    /// </summary>
    public void NoteReaderWait(TimeSpan wait)
    {
        if (wait > TimeSpan.Zero)
        {
            Interlocked.Add(ref _readerWaitTicks, wait.Ticks);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _client.MigrationEnded -= OnMigrationEnded;
            _policy.Tell(new ConnectionClosed(Connection));
            _policy.Tell(PoisonPill.Instance);
            _executor.Tell(PoisonPill.Instance);
        }

        return ValueTask.CompletedTask;
    }

    private Instant Now() => Instant.Zero + _time.GetElapsedTime(_startedAt);

    private void Observe(int bytes)
    {
        if (bytes <= 0 || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        var readerWait = TimeSpan.FromTicks(Interlocked.Exchange(ref _readerWaitTicks, 0));
        var clientTime = TimeSpan.FromTicks(Interlocked.Exchange(ref _clientTimeTicks, 0));
        Instant at;
        AnswerTiming timing;
        lock (_boundariesGate)
        {
            at = Now();
            timing = _boundaries.AnswerReceived(at, readerWait);
        }

        // The client's time before its requests held the connection as a slow reader does: not the server's rate.
        _policy.Tell(new SegmentObserved(Connection, bytes, at, readerWait + clientTime));
        if (_timesResponses && timing.ResponseTime is { } responseTime)
        {
            _policy.Tell(new RequestCompleted(Connection, responseTime, at));
        }

        if (_timesGaps && timing.Gap is { } gap)
        {
            _policy.Tell(new SegmentDelay(Connection, gap, SmoothedRtt: null, at));
        }
    }

    /// <summary>
    /// Called before the application's bytes are handed to the connection, not after: the server cannot answer them
    /// earlier, so the answer's first read always comes after this mark.
    /// </summary>
    private void NoteRequest()
    {
        TimeSpan clientTime;
        lock (_boundariesGate)
        {
            clientTime = _boundaries.RequestForwarded(Now());
        }

        Interlocked.Add(ref _clientTimeTicks, clientTime.Ticks);
    }

    private void OnMigrationEnded(object? sender, MigrationReport report)
    {
        lock (_boundariesGate)
        {
            _boundaries.Forget();
        }

        _policy.Tell(report.Outcome == MigrationOutcome.Completed
            ? new MigrationCompleted(Connection, report.From, report.To, Now())
            : new MigrationFailed(Connection, report.To, report.FailureReason ?? "failed", Now()));
    }

    private static ServerEndpoint ToServer(IPEndPoint endPoint) => new(IpAddress.FromIPAddress(endPoint.Address), (ushort)endPoint.Port);

    /// <summary>
    /// Carries out the policy's decisions one at a time. The outcome reaches the policy through the client's
    /// <see cref="MtcpClient.MigrationEnded"/>; only a migration that could not even start is reported from here.
    /// </summary>
    private sealed class MigrationExecutor : ReceiveActor
    {
        private readonly ILoggingAdapter _log = Context.GetLogger();
        private bool _inFlight;

        public MigrationExecutor(MtcpClient client, ClientPolicyDriver driver)
        {
            Receive<MigrateConnection>(decision =>
            {
                if (_inFlight)
                {
                    // The policy's hold-down restarts with the outcome of the one in flight.
                    _log.Debug("decision {0} dropped: a migration of {1} is in flight", decision.Reason, decision.Connection);
                    return;
                }

                _inFlight = true;
                driver.Decided?.Invoke(driver, decision);
                client.MigrateAsync(decision.Destination).ContinueWith(
                    static (task, state) => new MigrationAttempted((MigrateConnection)state!, task.Exception?.GetBaseException()),
                    decision,
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default).PipeTo(Self);
            });
            Receive<MigrationAttempted>(attempt =>
            {
                _inFlight = false;
                if (attempt.Error is { } error)
                {
                    _log.Warning("migration of {0} to {1} did not start: {2}", attempt.Decision.Connection, attempt.Decision.Destination, error.Message);
                    driver._policy.Tell(new MigrationFailed(attempt.Decision.Connection, attempt.Decision.Destination ?? default, error.Message, driver.Now()));
                }
            });
        }
    }

    private sealed record MigrationAttempted(MigrateConnection Decision, Exception? Error);

    private sealed class ObservedStream(MtcpStream inner, ClientPolicyDriver driver) : PassThroughStream(inner)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            driver.Observe(read);
            return read;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!buffer.IsEmpty)
            {
                driver.NoteRequest();
            }

            return Inner.WriteAsync(buffer, cancellationToken);
        }
    }
}

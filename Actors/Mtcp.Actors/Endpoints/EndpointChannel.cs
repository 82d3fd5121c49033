using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Stack.Migration;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// What an application stream holds of its endpoint actor: the actor to tell, and the read and write operations
/// the actor completes. Created by the endpoint actor, handed out once the connection is established.
/// </summary>
internal sealed class EndpointChannel
{
    private readonly Lock _keyLock = new();
    private ConnectionKey _key;

    public EndpointChannel(IActorRef endpoint, IpAddress localAddress, ConnectionKey key, ConnectionId firstCid)
    {
        Endpoint = endpoint;
        LocalAddress = localAddress;
        _key = key;
        FirstCid = firstCid;
        Reader = new StreamOperation("read", Exports);
        Writer = new StreamOperation("write", Exports);
    }

    public IActorRef Endpoint { get; }

    public IpAddress LocalAddress { get; }

    /// <summary>
    /// The 4-tuple the connection uses now. A client's changes when a migration completes (the new server, from the same
    /// local port where that 4-tuple is free); the endpoint actor sets it, the application reads it from any thread.
    /// </summary>
    public ConnectionKey Key
    {
        get
        {
            lock (_keyLock)
            {
                return _key;
            }
        }

        set
        {
            lock (_keyLock)
            {
                _key = value;
            }
        }
    }

    /// <summary>The application's exports the endpoint has not taken yet; reads and writes wait for them.</summary>
    public ExportsInFlight Exports { get; } = new();

    public StreamOperation Reader { get; }

    public StreamOperation Writer { get; }

    /// <summary>What ImportState returns (thesis 3.3.2): set by a server endpoint before it is handed out.</summary>
    public ImportedState Imported { get; set; } = new(ConnectionOrigin.New, ReadOnlyMemory<byte>.Empty);

    /// <summary>
    /// The connection's first Cid (thesis 3.2.1), its name in every node's log across hops: a client's first 4-tuple; a
    /// server endpoint sets the one its migration credential was issued under before handing the channel out.
    /// </summary>
    public ConnectionId FirstCid { get; set; }

    /// <summary>For a connection that migrated in: where it came from and how its state arrived; set with <see cref="Imported"/>.</summary>
    public MigrationArrival? Arrival { get; set; }

    /// <summary>
    /// Completes when the connection migrated away from this server (thesis 4.2.3, EMIGRATED), with the server it went to
    /// (null when a buddy that took it over told this node to drop it).
    /// </summary>
    public TaskCompletionSource<ServerEndpoint?> MigratedAway { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Completes when the endpoint actor has stopped: a request told to it after that is never answered, so callers
    /// waiting on one race it against this.
    /// </summary>
    public TaskCompletionSource Stopped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Tells the endpoint <paramref name="request"/>, whose answer completes <paramref name="answer"/>, and waits for it;
    /// fails with <see cref="InvalidOperationException"/> when the endpoint stops first. Cancelling stops the wait.
    /// </summary>
    public async Task<T> AskAsync<T>(object request, TaskCompletionSource<T> answer, CancellationToken cancellationToken)
    {
        Endpoint.Tell(request, ActorRefs.NoSender);
        await using (cancellationToken.UnsafeRegister(static (state, token) => ((TaskCompletionSource<T>)state!).TrySetCanceled(token), answer))
        {
            if (await Task.WhenAny(answer.Task, Stopped.Task).ConfigureAwait(false) != answer.Task)
            {
                answer.TrySetException(new InvalidOperationException("the connection is closed: its endpoint has stopped"));
            }

            return await answer.Task.ConfigureAwait(false);
        }
    }

    /// <summary>Client side: told of every migration's end, on the endpoint actor's thread.</summary>
    public Action<MigrationReport>? MigrationReported { get; set; }
}

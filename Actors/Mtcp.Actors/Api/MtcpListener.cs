using System.Net;
using Akka.Actor;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Packets;

namespace Mtcp.Actors.Api;

/// <summary>
/// Accepts MTCP connections on one port of a runtime, in the manner of <see cref="System.Net.Sockets.TcpListener"/>:
/// <see cref="StartAsync"/> binds, <see cref="AcceptAsync"/> yields each established connection. Disposing stops
/// accepting; connections already accepted are not affected.
/// </summary>
public sealed class MtcpListener : IAsyncDisposable
{
    private static readonly TimeSpan BindTimeout = TimeSpan.FromSeconds(10);

    private readonly MtcpRuntime _runtime;
    private IActorRef? _listener;

    public MtcpListener(MtcpRuntime runtime, ushort port)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentOutOfRangeException.ThrowIfZero(port);
        _runtime = runtime;
        Port = port;
    }

    public ushort Port { get; }

    public IPEndPoint LocalEndPoint => new(_runtime.LocalAddress.ToIPAddress(), Port);

    /// <summary>Binds the port; from now on SYNs to it are answered.</summary>
    /// <exception cref="InvalidOperationException">the port already has a listener.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException($"the listener on port {Port} is already started");
        }

        var bound = await _runtime.PacketActor.Ask<Bound>(new Bind(Port), BindTimeout, cancellationToken).ConfigureAwait(false);
        _listener = bound.Listener;
    }

    /// <summary>Waits for the next established connection.</summary>
    /// <exception cref="ObjectDisposedException">the listener was stopped.</exception>
    public async ValueTask<MtcpConnection> AcceptAsync(CancellationToken cancellationToken = default)
    {
        var listener = _listener ?? throw new InvalidOperationException("call StartAsync before AcceptAsync");
        var accepted = new TaskCompletionSource<EndpointChannel?>(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.Tell(new AcceptConnection(accepted));
        EndpointChannel? channel;
        await using (cancellationToken.UnsafeRegister(static (state, token) => ((TaskCompletionSource<EndpointChannel?>)state!).TrySetCanceled(token), accepted))
        {
            channel = await accepted.Task.ConfigureAwait(false);
        }

        return channel is null ? throw new ObjectDisposedException(nameof(MtcpListener), $"the listener on port {Port} was stopped") : new MtcpConnection(channel);
    }

    /// <summary>Stops accepting: pending AcceptAsync calls fail; established but unaccepted connections are reset.</summary>
    public ValueTask DisposeAsync()
    {
        _listener?.Tell(Unbind.Instance);
        return ValueTask.CompletedTask;
    }
}

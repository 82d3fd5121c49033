using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>Opens a listener on <paramref name="Port"/>; answered by <see cref="Bound"/> or a <see cref="Status.Failure"/>.</summary>
internal sealed record Bind(ushort Port);

/// <summary>The listener actor now owns the port.</summary>
internal sealed record Bound(ushort Port, IActorRef Listener);

/// <summary>Sends the client of <paramref name="Grant"/>'s connection a MIGRATE_TRIGGER from this node's <paramref name="SenderPort"/>, as a third party.</summary>
internal sealed record SendMigrationTrigger(MigrationTriggerGrant Grant, ushort SenderPort);

/// <summary>
/// Opens a connection to <paramref name="RemoteAddress"/>:<paramref name="RemotePort"/> from an ephemeral port;
/// cancelling <paramref name="Cancellation"/> before the handshake completes aborts the attempt.
/// </summary>
internal sealed record ConnectTo(IpAddress RemoteAddress, ushort RemotePort, TaskCompletionSource<Endpoints.EndpointChannel> Connected, CancellationToken Cancellation);

using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>Where a server endpoint is in its life (thesis 4.2.3); the TCP states stay in its <see cref="TcpConnection"/>.</summary>
public enum ServerEndpointPhase
{
    /// <summary>A special SYN is in: the SYN is held, unanswered, until the origin's state is reinstated (thesis 4.2.3 at S2).</summary>
    AwaitingState,

    /// <summary>SYN-RECEIVED: the SYN+ACK is out, the client's ACK (carrying β for a migrated connection) is awaited.</summary>
    Handshaking,

    /// <summary>The connection is served here: the application may read, write and export state; its state may be requested.</summary>
    Established,

    /// <summary>The state ack came (thesis 4.2.3 at S1): nothing is sent, the client's segments are dropped for 2 MSL.</summary>
    MigratedAway,

    /// <summary>Over: closed, reset, refused, or silent for 2 MSL after migrating away. The driver forgets the endpoint.</summary>
    Ended,
}

/// <summary>What happened to a server endpoint that its driver reports, counts or acts upon; the stream's events are <see cref="TcpEvent"/>s.</summary>
public abstract record ServerEndpointEvent
{
    private ServerEndpointEvent()
    {
    }

    /// <summary>
    /// The handshake is done (for a migrated connection, β applied from the client's ACK): the application may take
    /// the connection and import its state, as accept(2) returns only completed connections.
    /// </summary>
    public sealed record Accepted(bool Migrated) : ServerEndpointEvent;

    /// <summary>
    /// The special SYN was refused (a RST answers it unless the driver turned that off): the client stays on its old
    /// server. <paramref name="Reason"/> is short and countable; <paramref name="Detail"/> is the origin's diagnostic, if any.
    /// </summary>
    public sealed record Refused(string Reason, string Detail) : ServerEndpointEvent;

    /// <summary>
    /// The state of <paramref name="Origin"/> was reinstated and the state ack queued; <paramref name="StateWait"/> is the
    /// time since the state request was decided, <paramref name="StateReplyBytes"/> the reply's encoded size.
    /// </summary>
    public sealed record Reinstated(ServerEndpoint Origin, TimeSpan StateWait, int StateReplyBytes) : ServerEndpointEvent;

    /// <summary>
    /// Another server's state request was answered with <paramref name="Answer"/> (a reply, or a reject with its
    /// reason); <paramref name="Check"/> is the authenticator's verdict behind an AUTH_FAILED.
    /// </summary>
    public sealed record StateRequestAnswered(ControlMessage Answer, MigratedConnectionCheck Check) : ServerEndpointEvent;

    /// <summary>
    /// The connection left for <paramref name="Destination"/> (the server whose state request got the acknowledged
    /// reply; null when a buddy that took the connection over told this node to drop it): the application's calls fail
    /// with EMIGRATED from now on.
    /// </summary>
    public sealed record MigratedAway(ServerEndpoint? Destination) : ServerEndpointEvent;
}

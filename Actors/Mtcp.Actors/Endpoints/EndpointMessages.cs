using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>The stream started a read: serve <see cref="EndpointChannel.Reader"/>.</summary>
internal sealed class ReadRequested
{
    public static readonly ReadRequested Instance = new();

    private ReadRequested()
    {
    }
}

/// <summary>The stream started a write: serve <see cref="EndpointChannel.Writer"/>.</summary>
internal sealed class WriteRequested
{
    public static readonly WriteRequested Instance = new();

    private WriteRequested()
    {
    }
}

/// <summary>
/// The application closed its sending side (a shutdown of writing, or the stream disposed): a FIN follows the bytes
/// already written (RFC 9293 §3.10.4), and the peer's bytes are still served to a reader.
/// </summary>
internal sealed class CloseRequested
{
    public static readonly CloseRequested Instance = new();

    private CloseRequested()
    {
    }
}

/// <summary>The application gave up on the connection: RST and CLOSED (RFC 9293 §3.10.5).</summary>
internal sealed class AbortRequested
{
    public static readonly AbortRequested Instance = new();

    private AbortRequested()
    {
    }
}

/// <summary>The caller of ConnectAsync cancelled: abort the open (RFC 9293 §3.10.5) and fail the call as cancelled.</summary>
internal sealed class ConnectCancelled
{
    public static readonly ConnectCancelled Instance = new();

    private ConnectCancelled()
    {
    }
}

/// <summary>A client endpoint's 4-tuple is registered: send the SYN.</summary>
internal sealed class OpenActive
{
    public static readonly OpenActive Instance = new();

    private OpenActive()
    {
    }
}

/// <summary>A server endpoint finished its handshake; its listener queues it for AcceptAsync.</summary>
internal sealed record EndpointEstablished(EndpointChannel Channel);

/// <summary>The engine's single timer fired.</summary>
internal sealed class EngineTick
{
    public static readonly EngineTick Instance = new();

    private EngineTick()
    {
    }
}

/// <summary>The application's export_state (thesis 3.3.2): a restart point with this application state.</summary>
internal sealed record ExportRequested(byte[] AppState);

/// <summary>Asks a client endpoint to migrate to <paramref name="Destination"/> (null: an alternate server it learned).</summary>
internal sealed record MigrateRequested(ServerEndpoint? Destination, TaskCompletionSource<MigrationReport> Completion);

/// <summary>Asks a client endpoint for the alternate servers its connection learned from TCP_MIGRATE.</summary>
internal sealed record AlternateServersRequested(TaskCompletionSource<IReadOnlyList<ServerEndpoint>> Completion);

/// <summary>
/// From the receive thread to an endpoint that is over and has left the connection table (ConnectionTable.Retire):
/// everything routed to it is in its mailbox ahead of this, and is handled as a closed connection would handle it, not
/// dead-lettered; then it stops.
/// </summary>
internal sealed class EndpointRetired
{
    public static readonly EndpointRetired Instance = new();

    private EndpointRetired()
    {
    }
}

/// <summary>A server application asks its connection's client to migrate (MIGRATE_TRIGGER, thesis 3.2.1).</summary>
internal sealed record TriggerRequested(ServerEndpoint? Destination);

/// <summary>A server application asks for its connection's trigger key, to hand to a third party; answered with <see cref="TriggerKeyAnswer"/>.</summary>
internal sealed class TriggerKeyRequested
{
    public static readonly TriggerKeyRequested Instance = new();

    private TriggerKeyRequested()
    {
    }
}

/// <summary>The grant, or null when the connection holds no credential here (migration off, or it migrated away).</summary>
internal sealed record TriggerKeyAnswer(MigrationTriggerGrant? Grant);

/// <summary>A MIGRATE_TRIGGER from a server other than the connection's, routed by the Cid it names; only a client endpoint acts on it.</summary>
internal sealed record ThirdPartyTriggerReceived(InboundSegment Segment);

/// <summary>
/// An ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201) quoted a segment with this endpoint's
/// 4-tuple: the peer it was sent to, the quoted ports and sequence number, as sent, and the next hop's MTU. Unauthenticated: the engine checks
/// them against the connection (<see cref="Mtcp.Stack.TcpConnection.HandlePacketTooBig"/>) before lowering the MSS.
/// </summary>
internal sealed record PacketTooBigReceived(IpAddress Peer, ushort QuotedSourcePort, ushort QuotedDestinationPort, SeqNumber QuotedSequence, int Mtu, bool IPv6)
{
    /// <summary>The message of a report the transport read: an ICMP error, or the local host's refusal of a send as too big.</summary>
    public static PacketTooBigReceived Of(in PacketTooBigReport report) =>
        new(report.QuotedDestination, report.QuotedSourcePort, report.QuotedDestinationPort, report.QuotedSequence, report.Mtu, report.IsIPv6);
}

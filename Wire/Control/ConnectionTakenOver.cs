using System.Diagnostics.CodeAnalysis;

namespace Mtcp.Wire.Control;

/// <summary>
/// Beyond the thesis (buddy replication's fencing, docs/failover.md): the buddy tells the origin that it took
/// <see cref="MigratingCid"/> over from its replica, which the origin's endpoint of migration <see cref="Epoch"/> sent,
/// so that endpoint drops the connection as after a planned migration. The epoch names the incarnation: a connection
/// that came back to the origin on the same 4-tuple since was reinstated under a later epoch and is not touched, as a
/// state ack naming no reply it sent would have closed it.
/// </summary>
public sealed record ConnectionTakenOver : ControlMessage
{
    public const string SerializerManifest = "CTO";

    /// <param name="requestId">the state request the replica answered (for logs; 0 when the origin was lost, not silent).</param>
    /// <param name="migratingCid">the connection as the origin names it.</param>
    /// <param name="epoch">the credential epoch of the replica taken over: the migrations the connection had completed when the origin held it.</param>
    public ConnectionTakenOver(ulong requestId, ConnectionId migratingCid, uint epoch)
        : base(requestId)
    {
        MigratingCid = ControlWriter.RequireEncodable(migratingCid, nameof(migratingCid));
        Epoch = epoch;
    }

    /// <summary>The connection taken over, as the origin names it.</summary>
    public ConnectionId MigratingCid { get; }

    /// <summary>The credential epoch of the origin's incarnation that was taken over.</summary>
    public uint Epoch { get; }

    public override ControlMessageType MessageType => ControlMessageType.ConnectionTakenOver;

    public override string Manifest => SerializerManifest;

    private protected override int GetBodyLength() => ControlWriter.ConnectionIdLength(MigratingCid) + 4;

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |               MigratingCid (13 or 37 bytes) ...               |
    /// +---------------------------------------------------------------+
    /// |                           Epoch (4)                           |
    /// +---------------------------------------------------------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(MigratingCid);
        writer.WriteUInt32(Epoch);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ConnectionTakenOver? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.ConnectionTakenOver, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var migratingCid, out error))
        {
            return false;
        }

        if (!reader.TryReadUInt32(out var epoch))
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (reader.Remaining != 0)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        message = new ConnectionTakenOver(header.RequestId, migratingCid, epoch);
        return true;
    }
}

using System.Diagnostics.CodeAnalysis;

namespace Mtcp.Wire.Control;

/// <summary>
/// The state ack of thesis 4.2.3: S2 tells S1 that the state reply was received and reinstated; S1 then
/// closes its endpoint of the migrated connection.
/// </summary>
public sealed record StateAck : ControlMessage
{
    public const string SerializerManifest = "SAK";

    public StateAck(ulong requestId, ConnectionId migratingCid)
        : base(requestId) =>
        MigratingCid = ControlWriter.RequireEncodable(migratingCid, nameof(migratingCid));

    /// <summary>The connection id of the migrated connection (thesis: "the state ack message would contain the connection id").</summary>
    public ConnectionId MigratingCid { get; }

    public override ControlMessageType MessageType => ControlMessageType.StateAck;

    public override string Manifest => SerializerManifest;

    private protected override int GetBodyLength() => ControlWriter.ConnectionIdLength(MigratingCid);

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |               MigratingCid (13 or 37 bytes) ...               |
    /// +---------------------------------------------------------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(MigratingCid);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out StateAck? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.StateAck, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var migratingCid, out error))
        {
            return false;
        }

        if (reader.Remaining != 0)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        message = new StateAck(header.RequestId, migratingCid);
        return true;
    }
}

using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>
/// A control message MACed for one association (beyond the thesis; docs/threat-model.md): the bytes of a
/// <see cref="ControlEnvelope"/> sealed by the sending control connection, opened by the receiving one before
/// anything in it is used. A state reply too large for one Akka.Remote frame travels instead as
/// <see cref="StateReplyChunk"/>s of its envelope.
/// </summary>
internal sealed class SealedControlMessage(ReadOnlyMemory<byte> envelope)
{
    public const string SerializerManifest = "SCM";

    /// <summary>The envelope: both servers' identities, the control frame and the MAC.</summary>
    public ReadOnlyMemory<byte> Envelope { get; } = envelope;
}

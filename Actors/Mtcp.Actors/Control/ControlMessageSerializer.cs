using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>
/// Serializes the control-connection messages (thesis 4.2.3) in their byte-exact Mtcp.Wire.Control
/// encoding, and <see cref="StateReplyChunk"/>s, <see cref="AbandonStateTransfer"/> notices and
/// <see cref="SealedControlMessage"/>s (their envelope's bytes, opened by the control connection) in theirs. Bound in HOCON/mtcp-reference.conf; its
/// identifier comes from <c>akka.actor.serialization-identifiers</c> (253). The manifests are the
/// messages' frozen <c>SerializerManifest</c> constants, so a type may be renamed or moved freely.
/// A malformed payload raises a <see cref="SerializationException"/> naming the manifest and the
/// <see cref="ControlWireError"/>; Akka.Remote logs it and drops that one message.
/// </summary>
internal sealed class ControlMessageSerializer : SerializerWithStringManifest
{
    public ControlMessageSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    public override string Manifest(object o) => o switch
    {
        ControlMessage message => message.Manifest,
        StateReplyChunk => StateReplyChunk.SerializerManifest,
        AbandonStateTransfer => AbandonStateTransfer.SerializerManifest,
        SealedControlMessage => SealedControlMessage.SerializerManifest,
        _ => throw Unsupported(o),
    };

    public override byte[] ToBinary(object obj) => obj switch
    {
        ControlMessage message => message.ToArray(),
        StateReplyChunk chunk => chunk.ToArray(),
        AbandonStateTransfer notice => notice.ToArray(),
        SealedControlMessage sealedMessage => WholeArray(sealedMessage.Envelope),
        _ => throw Unsupported(obj),
    };

    public override object FromBinary(byte[] bytes, string manifest)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (manifest == StateReplyChunk.SerializerManifest)
        {
            return StateReplyChunk.TryDecode(bytes, out var chunk, out var chunkError)
                ? chunk
                : throw Malformed(manifest, chunkError, bytes.Length);
        }

        if (manifest == AbandonStateTransfer.SerializerManifest)
        {
            return AbandonStateTransfer.TryDecode(bytes, out var notice, out var noticeError)
                ? notice
                : throw Malformed(manifest, noticeError, bytes.Length);
        }

        if (manifest == SealedControlMessage.SerializerManifest)
        {
            // Opened (identities, MAC, then frame) by the control connection, which knows the association.
            return new SealedControlMessage(bytes);
        }

        return ControlMessageCodec.TryDecode(manifest, bytes, out var message, out var error)
            ? message
            : throw Malformed(manifest, error, bytes.Length);
    }

    /// <summary>The envelope's array itself when it spans one (as a sealed message always does), else a copy.</summary>
    private static byte[] WholeArray(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length ? segment.Array : memory.ToArray();

    private static SerializationException Malformed(string manifest, ControlWireError error, int length) =>
        new($"cannot deserialize control message with manifest [{manifest}] from {length} bytes: {error}");

    private ArgumentException Unsupported(object o) =>
        new($"{nameof(ControlMessageSerializer)} (id {Identifier}) cannot serialize {o?.GetType().FullName ?? "null"}", nameof(o));
}

using System.Diagnostics.CodeAnalysis;

namespace Mtcp.Wire.Control;

/// <summary>
/// A message on the control connection between two cooperating servers (thesis 4.2.3). Each concrete
/// message is a sealed immutable record with a frozen serializer manifest; the frame layout is in
/// <see cref="ControlFrameHeader"/> and above each message's body encoder.
/// </summary>
public abstract record ControlMessage
{
    private protected ControlMessage(ulong requestId) => RequestId = requestId;

    /// <summary>Chosen by the requesting server; echoed by every answer so transfers can share one connection.</summary>
    public ulong RequestId { get; }

    public abstract ControlMessageType MessageType { get; }

    /// <summary>The frozen manifest string a string-manifest serializer records next to the bytes.</summary>
    public abstract string Manifest { get; }

    public int GetEncodedLength() => ControlFrameHeader.Length + GetBodyLength();

    /// <summary>Encodes the whole frame; returns the byte count. Throws when the destination is too small.</summary>
    public int Encode(Span<byte> destination)
    {
        if (!TryEncode(destination, out var written))
        {
            throw new ArgumentException($"destination holds {destination.Length} bytes, the frame needs {GetEncodedLength()}", nameof(destination));
        }

        return written;
    }

    /// <summary>Encodes the whole frame; false (and nothing written) when the destination is too small.</summary>
    public bool TryEncode(Span<byte> destination, out int written)
    {
        var bodyLength = GetBodyLength();
        var total = ControlFrameHeader.Length + bodyLength;
        if (destination.Length < total)
        {
            written = 0;
            return false;
        }

        new ControlFrameHeader(MessageType, bodyLength, RequestId).Write(destination);
        EncodeBody(destination.Slice(ControlFrameHeader.Length, bodyLength));
        written = total;
        return true;
    }

    public byte[] ToArray()
    {
        var bytes = new byte[GetEncodedLength()];
        Encode(bytes);
        return bytes;
    }

    private protected abstract int GetBodyLength();

    /// <summary>Writes exactly <see cref="GetBodyLength"/> bytes into <paramref name="body"/>.</summary>
    private protected abstract void EncodeBody(Span<byte> body);
}

/// <summary>Decodes a control frame of any type, dispatching on the message type byte or on a serializer manifest.</summary>
public static class ControlMessageCodec
{
    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ControlMessage? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryRead(frame, out var header, out error))
        {
            return false;
        }

        return TryDecode(header.MessageType, frame, out message, out error);
    }

    /// <summary>
    /// Decodes a frame a serializer stored under <paramref name="manifest"/>; a frame whose type byte
    /// disagrees with the manifest is rejected.
    /// </summary>
    public static bool TryDecode(string manifest, ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ControlMessage? message, out ControlWireError error)
    {
        message = null;
        if (!TryGetMessageType(manifest, out var type))
        {
            error = ControlWireError.UnknownManifest;
            return false;
        }

        return TryDecode(type, frame, out message, out error);
    }

    public static bool TryGetMessageType(string manifest, out ControlMessageType type)
    {
        switch (manifest)
        {
            case StateRequest.SerializerManifest:
                type = ControlMessageType.StateRequest;
                return true;
            case StateReply.SerializerManifest:
                type = ControlMessageType.StateReply;
                return true;
            case StateAck.SerializerManifest:
                type = ControlMessageType.StateAck;
                return true;
            case StateReject.SerializerManifest:
                type = ControlMessageType.StateReject;
                return true;
            case ReplicaState.SerializerManifest:
                type = ControlMessageType.ReplicaState;
                return true;
            case ReplicaReadLog.SerializerManifest:
                type = ControlMessageType.ReplicaReadLog;
                return true;
            case ReplicaAck.SerializerManifest:
                type = ControlMessageType.ReplicaAck;
                return true;
            case ReplicaRelease.SerializerManifest:
                type = ControlMessageType.ReplicaRelease;
                return true;
            case ConnectionTakenOver.SerializerManifest:
                type = ControlMessageType.ConnectionTakenOver;
                return true;
            default:
                type = default;
                return false;
        }
    }

    private static bool TryDecode(ControlMessageType type, ReadOnlySpan<byte> frame, [NotNullWhen(true)] out ControlMessage? message, out ControlWireError error)
    {
        message = type switch
        {
            ControlMessageType.StateRequest => StateRequest.TryDecode(frame, out var request, out error) ? request : null,
            ControlMessageType.StateReply => StateReply.TryDecode(frame, out var reply, out error) ? reply : null,
            ControlMessageType.StateAck => StateAck.TryDecode(frame, out var ack, out error) ? ack : null,
            ControlMessageType.StateReject => StateReject.TryDecode(frame, out var reject, out error) ? reject : null,
            ControlMessageType.ReplicaState => ReplicaState.TryDecode(frame, out var state, out error) ? state : null,
            ControlMessageType.ReplicaReadLog => ReplicaReadLog.TryDecode(frame, out var readLog, out error) ? readLog : null,
            ControlMessageType.ReplicaAck => ReplicaAck.TryDecode(frame, out var replicaAck, out error) ? replicaAck : null,
            ControlMessageType.ReplicaRelease => ReplicaRelease.TryDecode(frame, out var release, out error) ? release : null,
            ControlMessageType.ConnectionTakenOver => ConnectionTakenOver.TryDecode(frame, out var takenOver, out error) ? takenOver : null,
            _ => Fail(ControlWireError.UnknownMessageType, out error),
        };
        return message is not null;
    }

    private static ControlMessage? Fail(ControlWireError reason, out ControlWireError error)
    {
        error = reason;
        return null;
    }
}

using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>Why the requesting server gave up on a state request.</summary>
internal enum StateTransferAbandonReason : byte
{
    /// <summary>No complete answer within <c>mtcp.control.state-request-timeout</c>, or a reply came after it.</summary>
    TimedOut = 1,

    /// <summary>The reply was refused (too large, over the reassembly budget, or malformed).</summary>
    ReplyRefused = 2,
}

/// <summary>
/// Sent by the requesting server (S2) to the origin (S1) on the control connection when it gives up on a
/// state request. Beyond the thesis, which only says S1 closes on a <see cref="StateAck"/>: S2 never acks an
/// abandoned request, so S1 keeps the connection whatever happens to this notice; the notice only lets S1
/// release what it holds for the transfer early.
/// </summary>
internal sealed record AbandonStateTransfer
{
    public const string SerializerManifest = "SAB";

    public const byte CurrentVersion = 1;

    /// <summary>
    /// <code>
    ///  0                   1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +---------------+---------------+-------------------------------+
    /// |    Version    |    Reason     |        Reserved (zero)        |
    /// +---------------+---------------+-------------------------------+
    /// |                                                               |
    /// +                       RequestId (64 bits)                     +
    /// |                                                               |
    /// +---------------------------------------------------------------+
    /// </code>
    /// </summary>
    public const int EncodedLength = 12;

    private const int VersionOffset = 0;
    private const int ReasonOffset = 1;
    private const int ReservedOffset = 2;
    private const int ReservedLength = 2;
    private const int RequestIdOffset = 4;

    public AbandonStateTransfer(ulong requestId, StateTransferAbandonReason reason)
    {
        if (!IsDefined(reason))
        {
            throw new ArgumentOutOfRangeException(nameof(reason), reason, "undefined abandon reason");
        }

        RequestId = requestId;
        Reason = reason;
    }

    /// <summary>The id of the abandoned state request.</summary>
    public ulong RequestId { get; }

    public StateTransferAbandonReason Reason { get; }

    public byte[] ToArray()
    {
        var bytes = new byte[EncodedLength];
        bytes[VersionOffset] = CurrentVersion;
        bytes[ReasonOffset] = (byte)Reason;
        bytes.AsSpan(ReservedOffset, ReservedLength).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(RequestIdOffset), RequestId);
        return bytes;
    }

    public static bool TryDecode(ReadOnlySpan<byte> encoded, [NotNullWhen(true)] out AbandonStateTransfer? notice, out ControlWireError error)
    {
        notice = null;
        if (encoded.Length < EncodedLength)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (encoded.Length > EncodedLength)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        if (encoded[VersionOffset] != CurrentVersion)
        {
            error = ControlWireError.UnsupportedVersion;
            return false;
        }

        if (encoded.Slice(ReservedOffset, ReservedLength).ContainsAnyExcept((byte)0))
        {
            error = ControlWireError.ReservedNotZero;
            return false;
        }

        var reason = (StateTransferAbandonReason)encoded[ReasonOffset];
        if (!IsDefined(reason))
        {
            error = ControlWireError.BadRejectReason;
            return false;
        }

        notice = new AbandonStateTransfer(BinaryPrimitives.ReadUInt64BigEndian(encoded[RequestIdOffset..]), reason);
        error = ControlWireError.None;
        return true;
    }

    private static bool IsDefined(StateTransferAbandonReason reason) =>
        reason is StateTransferAbandonReason.TimedOut or StateTransferAbandonReason.ReplyRefused;
}

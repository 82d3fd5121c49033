namespace Mtcp.Wire.Control;

/// <summary>
/// An authenticated control frame (beyond the thesis; see the threat model): a control frame with the
/// identities of the sending and the receiving server and a 128-bit MAC over all three. This type only
/// lays out the bytes; the MAC is computed and checked by the migration authenticator, and a receiver
/// decodes <see cref="Frame"/> only once the MAC has verified.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------+---------------+---------------+---------------+
/// |    Version    | Reserved (0)  | SenderLength  |ReceiverLength |
/// +---------------+---------------+---------------+---------------+
/// |              Sender (SenderLength bytes, 1-255) ...           |
/// +---------------------------------------------------------------+
/// |            Receiver (ReceiverLength bytes, 1-255) ...         |
/// +---------------------------------------------------------------+
/// |     Frame (a whole control frame: header and body) ...        |
/// +---------------------------------------------------------------+
/// |                          MAC (16 bytes)                       |
/// +---------------------------------------------------------------+
/// </code>
/// The frame's own header gives its length, which must end exactly where the MAC begins. The MAC comes
/// last so that a sender can encode the frame in place and then write the MAC after it, with no copy of
/// a state reply that may be megabytes long.
/// </summary>
public readonly ref struct ControlEnvelope
{
    public const byte CurrentVersion = 1;

    /// <summary>Version, reserved byte and the two identity lengths.</summary>
    public const int HeaderLength = 4;

    /// <summary>HMAC-SHA256 truncated to 128 bits: control messages are not squeezed into option space.</summary>
    public const int MacLength = 16;

    /// <summary>An identity's length is one byte; the authenticator's MAC input bounds it the same way.</summary>
    public const int MaxIdentityLength = byte.MaxValue;

    internal const int VersionOffset = 0;
    internal const int ReservedOffset = 1;
    internal const int SenderLengthOffset = 2;
    internal const int ReceiverLengthOffset = 3;

    private ControlEnvelope(ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, ReadOnlySpan<byte> frame, ReadOnlySpan<byte> mac, ControlFrameHeader frameHeader)
    {
        Sender = sender;
        Receiver = receiver;
        Frame = frame;
        Mac = mac;
        FrameHeader = frameHeader;
    }

    /// <summary>The sending server's identity, as the authenticator binds it.</summary>
    public ReadOnlySpan<byte> Sender { get; }

    /// <summary>The receiving server's identity, as the authenticator binds it.</summary>
    public ReadOnlySpan<byte> Receiver { get; }

    /// <summary>The control frame, header validated, body not yet decoded.</summary>
    public ReadOnlySpan<byte> Frame { get; }

    /// <summary>The <see cref="MacLength"/>-byte MAC.</summary>
    public ReadOnlySpan<byte> Mac { get; }

    /// <summary>The frame's validated header: message type and request id, e.g. for a log line about a bad MAC.</summary>
    public ControlFrameHeader FrameHeader { get; }

    /// <summary>Bytes of an envelope around a frame of <paramref name="frameLength"/> bytes.</summary>
    public static long GetEncodedLength(int senderLength, int receiverLength, int frameLength) =>
        (long)HeaderLength + senderLength + receiverLength + frameLength + MacLength;

    /// <summary>
    /// Splits an envelope from an untrusted peer. Checks the version, the reserved byte, that both identities
    /// are present, that a MAC follows, and that the frame's header is valid and its length is exactly the
    /// bytes between the identities and the MAC.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> envelope, out ControlEnvelope result, out ControlWireError error)
    {
        result = default;
        if (envelope.Length < HeaderLength)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (envelope[VersionOffset] != CurrentVersion)
        {
            error = ControlWireError.UnsupportedVersion;
            return false;
        }

        if (envelope[ReservedOffset] != 0)
        {
            error = ControlWireError.ReservedNotZero;
            return false;
        }

        int senderLength = envelope[SenderLengthOffset];
        int receiverLength = envelope[ReceiverLengthOffset];
        if (senderLength == 0 || receiverLength == 0)
        {
            error = ControlWireError.EmptyIdentity;
            return false;
        }

        var frameStart = HeaderLength + senderLength + receiverLength;
        if (envelope.Length < frameStart + MacLength)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        var frame = envelope[frameStart..^MacLength];
        if (!ControlFrameHeader.TryRead(frame, out var frameHeader, out error))
        {
            return false;
        }

        if (frameHeader.FrameLength != frame.Length)
        {
            error = ControlWireError.BodyLengthMismatch;
            return false;
        }

        result = new ControlEnvelope(
            envelope.Slice(HeaderLength, senderLength),
            envelope.Slice(HeaderLength + senderLength, receiverLength),
            frame,
            envelope[^MacLength..],
            frameHeader);
        return true;
    }

    /// <summary>
    /// Writes an envelope around an already encoded <paramref name="frame"/> and its MAC. False (and nothing
    /// written) when the destination is too small; throws when an argument could not be decoded back: an
    /// identity empty or longer than 255 bytes, a MAC of another length, or a frame whose header is invalid
    /// or disagrees with its length.
    /// </summary>
    public static bool TryEncode(
        Span<byte> destination, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, ReadOnlySpan<byte> frame, ReadOnlySpan<byte> mac, out int written)
    {
        RequireIdentity(sender, nameof(sender));
        RequireIdentity(receiver, nameof(receiver));
        if (mac.Length != MacLength)
        {
            throw new ArgumentException($"a control MAC is {MacLength} bytes, got {mac.Length}", nameof(mac));
        }

        if (!ControlFrameHeader.TryRead(frame, out var header, out var error) || header.FrameLength != frame.Length)
        {
            throw new ArgumentException($"not one whole control frame ({(error == ControlWireError.None ? ControlWireError.BodyLengthMismatch : error)})", nameof(frame));
        }

        if (!TryWriteHeader(destination, sender, receiver, frame.Length, out var frameStart, out written))
        {
            return false;
        }

        frame.CopyTo(destination[frameStart..]);
        mac.CopyTo(destination[(frameStart + frame.Length)..]);
        return true;
    }

    /// <summary>
    /// Encodes <paramref name="message"/> in place inside an envelope whose MAC is left zero: the caller
    /// computes the MAC over <c>destination[frame]</c> and the two identities and writes it into
    /// <c>destination[mac]</c>. Same failures as the other overload.
    /// </summary>
    public static bool TryEncodeUnsigned(
        Span<byte> destination, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, ControlMessage message, out Range frame, out Range mac, out int written)
    {
        ArgumentNullException.ThrowIfNull(message);
        RequireIdentity(sender, nameof(sender));
        RequireIdentity(receiver, nameof(receiver));
        frame = default;
        mac = default;
        var frameLength = message.GetEncodedLength();
        if (!TryWriteHeader(destination, sender, receiver, frameLength, out var frameStart, out written))
        {
            return false;
        }

        message.Encode(destination.Slice(frameStart, frameLength));
        destination.Slice(frameStart + frameLength, MacLength).Clear();
        frame = new Range(frameStart, frameStart + frameLength);
        mac = new Range(frameStart + frameLength, written);
        return true;
    }

    private static bool TryWriteHeader(
        Span<byte> destination, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, int frameLength, out int frameStart, out int written)
    {
        var total = GetEncodedLength(sender.Length, receiver.Length, frameLength);
        frameStart = HeaderLength + sender.Length + receiver.Length;
        if (total > destination.Length)
        {
            written = 0;
            return false;
        }

        destination[VersionOffset] = CurrentVersion;
        destination[ReservedOffset] = 0;
        destination[SenderLengthOffset] = (byte)sender.Length;
        destination[ReceiverLengthOffset] = (byte)receiver.Length;
        sender.CopyTo(destination[HeaderLength..]);
        receiver.CopyTo(destination[(HeaderLength + sender.Length)..]);
        written = (int)total;
        return true;
    }

    private static void RequireIdentity(ReadOnlySpan<byte> identity, string paramName)
    {
        if (identity.IsEmpty || identity.Length > MaxIdentityLength)
        {
            throw new ArgumentException($"an identity is 1 to {MaxIdentityLength} bytes, got {identity.Length}", paramName);
        }
    }
}

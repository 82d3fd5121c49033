using System.Diagnostics.CodeAnalysis;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>Outcome of opening a <see cref="ControlEnvelope"/> from another server; only <see cref="Opened"/> yields a message.</summary>
public enum ControlOpenResult
{
    Opened,

    /// <summary>The envelope's own layout is invalid (version, lengths, frame header): dropped before any MAC is computed.</summary>
    MalformedEnvelope,

    /// <summary>The envelope names another sender or receiver than this association's: replayed from, or meant for, another pair.</summary>
    WrongPeer,

    /// <summary>The MAC verifies under neither the current nor the previous cluster key: forged or altered.</summary>
    BadMac,

    /// <summary>The MAC verified but the frame's body does not decode: a peer bug, not an attack.</summary>
    MalformedFrame,
}

/// <summary>
/// Control messages between cooperating servers, MACed (beyond the thesis; docs/threat-model.md): a sender seals an
/// encoded control frame in a <see cref="ControlEnvelope"/> with both servers' identities and a MAC under the
/// cluster's control key; a receiver checks the identities against the association it arrived on and the MAC before
/// it decodes the frame. Transport-agnostic: the actor runtime's serializer or any other control transport calls it.
/// </summary>
public static class ControlMessageSealing
{
    /// <summary>The envelope bytes for <paramref name="message"/> from <paramref name="sender"/> to <paramref name="receiver"/>.</summary>
    public static byte[] Seal(IMigrationAuthenticator authenticator, ControlMessage message, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        ArgumentNullException.ThrowIfNull(message);
        var envelope = new byte[checked((int)ControlEnvelope.GetEncodedLength(sender.Length, receiver.Length, message.GetEncodedLength()))];
        if (!TrySeal(authenticator, message, sender, receiver, envelope, out _))
        {
            throw new InvalidOperationException("an envelope sized by GetEncodedLength did not fit");
        }

        return envelope;
    }

    /// <summary>Seals into <paramref name="destination"/> with no intermediate copy of the frame; false when it is too small.</summary>
    public static bool TrySeal(IMigrationAuthenticator authenticator, ControlMessage message, ReadOnlySpan<byte> sender, ReadOnlySpan<byte> receiver, Span<byte> destination, out int written)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        RequireEnvelopeMac(authenticator);
        if (!ControlEnvelope.TryEncodeUnsigned(destination, sender, receiver, message, out var frame, out var mac, out written))
        {
            return false;
        }

        authenticator.SignControlMessage(destination[frame], sender, receiver, destination[mac]);
        return true;
    }

    /// <summary>
    /// Opens an envelope that arrived on the association from <paramref name="expectedSender"/> to this server,
    /// <paramref name="expectedReceiver"/>. The frame is decoded only after the identities match and the MAC verifies.
    /// </summary>
    public static ControlOpenResult TryOpen(
        IMigrationAuthenticator authenticator,
        ReadOnlySpan<byte> envelope,
        ReadOnlySpan<byte> expectedSender,
        ReadOnlySpan<byte> expectedReceiver,
        [NotNullWhen(true)] out ControlMessage? message)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        RequireEnvelopeMac(authenticator);
        message = null;
        if (!ControlEnvelope.TryDecode(envelope, out var opened, out _))
        {
            return ControlOpenResult.MalformedEnvelope;
        }

        if (!opened.Sender.SequenceEqual(expectedSender) || !opened.Receiver.SequenceEqual(expectedReceiver))
        {
            return ControlOpenResult.WrongPeer;
        }

        if (!authenticator.VerifyControlMessage(opened.Frame, opened.Sender, opened.Receiver, opened.Mac))
        {
            return ControlOpenResult.BadMac;
        }

        return ControlMessageCodec.TryDecode(opened.Frame, out message, out _) ? ControlOpenResult.Opened : ControlOpenResult.MalformedFrame;
    }

    private static void RequireEnvelopeMac(IMigrationAuthenticator authenticator)
    {
        if (authenticator.ControlMacLength != ControlEnvelope.MacLength)
        {
            throw new ArgumentException($"the envelope holds a {ControlEnvelope.MacLength}-byte MAC, the authenticator makes {authenticator.ControlMacLength}", nameof(authenticator));
        }
    }
}

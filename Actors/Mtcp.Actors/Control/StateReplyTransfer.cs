using Mtcp.Actors.Configuration;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>How the origin server puts a state reply on the control connection.</summary>
internal static class StateReplyTransfer
{
    /// <summary>
    /// The messages to send, in order, for <paramref name="reply"/>: the reply itself when its encoding fits
    /// <see cref="ControlSettings.ReplyChunkSize"/> (the common case, no reassembly cost), otherwise its
    /// encoding cut into <see cref="StateReplyChunk"/>s that each fit one Akka.Remote frame.
    /// </summary>
    public static IReadOnlyList<object> ToMessages(StateReply reply, ControlSettings settings)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(settings);
        if (reply.GetEncodedLength() <= settings.ReplyChunkSize)
        {
            return [reply];
        }

        return StateReplyChunk.Split(reply.RequestId, reply.ToArray(), settings.ReplyChunkSize);
    }

    /// <summary>
    /// The messages to send, in order, for <paramref name="message"/> on a control connection: as above without
    /// <paramref name="sealing"/>; with it, the message's sealed envelope, cut into <see cref="StateReplyChunk"/>s
    /// when it does not fit <see cref="ControlSettings.ReplyChunkSize"/> (only a state reply is ever that large).
    /// </summary>
    internal static IReadOnlyList<object> ToMessages(ControlMessage message, ControlSettings settings, ControlSealing? sealing)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(settings);
        if (sealing is null)
        {
            return message is StateReply reply ? ToMessages(reply, settings) : [message];
        }

        var envelope = sealing.Seal(message);
        return envelope.Length <= settings.ReplyChunkSize
            ? [new SealedControlMessage(envelope)]
            : StateReplyChunk.Split(message.RequestId, envelope, settings.ReplyChunkSize);
    }
}

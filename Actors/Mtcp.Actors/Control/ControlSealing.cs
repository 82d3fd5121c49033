using System.Diagnostics.CodeAnalysis;
using System.Text;
using Akka.Actor;
using Mtcp.Actors.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>
/// One association's sealing of control messages (docs/threat-model.md, "control MAC"): messages to the peer are sealed
/// by <see cref="ControlMessageSealing"/> under the cluster's control key with this node as sender and the peer as
/// receiver (their Akka.Remote addresses, as UTF-8), and messages from the peer are opened with the identities
/// reversed. A message that does not open is dropped by the caller and counted in <c>mtcp.control.dropped</c>.
/// </summary>
internal sealed class ControlSealing
{
    private readonly IMigrationAuthenticator _authenticator;
    private readonly byte[] _self;
    private readonly byte[] _peer;

    public ControlSealing(IMigrationAuthenticator authenticator, Address self, Address peer)
    {
        _authenticator = authenticator;
        _self = Encoding.UTF8.GetBytes(self.ToString());
        _peer = Encoding.UTF8.GetBytes(peer.ToString());
    }

    /// <summary>The envelope of <paramref name="message"/> from this node to the peer.</summary>
    public byte[] Seal(ControlMessage message) => ControlMessageSealing.Seal(_authenticator, message, _self, _peer);

    /// <summary>Opens an envelope the peer sent; anything but <see cref="ControlOpenResult.Opened"/> is counted as dropped.</summary>
    public ControlOpenResult TryOpen(ReadOnlySpan<byte> envelope, [NotNullWhen(true)] out ControlMessage? message)
    {
        var result = ControlMessageSealing.TryOpen(_authenticator, envelope, _peer, _self, out message);
        if (result != ControlOpenResult.Opened)
        {
            CountDropped(result.ToString());
        }

        return result;
    }

    /// <summary>A reassembled state reply envelope: opened, and a state reply, or the assembler's refusal.</summary>
    public bool TryOpenReply(ReadOnlyMemory<byte> envelope, [NotNullWhen(true)] out StateReply? reply, out ControlWireError error)
    {
        reply = null;
        error = ControlWireError.None;
        if (TryOpen(envelope.Span, out var message) != ControlOpenResult.Opened)
        {
            // The assembler reports the transfer as malformed; the drop was counted with its reason.
            return false;
        }

        if (message is not StateReply opened)
        {
            error = ControlWireError.UnexpectedMessageType;
            return false;
        }

        reply = opened;
        return true;
    }

    /// <summary>A control message that came from the peer without an envelope while sealing is on.</summary>
    public static void CountUnsealed() => CountDropped("Unsealed");

    /// <summary>A sealed control message that came while this node has no cluster key to open it.</summary>
    public static void CountNoKey() => CountDropped("NoKey");

    private static void CountDropped(string reason) =>
        MigrationMetrics.ControlDropped.Add(1, new KeyValuePair<string, object?>("reason", reason));
}

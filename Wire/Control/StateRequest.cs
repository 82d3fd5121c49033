using System.Diagnostics.CodeAnalysis;

namespace Mtcp.Wire.Control;

/// <summary>
/// The state request of thesis 4.2.3: sent by the new server (S2) to the origin server (S1) when a
/// special SYN carrying MIGRATED_CONN arrives, asking for the state of the migrating connection.
/// </summary>
public sealed record StateRequest : ControlMessage
{
    public const string SerializerManifest = "SRQ";

    /// <summary>Longest authenticator carried; the MIGRATED_CONN option that it comes from fits in 40 bytes.</summary>
    public const int MaxAuthenticatorLength = 32;

    public StateRequest(ulong requestId, ConnectionId migratingCid, ConnectionId newEndpointCid, SeqNumber clientRcvNxt, ReadOnlyMemory<byte> authenticator)
        : base(requestId)
    {
        if (authenticator.Length > MaxAuthenticatorLength)
        {
            throw new ArgumentException($"authenticator is {authenticator.Length} bytes, at most {MaxAuthenticatorLength}", nameof(authenticator));
        }

        MigratingCid = ControlWriter.RequireEncodable(migratingCid, nameof(migratingCid));
        NewEndpointCid = ControlWriter.RequireEncodable(newEndpointCid, nameof(newEndpointCid));
        ClientRcvNxt = clientRcvNxt;
        Authenticator = authenticator;
    }

    /// <summary>Field 1: the connection id of the connection that is migrating (client and S1).</summary>
    public ConnectionId MigratingCid { get; }

    /// <summary>Field 2: the connection id of S2's new endpoint, the key S2 finds its control block by.</summary>
    public ConnectionId NewEndpointCid { get; }

    /// <summary>Field 3: the client's <c>rcv_nxt</c> from MIGRATED_CONN; S1 prunes the write-buffer state with it.</summary>
    public SeqNumber ClientRcvNxt { get; }

    /// <summary>The authenticator from MIGRATED_CONN, checked by S1 before it hands out any state (beyond the thesis).</summary>
    public ReadOnlyMemory<byte> Authenticator { get; }

    public override ControlMessageType MessageType => ControlMessageType.StateRequest;

    public override string Manifest => SerializerManifest;

    public bool Equals(StateRequest? other) =>
        base.Equals(other)
        && MigratingCid == other.MigratingCid
        && NewEndpointCid == other.NewEndpointCid
        && ClientRcvNxt == other.ClientRcvNxt
        && Authenticator.Span.SequenceEqual(other.Authenticator.Span);

    public override int GetHashCode() => HashCode.Combine(RequestId, MigratingCid, NewEndpointCid, ClientRcvNxt, Authenticator.Length);

    private protected override int GetBodyLength() =>
        ControlWriter.ConnectionIdLength(MigratingCid) + ControlWriter.ConnectionIdLength(NewEndpointCid) + 4 + 1 + Authenticator.Length;

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |               MigratingCid (13 or 37 bytes) ...               |
    /// +---------------------------------------------------------------+
    /// |              NewEndpointCid (13 or 37 bytes) ...              |
    /// +---------------------------------------------------------------+
    /// |                         ClientRcvNxt                          |
    /// +---------------+-----------------------------------------------+
    /// | AuthLength    |  Authenticator (AuthLength &lt;= 32 bytes) ...   |
    /// +---------------+-----------------------------------------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(MigratingCid);
        writer.WriteConnectionId(NewEndpointCid);
        writer.WriteUInt32(ClientRcvNxt.Value);
        writer.WriteByte((byte)Authenticator.Length);
        writer.WriteBytes(Authenticator.Span);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out StateRequest? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.StateRequest, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var migratingCid, out error)
            || !reader.TryReadConnectionId(out var newEndpointCid, out error))
        {
            return false;
        }

        if (!reader.TryReadSeqNumber(out var clientRcvNxt) || !reader.TryReadByte(out var authLength))
        {
            error = ControlWireError.Truncated;
            return false;
        }

        if (authLength > MaxAuthenticatorLength)
        {
            error = ControlWireError.AuthenticatorTooLong;
            return false;
        }

        if (!reader.TryReadBytes(authLength, out var authenticator))
        {
            error = ControlWireError.LengthExceedsPayload;
            return false;
        }

        if (reader.Remaining != 0)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        message = new StateRequest(header.RequestId, migratingCid, newEndpointCid, clientRcvNxt, authenticator.ToArray());
        return true;
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Unicode;

namespace Mtcp.Wire.Control;

/// <summary>Why S1 refused a state request (thesis 4.2.3 step 3, plus <see cref="AuthFailed"/>).</summary>
public enum StateRejectReason : byte
{
    /// <summary>CB_NOT_FOUND: no control block for the migrating connection id.</summary>
    CbNotFound = 1,

    /// <summary>INVALID_STATE: the connection is in a state a migration makes no sense in (SYN_SENT, SYN_RECEIVED, LAST_ACK, TIME_WAIT).</summary>
    InvalidState = 2,

    /// <summary>The authenticator from MIGRATED_CONN did not verify (beyond the thesis).</summary>
    AuthFailed = 3,
}

/// <summary>The state reject of thesis 4.2.3: the reason and the key of the requesting endpoint.</summary>
public sealed record StateReject : ControlMessage
{
    public const string SerializerManifest = "SRJ";

    /// <summary>Longest diagnostic in UTF-8 bytes; it is for logs, not for parsing.</summary>
    public const int MaxDiagnosticLength = 255;

    public StateReject(ulong requestId, ConnectionId newEndpointCid, StateRejectReason reason, string diagnostic = "")
        : base(requestId)
    {
        if (reason is < StateRejectReason.CbNotFound or > StateRejectReason.AuthFailed)
        {
            throw new ArgumentOutOfRangeException(nameof(reason), reason, "undefined reject reason");
        }

        ArgumentNullException.ThrowIfNull(diagnostic);
        var diagnosticLength = Encoding.UTF8.GetByteCount(diagnostic);
        if (diagnosticLength > MaxDiagnosticLength)
        {
            throw new ArgumentException($"diagnostic is {diagnosticLength} UTF-8 bytes, at most {MaxDiagnosticLength}", nameof(diagnostic));
        }

        NewEndpointCid = ControlWriter.RequireEncodable(newEndpointCid, nameof(newEndpointCid));
        Reason = reason;
        Diagnostic = diagnostic;
        DiagnosticLength = diagnosticLength;
    }

    /// <summary>Field (b): the key of the requesting endpoint, S2's connection id.</summary>
    public ConnectionId NewEndpointCid { get; }

    /// <summary>Field (a): the reason for the reject.</summary>
    public StateRejectReason Reason { get; }

    /// <summary>Optional human-readable detail; empty when none.</summary>
    public string Diagnostic { get; }

    private int DiagnosticLength { get; }

    public override ControlMessageType MessageType => ControlMessageType.StateReject;

    public override string Manifest => SerializerManifest;

    public bool Equals(StateReject? other) =>
        base.Equals(other)
        && NewEndpointCid == other.NewEndpointCid
        && Reason == other.Reason
        && string.Equals(Diagnostic, other.Diagnostic, StringComparison.Ordinal);

    public override int GetHashCode() => HashCode.Combine(RequestId, NewEndpointCid, Reason, Diagnostic);

    private protected override int GetBodyLength() => ControlWriter.ConnectionIdLength(NewEndpointCid) + 1 + 1 + DiagnosticLength;

    /// <summary>
    /// <code>
    /// +---------------------------------------------------------------+
    /// |              NewEndpointCid (13 or 37 bytes) ...              |
    /// +---------------+---------------+-------------------------------+
    /// | Reason (1..3) | DiagLength    | Diagnostic (UTF-8) ...        |
    /// +---------------+---------------+-------------------------------+
    /// </code>
    /// </summary>
    private protected override void EncodeBody(Span<byte> body)
    {
        var writer = new ControlWriter(body);
        writer.WriteConnectionId(NewEndpointCid);
        writer.WriteByte((byte)Reason);
        writer.WriteByte((byte)DiagnosticLength);
        Encoding.UTF8.GetBytes(Diagnostic, body[writer.Position..]);
    }

    public static bool TryDecode(ReadOnlySpan<byte> frame, [NotNullWhen(true)] out StateReject? message, out ControlWireError error)
    {
        message = null;
        if (!ControlFrameHeader.TryReadFrame(frame, ControlMessageType.StateReject, out var header, out var body, out error))
        {
            return false;
        }

        var reader = new ControlReader(body);
        if (!reader.TryReadConnectionId(out var newEndpointCid, out error))
        {
            return false;
        }

        if (!reader.TryReadByte(out var reasonByte) || !reader.TryReadByte(out var diagnosticLength))
        {
            error = ControlWireError.Truncated;
            return false;
        }

        var reason = (StateRejectReason)reasonByte;
        if (reason is < StateRejectReason.CbNotFound or > StateRejectReason.AuthFailed)
        {
            error = ControlWireError.BadRejectReason;
            return false;
        }

        if (!reader.TryReadBytes(diagnosticLength, out var diagnosticBytes))
        {
            error = ControlWireError.LengthExceedsPayload;
            return false;
        }

        if (reader.Remaining != 0)
        {
            error = ControlWireError.TrailingBytes;
            return false;
        }

        // Strict validation: a lenient decode would replace bad bytes with U+FFFD and re-encode differently.
        if (!Utf8.IsValid(diagnosticBytes))
        {
            error = ControlWireError.DiagnosticNotUtf8;
            return false;
        }

        message = new StateReject(header.RequestId, newEndpointCid, reason, Encoding.UTF8.GetString(diagnosticBytes));
        return true;
    }
}

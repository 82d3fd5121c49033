namespace Mtcp.Wire.Control;

/// <summary>
/// Why a control-connection frame was rejected. Decoders return one of these instead of throwing, so a
/// malformed or hostile frame from a peer is logged and dropped and changes nothing.
/// </summary>
public enum ControlWireError : byte
{
    None = 0,

    /// <summary>The input ends before a fixed-size field.</summary>
    Truncated,

    /// <summary>The version byte is not one this codec speaks.</summary>
    UnsupportedVersion,

    /// <summary>The message type byte names no known message.</summary>
    UnknownMessageType,

    /// <summary>A typed decoder was handed a frame of another message type.</summary>
    UnexpectedMessageType,

    /// <summary>The serializer manifest names no known message.</summary>
    UnknownManifest,

    /// <summary>A reserved field is not zero.</summary>
    ReservedNotZero,

    /// <summary>The header's body length disagrees with the bytes present.</summary>
    BodyLengthMismatch,

    /// <summary>A length or count field claims more bytes than the body holds.</summary>
    LengthExceedsPayload,

    /// <summary>The declared parts end before the body does: bytes left over.</summary>
    TrailingBytes,

    /// <summary>A connection id's address family is neither 4 nor 6.</summary>
    BadAddressFamily,

    /// <summary>The authenticator is longer than <see cref="StateRequest.MaxAuthenticatorLength"/>.</summary>
    AuthenticatorTooLong,

    /// <summary>A TCP state code is outside the eleven states of RFC 9293 §3.3.2.</summary>
    BadTcpState,

    /// <summary>A state transition does not start where the previous one (or the snapshot) ended, or goes nowhere.</summary>
    BadTransitionChain,

    /// <summary>The TCP snapshot's flags carry a bit this version does not define.</summary>
    UnknownTcpFlags,

    /// <summary>A window scale above 14 (RFC 7323 §2.3), or non-zero without window scaling.</summary>
    BadWindowScale,

    /// <summary>The socket snapshot's state or option bits carry a bit this version does not define.</summary>
    UnknownSocketFlags,

    /// <summary>Write-buffer data and a duplicate-byte discard count are both non-zero (thesis 4.2.3 step 4(d) makes them exclusive).</summary>
    SndStateConflict,

    /// <summary>A duplicate-byte discard count of 2^31 or more, beyond what sequence arithmetic can express.</summary>
    DiscardTooLarge,

    /// <summary>The reject reason is not a defined <see cref="StateRejectReason"/>.</summary>
    BadRejectReason,

    /// <summary>The reject diagnostic is not valid UTF-8.</summary>
    DiagnosticNotUtf8,

    /// <summary>The state reply's migration credential is longer than <see cref="StateReply.MaxMigrationCredentialLength"/>.</summary>
    MigrationCredentialTooLong,

    /// <summary>A control envelope names an empty sender or receiver identity.</summary>
    EmptyIdentity,

    /// <summary>A replica ack's status is not a defined <see cref="ReplicaAckStatus"/>.</summary>
    BadReplicaAckStatus,
}

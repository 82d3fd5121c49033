namespace Mtcp.Wire.Control;

/// <summary>The message type byte of a control frame (thesis 4.2.3, "Control Connection and State Transfer Details").</summary>
public enum ControlMessageType : byte
{
    StateRequest = 1,
    StateReply = 2,
    StateAck = 3,
    StateReject = 4,
}

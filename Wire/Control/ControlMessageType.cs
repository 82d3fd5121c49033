namespace Mtcp.Wire.Control;

/// <summary>The message type byte of a control frame (thesis 4.2.3, "Control Connection and State Transfer Details").</summary>
public enum ControlMessageType : byte
{
    StateRequest = 1,
    StateReply = 2,
    StateAck = 3,
    StateReject = 4,

    /// <summary>Beyond the thesis: a piece of a connection's replicated state, origin to buddy (<see cref="ReplicaState"/>).</summary>
    ReplicaState = 5,

    /// <summary>Beyond the thesis: client bytes read since the replicated state, origin to buddy (<see cref="ReplicaReadLog"/>).</summary>
    ReplicaReadLog = 6,

    /// <summary>Beyond the thesis: the buddy holds a replica update, or needs the whole state again (<see cref="ReplicaAck"/>).</summary>
    ReplicaAck = 7,

    /// <summary>Beyond the thesis: the buddy may forget a connection's replica (<see cref="ReplicaRelease"/>).</summary>
    ReplicaRelease = 8,

    /// <summary>Beyond the thesis: the buddy took a connection over from its replica; the origin drops it (<see cref="ConnectionTakenOver"/>).</summary>
    ConnectionTakenOver = 9,
}

using Mtcp.Actors.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>One control message of each kind, and state replies with application state of a chosen size.</summary>
internal static class ControlSamples
{
    public static readonly ConnectionId MigratingCid = new(IpAddress.Parse("10.0.0.1"), 40000, IpAddress.Parse("10.0.0.2"), 80);
    public static readonly ConnectionId NewEndpointCid = new(IpAddress.Parse("10.0.0.1"), 40000, IpAddress.Parse("10.0.0.3"), 80);
    public static readonly ConnectionId NewEndpointCidV6 = new(IpAddress.Parse("2001:db8::1"), 40000, IpAddress.Parse("2001:db8::3"), 443);

    public static StateRequest Request => new(
        0x0102030405060708, MigratingCid, NewEndpointCid, new SeqNumber(0xFFFFFFF0), new byte[] { 0xA1, 0xA2, 0xA3, 0xA4 });

    public static StateReply Reply => Replying(0x1122334455667788, "APP"u8.ToArray());

    public static StateAck Ack => new(0x0102030405060708, MigratingCid);

    public static StateReject Reject => new(42, NewEndpointCid, StateRejectReason.InvalidState, "TIME_WAIT");

    public static TheoryData<string> Manifests => [StateRequest.SerializerManifest, StateReply.SerializerManifest, StateAck.SerializerManifest, StateReject.SerializerManifest];

    public static ControlMessage ByManifest(string manifest) => manifest switch
    {
        StateRequest.SerializerManifest => Request,
        StateReply.SerializerManifest => Reply,
        StateAck.SerializerManifest => Ack,
        StateReject.SerializerManifest => Reject,
        _ => throw new ArgumentOutOfRangeException(nameof(manifest), manifest, "no sample"),
    };

    /// <summary>A reply carrying <paramref name="appState"/> plus a little write- and read-buffer state and a transition.</summary>
    public static StateReply Replying(ulong requestId, ReadOnlyMemory<byte> appState) => new(
        requestId,
        NewEndpointCidV6,
        lastAckSent: new SeqNumber(0x00001005),
        sndBytesDiscard: 0,
        sndMaxSeen: new SeqNumber(0xFFFFFFFE),
        new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.Migrate | TcpSnapshotFlags.WindowScaling, 1460, 7, 9),
        new SocketSnapshot(SocketStateFlags.None, SocketOptionFlags.MigrationSupport, 0),
        appState,
        writeBufferState: new byte[] { 1, 2, 3, 4, 5 },
        readBufferState: new byte[] { 0xAA, 0xBB },
        [new(TcpStateCode.Established, TcpStateCode.CloseWait)]);

    /// <summary>Seeded pseudo-random bytes, so a corrupted byte anywhere is caught by comparison.</summary>
    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

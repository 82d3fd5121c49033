using System.Collections.Immutable;
using Mtcp.Wire.Control;

namespace Mtcp.Wire.Tests.Control;

/// <summary>One message per kind with its golden encoding, and a generator of random valid messages.</summary>
internal static class ControlSamples
{
    public static readonly ConnectionId MigratingCidV4 = new(IpAddress.Parse("10.0.0.1"), 40000, IpAddress.Parse("10.0.0.2"), 80);
    public static readonly ConnectionId NewEndpointCidV4 = new(IpAddress.Parse("10.0.0.1"), 40000, IpAddress.Parse("10.0.0.3"), 80);
    public static readonly ConnectionId NewEndpointCidV6 = new(IpAddress.Parse("2001:db8::1"), 40000, IpAddress.Parse("2001:db8::3"), 443);

    public static StateRequest Request => new(
        0x0102030405060708,
        MigratingCidV4,
        NewEndpointCidV4,
        new SeqNumber(0xFFFFFFF0),
        new byte[] { 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8 });

    public static readonly byte[] RequestBytes = Convert.FromHexString(
        "01" + "01" + "0000" + "00000027" + "0102030405060708"
        + "04" + "0A000001" + "9C40" + "0A000002" + "0050"
        + "04" + "0A000001" + "9C40" + "0A000003" + "0050"
        + "FFFFFFF0"
        + "08" + "A1A2A3A4A5A6A7A8");

    public static StateReply Reply => new(
        0x1122334455667788,
        NewEndpointCidV6,
        lastAckSent: new SeqNumber(0x00001005),
        sndBytesDiscard: 0,
        sndMaxSeen: new SeqNumber(0xFFFFFFFE),
        new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.NoDelay | TcpSnapshotFlags.Migrate | TcpSnapshotFlags.WindowScaling | TcpSnapshotFlags.Timestamps | TcpSnapshotFlags.SackPermitted, 1460, 7, 9),
        new SocketSnapshot(SocketStateFlags.CantSendMore, SocketOptionFlags.KeepAlive | SocketOptionFlags.MigrationSupport, 30),
        appState: "APP"u8.ToArray(),
        writeBufferState: new byte[] { 1, 2, 3, 4, 5 },
        readBufferState: new byte[] { 0xAA, 0xBB },
        [new(TcpStateCode.Established, TcpStateCode.FinWait1), new(TcpStateCode.FinWait1, TcpStateCode.FinWait2)]);

    /// <summary>Offset of AppStateLength in <see cref="ReplyBytes"/>: header 16 + IPv6 connection id 37.</summary>
    public const int ReplyFixedOffset = 16 + 37;

    public static readonly byte[] ReplyBytes = Convert.FromHexString(
        "01" + "02" + "0000" + "0000005D" + "1122334455667788"
        + "06" + "20010DB8000000000000000000000001" + "9C40" + "20010DB8000000000000000000000003" + "01BB"
        + "00000003" + "00000005" + "00000002"
        + "00001005" + "00000000" + "FFFFFFFE"
        + "04" + "07" + "09" + "00" + "0000001F" + "05B4" + "0002"
        + "0001" + "0005" + "001E"
        + "415050" + "0102030405" + "AABB" + "0406" + "0609");

    /// <summary>A 17-byte credential: key generation 2, ISNs 0xFFFFFFF0 and 0x10, epoch 1, next attempt 3.</summary>
    public static readonly byte[] Credential = Convert.FromHexString("02" + "FFFFFFF0" + "00000010" + "00000001" + "00000003");

    public static StateReply ReplyWithCredential => new(
        Reply.RequestId,
        Reply.NewEndpointCid,
        Reply.LastAckSent,
        Reply.SndBytesDiscard,
        Reply.SndMaxSeen,
        Reply.TSnapshot,
        Reply.SoSnapshot,
        Reply.AppState,
        Reply.WriteBufferState,
        Reply.ReadBufferState,
        Reply.TStateTransitions,
        Credential);

    /// <summary><see cref="ReplyBytes"/> with the credential: its length in the byte after RcvScale, its bytes last.</summary>
    public static readonly byte[] ReplyWithCredentialBytes = Convert.FromHexString(
        "01" + "02" + "0000" + "0000006E" + "1122334455667788"
        + "06" + "20010DB8000000000000000000000001" + "9C40" + "20010DB8000000000000000000000003" + "01BB"
        + "00000003" + "00000005" + "00000002"
        + "00001005" + "00000000" + "FFFFFFFE"
        + "04" + "07" + "09" + "11" + "0000001F" + "05B4" + "0002"
        + "0001" + "0005" + "001E"
        + "415050" + "0102030405" + "AABB" + "0406" + "0609"
        + "02FFFFFFF0000000100000000100000003");

    public static StateAck Ack => new(0x0102030405060708, MigratingCidV4);

    public static readonly byte[] AckBytes = Convert.FromHexString(
        "01" + "03" + "0000" + "0000000D" + "0102030405060708"
        + "04" + "0A000001" + "9C40" + "0A000002" + "0050");

    public static StateReject Reject => new(42, NewEndpointCidV4, StateRejectReason.InvalidState, "TIME_WAIT");

    public static readonly byte[] RejectBytes = Convert.FromHexString(
        "01" + "04" + "0000" + "00000018" + "000000000000002A"
        + "04" + "0A000001" + "9C40" + "0A000003" + "0050"
        + "02" + "09" + "54494D455F57414954");

    public static IEnumerable<(ControlMessage Message, byte[] Bytes)> Golden()
    {
        yield return (Request, RequestBytes);
        yield return (Reply, ReplyBytes);
        yield return (Ack, AckBytes);
        yield return (Reject, RejectBytes);
    }

    public static ConnectionId RandomCid(Random random)
    {
        if (random.Next(2) == 0)
        {
            Span<byte> v4 = stackalloc byte[8];
            random.NextBytes(v4);
            return new ConnectionId(IpAddress.FromIPv4(v4), (ushort)random.Next(65536), IpAddress.FromIPv4(v4[4..]), (ushort)random.Next(65536));
        }

        Span<byte> v6 = stackalloc byte[32];
        random.NextBytes(v6);
        return new ConnectionId(IpAddress.FromIPv6(v6), (ushort)random.Next(65536), IpAddress.FromIPv6(v6[16..]), (ushort)random.Next(65536));
    }

    public static byte[] RandomBytes(Random random, int maxLength)
    {
        var bytes = new byte[random.Next(maxLength + 1)];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A random valid message of any kind; payloads stay below <paramref name="maxPayload"/> bytes.</summary>
    public static ControlMessage RandomMessage(Random random, int maxPayload)
    {
        var requestId = (ulong)random.NextInt64() ^ ((ulong)random.Next(2) << 63);
        switch (random.Next(4))
        {
            case 0:
                return new StateRequest(requestId, RandomCid(random), RandomCid(random), new SeqNumber((uint)random.NextInt64(1L << 32)), RandomBytes(random, StateRequest.MaxAuthenticatorLength));
            case 1:
                return RandomReply(random, requestId, maxPayload);
            case 2:
                return new StateAck(requestId, RandomCid(random));
            default:
                var diagnostic = random.Next(3) == 0 ? "" : new string('x', random.Next(40)) + "é€";
                return new StateReject(requestId, RandomCid(random), (StateRejectReason)random.Next(1, 4), diagnostic);
        }
    }

    private static StateReply RandomReply(Random random, ulong requestId, int maxPayload)
    {
        var flags = (TcpSnapshotFlags)random.Next(32);
        var scaling = (flags & TcpSnapshotFlags.WindowScaling) != 0;
        var tState = (TcpStateCode)random.Next(11);
        var transitions = ImmutableArray.CreateBuilder<TcpStateTransition>();
        var current = tState;
        for (var i = random.Next(4); i > 0; i--)
        {
            var next = (TcpStateCode)random.Next(11);
            if (next != current)
            {
                transitions.Add(new TcpStateTransition(current, next));
                current = next;
            }
        }

        var discards = random.Next(2) == 0;
        return new StateReply(
            requestId,
            RandomCid(random),
            new SeqNumber((uint)random.NextInt64(1L << 32)),
            discards ? (uint)random.Next() : 0,
            new SeqNumber((uint)random.NextInt64(1L << 32)),
            new TcpSnapshot(tState, flags, (ushort)random.Next(65536), scaling ? (byte)random.Next(15) : (byte)0, scaling ? (byte)random.Next(15) : (byte)0),
            new SocketSnapshot((SocketStateFlags)random.Next(4), (SocketOptionFlags)random.Next(8), (ushort)random.Next(65536)),
            RandomBytes(random, maxPayload),
            discards ? ReadOnlyMemory<byte>.Empty : RandomBytes(random, maxPayload),
            RandomBytes(random, maxPayload),
            transitions.ToImmutable(),
            random.Next(3) == 0 ? ReadOnlyMemory<byte>.Empty : RandomBytes(random, StateReply.MaxMigrationCredentialLength));
    }
}

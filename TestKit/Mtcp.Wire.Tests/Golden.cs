namespace Mtcp.Wire.Tests;

/// <summary>
/// Hand-built segments, laid out field by field against RFC 9293 §3.1. The checksums were computed by
/// an independent straightforward RFC 1071 implementation (16-bit word sum with end-around carry), and
/// Wireshark's TCP dissector reports every one of them as correct when the segment is wrapped in an
/// IPv4 or IPv6 packet with the addresses given here (tcp.check_checksum on).
/// </summary>
internal static class Golden
{
    public const byte Marker = 0xA5;

    public static readonly IpAddress V4Client = IpAddress.Parse("192.0.2.1");
    public static readonly IpAddress V4Server = IpAddress.Parse("192.0.2.2");
    public static readonly IpAddress V6Client = IpAddress.Parse("2001:db8::1");
    public static readonly IpAddress V6Server = IpAddress.Parse("2001:db8::2");

    public static byte[] Bytes(string hex) => Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));

    /// <summary>A SYN just below the sequence wrap with MSS 1460, window scale 7, SACK-permitted, timestamps.</summary>
    public static readonly byte[] SynV4 = Bytes(
        "c000 0050" // ports 49152 -> 80
        + "ffff fff0" // seq
        + "0000 0000" // ack
        + "a0 02 ffff" // data offset 10 words, SYN, window 65535
        + "fcc1 0000" // checksum, urgent pointer
        + "0204 05b4" // MSS 1460
        + "0303 07" // window scale 7
        + "0402" // SACK-permitted
        + "080a 0000 0001 0000 0000" // timestamps 1, 0
        + "00"); // EOL padding to 40 bytes

    public static readonly TcpSegmentRepr SynV4Repr = new()
    {
        SourcePort = 49152,
        DestinationPort = 80,
        SequenceNumber = new SeqNumber(0xFFFF_FFF0),
        Flags = TcpFlags.Syn,
        Window = 0xFFFF,
        Options = new TcpOptions
        {
            MaxSegmentSize = 1460,
            WindowScale = 7,
            SackPermitted = true,
            Timestamps = new TcpTimestamps(1, 0),
        },
    };

    /// <summary>An IPv6 ACK|PSH carrying "hello", with timestamps and two SACK blocks.</summary>
    public static readonly byte[] AckV6 = Bytes(
        "01bb c350" // ports 443 -> 50000
        + "0000 0001" // seq
        + "7fff ffff" // ack
        + "c0 18 0200" // data offset 12 words, ACK|PSH, window 512
        + "13d7 0000" // checksum, urgent pointer
        + "080a 1122 3344 5566 7788" // timestamps
        + "0512 0000 03e8 0000 07d0 0000 0bb8 0000 0fa0" // SACK [1000,2000) [3000,4000)
        + "6865 6c6c 6f"); // payload "hello"

    public static readonly TcpSegmentRepr AckV6Repr = new()
    {
        SourcePort = 443,
        DestinationPort = 50000,
        SequenceNumber = new SeqNumber(1),
        AcknowledgmentNumber = new SeqNumber(0x7FFF_FFFF),
        Flags = TcpFlags.Ack | TcpFlags.Psh,
        Window = 512,
        Options = new TcpOptions
        {
            Timestamps = new TcpTimestamps(0x1122_3344, 0x5566_7788),
            Sack = default(SackBlockList)
                .Add(new SackBlock(new SeqNumber(1000), new SeqNumber(2000)))
                .Add(new SackBlock(new SeqNumber(3000), new SeqNumber(4000))),
        },
    };

    public const int AckV6PayloadOffset = 48;

    /// <summary>A SYN|ACK with MSS 1400 and an option kind 30 this codec does not decode.</summary>
    public static readonly byte[] SynAckUnknownV4 = Bytes(
        "0050 c000" // ports 80 -> 49152
        + "1234 5678" // seq
        + "9abc def0" // ack
        + "70 12 4000" // data offset 7 words, SYN|ACK, window 16384
        + "f39a 0000" // checksum, urgent pointer
        + "0204 0578" // MSS 1400
        + "1e04 1001"); // unknown kind 30, length 4

    public static readonly TcpSegmentRepr SynAckUnknownV4Repr = new()
    {
        SourcePort = 80,
        DestinationPort = 49152,
        SequenceNumber = new SeqNumber(0x1234_5678),
        AcknowledgmentNumber = new SeqNumber(0x9ABC_DEF0),
        Flags = TcpFlags.Syn | TcpFlags.Ack,
        Window = 16384,
        Options = new TcpOptions { MaxSegmentSize = 1400, Unknown = Bytes("1e04 1001") },
    };

    public static readonly IpAddress V4NewServer = IpAddress.Parse("192.0.2.3");

    /// <summary>The client's special SYN to a new server (thesis 4.2.3): MSS and TCP_MIGRATED_CONN.</summary>
    public static readonly byte[] MigratingSynV4 = Bytes(
        "c001 0050" // ports 49153 -> 80
        + "0000 1000" // seq
        + "0000 0000" // ack
        + "c0 02 ffff" // data offset 12 words, SYN, window 65535
        + "36d3 0000" // checksum, urgent pointer
        + "0204 05b4" // MSS 1460
        + "fd 18 4d54 02" // kind 253, length 24, ExID "MT", subtype MIGRATED_CONN
        + "00 c000 0202 0050" // flags (IPv4, client port = SYN source port), origin 192.0.2.2:80
        + "ffff fffe" // client rcv_nxt
        + "0123 4567 89ab cdef"); // authenticator

    public static readonly TcpSegmentRepr MigratingSynV4Repr = new()
    {
        SourcePort = 49153,
        DestinationPort = 80,
        SequenceNumber = new SeqNumber(0x1000),
        Flags = TcpFlags.Syn,
        Window = 0xFFFF,
        Options = new TcpOptions
        {
            MaxSegmentSize = 1460,
            MigratedConnection = new MtcpMigratedConnection(
                new ServerEndpoint(V4Server, 80), null, new SeqNumber(0xFFFF_FFFE), 0x0123_4567_89AB_CDEF),
        },
    };

    /// <summary>The client's ACK that completes a migration, carrying β = 1500.</summary>
    public static readonly byte[] BetaAckV4 = Bytes(
        "c001 0050" // ports 49153 -> 80
        + "0000 1001" // seq
        + "5555 5556" // ack
        + "80 10 0400" // data offset 8 words, ACK, window 1024
        + "5161 0000" // checksum, urgent pointer
        + "fd 09 4d54 05 0000 05dc" // β option
        + "00 0000"); // EOL padding

    public static readonly TcpSegmentRepr BetaAckV4Repr = new()
    {
        SourcePort = 49153,
        DestinationPort = 80,
        SequenceNumber = new SeqNumber(0x1001),
        AcknowledgmentNumber = new SeqNumber(0x5555_5556),
        Flags = TcpFlags.Ack,
        Window = 1024,
        Options = new TcpOptions { Beta = 1500 },
    };

    public static IEnumerable<(string Name, byte[] Bytes, TcpSegmentRepr Repr, IpAddress Source, IpAddress Destination)> Segments()
    {
        yield return (nameof(SynV4), SynV4, SynV4Repr, V4Client, V4Server);
        yield return (nameof(AckV6), AckV6, AckV6Repr, V6Server, V6Client);
        yield return (nameof(SynAckUnknownV4), SynAckUnknownV4, SynAckUnknownV4Repr, V4Server, V4Client);
        yield return (nameof(MigratingSynV4), MigratingSynV4, MigratingSynV4Repr, V4Client, V4NewServer);
        yield return (nameof(BetaAckV4), BetaAckV4, BetaAckV4Repr, V4Client, V4NewServer);
    }

    /// <summary>A buffer filled with <see cref="Marker"/>, so that a field the encoder forgot shows up.</summary>
    public static byte[] MarkedBuffer(int length)
    {
        var buffer = new byte[length];
        buffer.AsSpan().Fill(Marker);
        return buffer;
    }
}

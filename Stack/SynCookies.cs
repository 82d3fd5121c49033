using System.Security.Cryptography;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.Stack;

/// <summary>What a SYN offered that must outlive a stateless answer: it is carried in the cookie's low bits.</summary>
/// <param name="MaxSegmentSize">the peer's MSS, rounded down to one of <see cref="SynCookies.MssClasses"/>.</param>
/// <param name="WindowScale">the peer's window-scale shift (clamped to 14, RFC 7323 §2.3); null when it sent none.</param>
/// <param name="SackPermitted">the SYN carried SACK-permitted (RFC 2018 §2).</param>
public readonly record struct SynCookieOptions(ushort MaxSegmentSize, byte? WindowScale, bool SackPermitted);

/// <summary>
/// SYN cookies (RFC 4987 §3.6), sans-IO: a listener whose SYN queue is full answers a SYN without keeping anything,
/// with a SYN+ACK whose ISN is a keyed MAC of the connection; the client's ACK (SEG.ACK = cookie + 1) brings it back,
/// and only then, once the MAC verifies, is the connection created, in SYN-RECEIVED as if the SYN had been held.
/// <code>
///  bit 31 .. 9      8          7 .. 5       4 .. 1          0
///  | MAC (23 bits) | counter  | MSS class | window scale  | SACK-permitted |
///                    parity               (15: none)
///  MAC = SipHash-2-4(node secret, Cid | client ISN | counter | bits 8..0), leftmost 23 bits
/// </code>
/// The counter is the time in <see cref="Period"/>s: a cookie verifies during the period it was issued in and the
/// next one (the previous generation is accepted, RFC 4987 §3.6 "a slowly incrementing counter"), so one is good for
/// at least one period and at most two. The parity bit tells which of the two counters to try, so a check costs one
/// MAC. The Cid binds the 4-tuple and the client ISN binds the SYN: a cookie taken from one SYN+ACK is worth nothing
/// on another 4-tuple or with another ISN, and a blind guess succeeds once in 2^23. SipHash, as in Linux's cookies, is
/// a PRF made for short inputs: a flood costs one per SYN, where HMAC-SHA256 would cost a hundred times as much.
/// Thread-safe and immutable: one instance per node, its secret drawn from a CSPRNG (<see cref="CreateRandom"/>) and never sent anywhere.
/// </summary>
public sealed class SynCookies
{
    /// <summary>Bytes of the node secret, a SipHash key.</summary>
    public const int SecretLength = SipHash.KeyLength;

    private const int MacBits = 23;
    private const int ParityShift = 8;
    private const int MssShift = 5;
    private const int WindowScaleShift = 1;
    private const uint NoWindowScale = 0xF;
    private const byte MaxWindowScale = 14;

    /// <summary>MSS values a cookie can carry (3 bits): the common path MTUs' (IPv6 minimum, PPPoE, Ethernet, jumbo) and loopback's.</summary>
    private static readonly ushort[] Classes = [536, 1220, 1440, 1452, 1460, 4312, 8960, 65495];

    private readonly byte[] _secret;
    private readonly long _periodMicroseconds;

    /// <param name="secret">the node's secret, <see cref="SecretLength"/> bytes from a CSPRNG (a fixed one in tests).</param>
    /// <param name="period">how often the time counter moves on; a cookie verifies for one to two of these.</param>
    public SynCookies(ReadOnlySpan<byte> secret, TimeSpan period)
    {
        if (secret.Length != SecretLength)
        {
            throw new ArgumentException($"a SYN cookie secret is {SecretLength} bytes, got {secret.Length}", nameof(secret));
        }

        if (period < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(period), period, "the counter period must be at least 1 s: a client's ACK follows the SYN+ACK within a round trip");
        }

        _secret = secret.ToArray();
        _periodMicroseconds = period.Ticks / TimeSpan.TicksPerMicrosecond;
        Period = period;
    }

    /// <summary>Linux's choice: a counter moving on every 64 s, so a cookie is good for one to two minutes.</summary>
    public static TimeSpan DefaultPeriod { get; } = TimeSpan.FromSeconds(64);

    /// <summary>The MSS values a cookie can carry, smallest first; a SYN's MSS is rounded down to one of them.</summary>
    public static ReadOnlySpan<ushort> MssClasses => Classes;

    public TimeSpan Period { get; }

    /// <summary>A node's cookies under a fresh secret from the operating system's CSPRNG.</summary>
    public static SynCookies CreateRandom(TimeSpan period)
    {
        Span<byte> secret = stackalloc byte[SecretLength];
        RandomNumberGenerator.Fill(secret);
        return new SynCookies(secret, period);
    }

    /// <summary>The options a cookie for <paramref name="syn"/> carries: what the SYN offered, the MSS rounded down.</summary>
    public static SynCookieOptions OptionsOf(in TcpSegmentRepr syn)
    {
        var mss = syn.Options.MaxSegmentSize ?? Classes[0];
        var rounded = Classes[0];
        foreach (var value in Classes)
        {
            if (value <= mss)
            {
                rounded = value;
            }
        }

        byte? windowScale = syn.Options.WindowScale is { } shift ? Math.Min(shift, MaxWindowScale) : null;
        return new SynCookieOptions(rounded, windowScale, syn.Options.SackPermitted);
    }

    /// <summary>The ISN of the stateless SYN+ACK answering <paramref name="syn"/> on <paramref name="cid"/> at <paramref name="now"/>.</summary>
    public SeqNumber Issue(Instant now, ConnectionId cid, in TcpSegmentRepr syn)
    {
        var counter = Counter(now);
        var low = ((uint)(counter & 1) << ParityShift) | Encode(OptionsOf(syn));
        return new SeqNumber((Mac(cid, syn.SequenceNumber, counter, low) << (32 - MacBits)) | low);
    }

    /// <summary>
    /// Checks the ACK that completes a cookie handshake on <paramref name="cid"/>: its SEG.ACK - 1 must be a cookie this
    /// node issued, in the current or the previous counter period, for this 4-tuple and the client ISN SEG.SEQ - 1.
    /// On success <paramref name="options"/> are the SYN's, as the cookie carried them.
    /// </summary>
    public bool TryValidate(Instant now, ConnectionId cid, in TcpSegmentRepr ack, out SynCookieOptions options)
    {
        options = default;
        if ((ack.Flags & (TcpFlags.Syn | TcpFlags.Rst | TcpFlags.Ack)) != TcpFlags.Ack)
        {
            return false;
        }

        var cookie = (ack.AcknowledgmentNumber - 1).Value;
        var low = cookie & ((1u << (32 - MacBits)) - 1);
        var current = Counter(now);
        var counter = ((ulong)current & 1) == ((low >> ParityShift) & 1) ? current : current - 1;
        var expected = Mac(cid, ack.SequenceNumber - 1, counter, low);
        var received = cookie >> (32 - MacBits);
        if (!TagComparison.FixedTimeEquals(expected, received))
        {
            return false;
        }

        options = Decode(low);
        return true;
    }

    /// <summary>
    /// The SYN the connection is created from once its cookie verified: the client's ISN (SEG.SEQ - 1 of its ACK) and
    /// the options the cookie carried, as the SYN itself would have given them to <see cref="TcpConnection.AcceptCookieSyn"/>.
    /// </summary>
    public static TcpSegmentRepr SynOf(in TcpSegmentRepr ack, SynCookieOptions options) => new()
    {
        SourcePort = ack.SourcePort,
        DestinationPort = ack.DestinationPort,
        SequenceNumber = ack.SequenceNumber - 1,
        Flags = TcpFlags.Syn,

        // The SYN's own window is lost; the ACK's is no older and is unscaled only if scaling was not agreed. The
        // engine takes SND.WND again from the ACK that completes the handshake (RFC 9293 §3.10.7.4, fifth step).
        Window = ack.Window,
        Options = new TcpOptions { MaxSegmentSize = options.MaxSegmentSize, WindowScale = options.WindowScale, SackPermitted = options.SackPermitted },
    };

    /// <summary>
    /// The stateless SYN+ACK answering <paramref name="syn"/> with ISN <paramref name="cookie"/>: the segment
    /// <see cref="TcpConnection"/> in SYN-RECEIVED would send (our MSS; window scale only when the SYN offered it
    /// and <paramref name="config"/> has a shift, RFC 7323 §2.2; SACK-permitted when the SYN offered it and
    /// <paramref name="config"/> has SACK on, RFC 2018 §2, which the cookie keeps for the connection made from the ACK;
    /// the unscaled window of a SYN), MTCP options apart.
    /// </summary>
    public static TcpSegmentRepr SynAck(TcpConfig config, in TcpSegmentRepr syn, SeqNumber cookie)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new TcpSegmentRepr
        {
            SourcePort = syn.DestinationPort,
            DestinationPort = syn.SourcePort,
            SequenceNumber = cookie,
            AcknowledgmentNumber = syn.SequenceNumber + 1,
            Flags = TcpFlags.Syn | TcpFlags.Ack,
            Window = (ushort)Math.Min(config.ReceiveBufferSize, ushort.MaxValue),
            Options = new TcpOptions
            {
                MaxSegmentSize = (ushort)config.MaxSegmentSize,
                WindowScale = syn.Options.WindowScale.HasValue ? config.WindowScaleShift : null,
                SackPermitted = config.SelectiveAcknowledgment && syn.Options.SackPermitted,
            },
        };
    }

    private long Counter(Instant now) => Math.DivRem(now.Microseconds, _periodMicroseconds, out var remainder) - (remainder < 0 ? 1 : 0);

    private static uint Encode(SynCookieOptions options)
    {
        var mssClass = (uint)Array.IndexOf(Classes, options.MaxSegmentSize);
        var windowScale = options.WindowScale is { } shift ? (uint)shift : NoWindowScale;
        return (mssClass << MssShift) | (windowScale << WindowScaleShift) | (options.SackPermitted ? 1u : 0u);
    }

    private static SynCookieOptions Decode(uint low)
    {
        var windowScale = (low >> WindowScaleShift) & NoWindowScale;
        return new SynCookieOptions(Classes[(low >> MssShift) & 0x7], windowScale == NoWindowScale ? null : (byte)windowScale, (low & 1) != 0);
    }

    private uint Mac(ConnectionId cid, SeqNumber clientIsn, long counter, uint low)
    {
        Span<byte> buffer = stackalloc byte[(2 * (1 + IpAddress.V6Length + 2)) + 4 + 8 + 4];
        var input = new MacInput(buffer, default);
        input.WriteConnectionId(cid);
        input.WriteUInt32(clientIsn.Value);
        input.WriteUInt64((ulong)counter);
        input.WriteUInt32(low);
        return (uint)(SipHash.Hash(_secret, input.Written) >> (64 - MacBits));
    }
}

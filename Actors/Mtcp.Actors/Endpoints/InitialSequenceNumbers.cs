using System.Buffers.Binary;
using System.Security.Cryptography;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// Initial sequence numbers as RFC 6528 §3 asks: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
/// where M is a timer ticking every 4 microseconds and F a keyed hash (here HMAC-SHA256, truncated to 32 bits). An
/// off-path attacker who does not know the key cannot predict the ISN of a connection; successive incarnations of
/// one 4-tuple still get increasing ISNs from M (RFC 9293 §3.4.1).
/// </summary>
internal sealed class InitialSequenceNumbers
{
    private const int KeyLength = 32;
    private const int MicrosecondsPerTick = 4;

    private readonly byte[] _key;

    /// <summary>A generator with a fresh random secret key.</summary>
    public InitialSequenceNumbers()
        : this(RandomNumberGenerator.GetBytes(KeyLength))
    {
    }

    /// <summary>A generator with a given key (at least 16 bytes), for reproducible tests.</summary>
    public InitialSequenceNumbers(ReadOnlySpan<byte> secretKey)
    {
        if (secretKey.Length < 16)
        {
            throw new ArgumentException("the ISN secret key needs at least 16 bytes (RFC 6528 §3: a 128-bit key)", nameof(secretKey));
        }

        _key = secretKey.ToArray();
    }

    public SeqNumber Next(Instant now, IpAddress localAddress, ushort localPort, IpAddress remoteAddress, ushort remotePort)
    {
        // Tuple layout: local address, local port, remote address, remote port (addresses 4 or 16 bytes).
        Span<byte> tuple = stackalloc byte[(2 * IpAddress.V6Length) + 4];
        var length = localAddress.WriteTo(tuple);
        BinaryPrimitives.WriteUInt16BigEndian(tuple[length..], localPort);
        length += 2;
        length += remoteAddress.WriteTo(tuple[length..]);
        BinaryPrimitives.WriteUInt16BigEndian(tuple[length..], remotePort);
        length += 2;

        Span<byte> hash = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, tuple[..length], hash);
        var keyed = BinaryPrimitives.ReadUInt32BigEndian(hash);
        var timer = unchecked((uint)(now.Microseconds / MicrosecondsPerTick));
        return new SeqNumber(unchecked(timer + keyed));
    }
}

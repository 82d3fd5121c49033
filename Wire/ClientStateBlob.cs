using System.Buffers.Binary;

namespace Mtcp.Wire;

/// <summary>
/// A client-stored state (beyond the thesis, its third mode of 3.2): what a buddy would hold for a connection, sealed
/// by the serving node under a key derived from the cluster key, kept by the client and presented on its special SYN
/// after a crash. The client reads the clear header (which state is newer, which of its bytes the state covers) and
/// nothing else; the header and the connection's Cid are the AEAD's associated data, so it cannot alter them either.
/// <code>
///  0       1       2                               10              14
/// +-------+-------+-------------------------------+---------------+
/// |version|key gen|        sequence (64)          | covers (32)   |
/// +-------+-------+-------------------------------+---------------+
/// |                    nonce (96 bits)                            |
/// +---------------------------------------------------------------+
/// |                ciphertext (the encoded state) ...             |
/// +---------------------------------------------------------------+
/// |                    tag (128 bits)                             |
/// +---------------------------------------------------------------+
/// </code>
/// <c>sequence</c> numbers the states sealed for one connection, so that an older one is refused after a newer;
/// <c>covers</c> is the client's sequence number up to which the state holds the client's bytes (its read log's end).
/// </summary>
public readonly record struct ClientStateBlob(byte KeyGeneration, ulong Sequence, SeqNumber Covers)
{
    /// <summary>The only layout there is.</summary>
    public const byte CurrentVersion = 1;

    public const int NonceLength = 12;

    public const int TagLength = 16;

    /// <summary>Version, key generation, sequence, covers and nonce: the associated data with the Cid.</summary>
    public const int HeaderLength = 14 + NonceLength;

    /// <summary>Bytes a blob takes beside its ciphertext.</summary>
    public const int Overhead = HeaderLength + TagLength;

    private const int KeyGenerationOffset = 1;
    private const int SequenceOffset = 2;
    private const int CoversOffset = 10;
    private const int NonceOffset = 14;

    /// <summary>
    /// Reads the clear header of <paramref name="blob"/>: false when it is shorter than a header and a tag, or of
    /// another version. Says nothing of its authenticity: only the sealing cluster can.
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> blob, out ClientStateBlob header)
    {
        header = default;
        if (blob.Length < Overhead || blob[0] != CurrentVersion)
        {
            return false;
        }

        header = new ClientStateBlob(
            blob[KeyGenerationOffset],
            BinaryPrimitives.ReadUInt64BigEndian(blob[SequenceOffset..]),
            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(blob[CoversOffset..])));
        return true;
    }

    /// <summary>Writes the header with <paramref name="nonce"/> into the first <see cref="HeaderLength"/> bytes of <paramref name="destination"/>.</summary>
    public void WriteHeader(Span<byte> destination, ReadOnlySpan<byte> nonce)
    {
        if (nonce.Length != NonceLength)
        {
            throw new ArgumentException($"a nonce is {NonceLength} bytes, got {nonce.Length}", nameof(nonce));
        }

        destination[0] = CurrentVersion;
        destination[KeyGenerationOffset] = KeyGeneration;
        BinaryPrimitives.WriteUInt64BigEndian(destination[SequenceOffset..], Sequence);
        BinaryPrimitives.WriteUInt32BigEndian(destination[CoversOffset..], Covers.Value);
        nonce.CopyTo(destination[NonceOffset..]);
    }

    /// <summary>The nonce of a blob whose header was read.</summary>
    public static ReadOnlySpan<byte> NonceOf(ReadOnlySpan<byte> blob) => blob.Slice(NonceOffset, NonceLength);
}

using System.Buffers.Binary;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// The per-connection migration secret: 128 bits that the origin server derives at connection setup
/// (<see cref="IMigrationAuthenticator.IssueCredential"/>) and gives the client on its SYN+ACK. Only the
/// client, the server holding the connection and servers holding the cluster key and the connection's
/// <see cref="MigrationCredential"/> know it; an off-path attacker sees neither the SYN+ACK nor the
/// cluster key. Held by value: no heap object per connection.
/// </summary>
public readonly struct MigrationSecret : IEquatable<MigrationSecret>
{
    public const int Length = 16;

    private readonly ulong _high;
    private readonly ulong _low;

    private MigrationSecret(ulong high, ulong low)
    {
        _high = high;
        _low = low;
    }

    /// <summary>From the 16 bytes carried on the SYN+ACK (or configured in a test).</summary>
    public static MigrationSecret FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"a migration secret is {Length} bytes, got {bytes.Length}", nameof(bytes));
        }

        return new MigrationSecret(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
    }

    /// <summary>Writes the 16 bytes in network order; returns <see cref="Length"/>.</summary>
    public int WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
        return Length;
    }

    internal bool IsZero => _high == 0 && _low == 0;

    public bool Equals(MigrationSecret other) => _high == other._high && _low == other._low;

    public override bool Equals(object? obj) => obj is MigrationSecret other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_high, _low);

    public static bool operator ==(MigrationSecret left, MigrationSecret right) => left.Equals(right);

    public static bool operator !=(MigrationSecret left, MigrationSecret right) => !left.Equals(right);

    /// <summary>Never the bytes: secrets must not reach logs.</summary>
    public override string ToString() => "MigrationSecret(redacted)";
}

/// <summary>
/// The key that signs Auth_trig for one connection during one epoch (thesis 3.2.1). It is derived from the
/// <see cref="MigrationSecret"/>, so the client can recompute it, but the secret cannot be recovered from it:
/// the server holding the connection can hand it to an authorised third party (an operator tool, a load
/// balancer) who can then trigger a migration of that connection, and nothing more, until the next
/// migration changes the epoch.
/// </summary>
public readonly struct TriggerKey : IEquatable<TriggerKey>
{
    public const int Length = 16;

    private readonly ulong _high;
    private readonly ulong _low;

    private TriggerKey(ulong high, ulong low)
    {
        _high = high;
        _low = low;
    }

    public static TriggerKey FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"a trigger key is {Length} bytes, got {bytes.Length}", nameof(bytes));
        }

        return new TriggerKey(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
    }

    public int WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
        return Length;
    }

    internal bool IsZero => _high == 0 && _low == 0;

    public bool Equals(TriggerKey other) => _high == other._high && _low == other._low;

    public override bool Equals(object? obj) => obj is TriggerKey other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_high, _low);

    public static bool operator ==(TriggerKey left, TriggerKey right) => left.Equals(right);

    public static bool operator !=(TriggerKey left, TriggerKey right) => !left.Equals(right);

    public override string ToString() => "TriggerKey(redacted)";
}

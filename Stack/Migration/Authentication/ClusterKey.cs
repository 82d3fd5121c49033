namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// A secret shared by all cooperating servers (distributed by configuration, never on the wire), with
/// the generation number that lets a connection say which key its migration secret was derived from.
/// Keys rotate by generation: servers keep the current and the previous one.
/// </summary>
public sealed class ClusterKey
{
    /// <summary>HMAC-SHA256 keys shorter than the hash output weaken it (RFC 2104 §3); we take exactly 32 bytes.</summary>
    public const int Length = 32;

    private readonly byte[] _key;
    private readonly byte[] _controlKey;

    public ClusterKey(byte generation, ReadOnlySpan<byte> key)
    {
        if (key.Length != Length)
        {
            throw new ArgumentException($"a cluster key is {Length} bytes, got {key.Length}", nameof(key));
        }

        Generation = generation;
        _key = key.ToArray();

        // A separate key for control-message MACs so that no MAC input of one kind can ever be taken
        // for an input of the other kind under the same key.
        _controlKey = new byte[Length];
        Span<byte> input = stackalloc byte[MacInput.MaxLength];
        var writer = new MacInput(input, MacLabel.ControlKey);
        MacInput.Hmac(_key, writer.Written, _controlKey);
    }

    public byte Generation { get; }

    /// <summary>
    /// The cluster key <c>HMAC(service key, "MTCP1 cluster key from service key\0")</c>: every holder of the same
    /// configured service key derives the same cluster key, and the label keeps it apart from any other use of the
    /// configured secret. Its generation is the first byte of <c>HMAC(service key, "MTCP1 cluster key
    /// generation\0")</c>, so that nodes agree on it without configuring it and a rotated key almost always gets
    /// another (two keys in force with one generation are refused, <see cref="MigrationAuthenticatorOptions"/>).
    /// </summary>
    /// <param name="serviceKey">at least 16 bytes of secret shared by the service's servers.</param>
    public static ClusterKey FromServiceKey(ReadOnlySpan<byte> serviceKey)
    {
        if (serviceKey.Length < 16)
        {
            throw new ArgumentException("a service key needs at least 16 bytes", nameof(serviceKey));
        }

        Span<byte> key = stackalloc byte[Length];
        MacInput.Hmac(serviceKey, MacLabel.ClusterKeyFromServiceKey, key);
        Span<byte> generation = stackalloc byte[Length];
        MacInput.Hmac(serviceKey, MacLabel.KeyGeneration, generation);
        return new ClusterKey(generation[0], key);
    }

    internal ReadOnlySpan<byte> Key => _key;

    internal ReadOnlySpan<byte> ControlKey => _controlKey;

    public override string ToString() => $"ClusterKey(generation {Generation})";
}

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

    internal ReadOnlySpan<byte> Key => _key;

    internal ReadOnlySpan<byte> ControlKey => _controlKey;

    public override string ToString() => $"ClusterKey(generation {Generation})";
}

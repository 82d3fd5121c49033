using Akka.Configuration;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;

namespace Mtcp.Actors.Api;

/// <summary>
/// <c>mtcp.migration.cluster-key</c>: the key every server node of a service shares. Empty turns migration off. The
/// runtime derives the nodes' cluster key from it (<see cref="MigrationAuthenticator.FromServiceKey"/>) and
/// authenticates each connection's migrations under the secret the origin issues on its SYN+ACK, and control
/// messages under the cluster key (docs/threat-model.md); a client agent needs no key, its value only turns
/// migration on.
/// </summary>
public static class MigrationKey
{
    public const string Path = "mtcp.migration.cluster-key";

    /// <summary>A second key accepted but never used to sign: the other key of a rotation (docs/threat-model.md).</summary>
    public const string AcceptedPath = "mtcp.migration.accepted-cluster-key";

    /// <summary>The authenticator under the cluster keys derived from the configured keys, as <c>MigrationSupport</c> takes it, or null when the key is empty (migration off).</summary>
    /// <exception cref="ConfigurationException">a key is neither 64 hex digits nor base64 of 32 bytes, or only the accepted key is set.</exception>
    public static MigrationAuthenticator? ReadAuthenticator(Config config) =>
        ReadOptions(config) is { } options ? new MigrationAuthenticator(options) : null;

    /// <summary>The cluster keys in force by <paramref name="config"/>: <see cref="Path"/> signs and derives, <see cref="AcceptedPath"/> is accepted too; null when <see cref="Path"/> is empty.</summary>
    /// <exception cref="ConfigurationException">a key is malformed, only the accepted key is set, or the two keys fall on one generation.</exception>
    internal static MigrationAuthenticatorOptions? ReadOptions(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var current = ReadKey(config, Path);
        var accepted = ReadKey(config, AcceptedPath);
        if (current is null)
        {
            return accepted is null ? null
                : throw new ConfigurationException($"{AcceptedPath} is set but {Path} is empty: a node accepts a second key only while it has one of its own");
        }

        var currentKey = ClusterKey.FromServiceKey(current);
        if (accepted is null)
        {
            return new MigrationAuthenticatorOptions(currentKey);
        }

        var acceptedKey = ClusterKey.FromServiceKey(accepted);
        if (acceptedKey.Generation == currentKey.Generation)
        {
            throw new ConfigurationException(
                current.AsSpan().SequenceEqual(accepted)
                    ? $"{AcceptedPath} repeats {Path}: leave it empty outside a rotation"
                    : $"{Path} and {AcceptedPath} fall on the same key generation ({currentKey.Generation}): generate another new key");
        }

        return new MigrationAuthenticatorOptions(currentKey, acceptedKey);
    }

    /// <summary>A fresh random key in the form <see cref="Path"/> takes (hex).</summary>
    public static string Generate() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(ClusterKey.Length));

    private static byte[]? ReadKey(Config config, string path)
    {
        var text = config.HasPath(path) ? config.GetString(path)?.Trim() ?? "" : "";
        if (text.Length == 0)
        {
            return null;
        }

        var key = TryHex(text) ?? TryBase64(text);
        if (key is not { Length: ClusterKey.Length })
        {
            throw new ConfigurationException($"{path} must be {ClusterKey.Length} bytes as {2 * ClusterKey.Length} hex digits or base64, got a value of {text.Length} characters");
        }

        return key;
    }

    private static byte[]? TryHex(string text)
    {
        try
        {
            return Convert.FromHexString(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static byte[]? TryBase64(string text)
    {
        var buffer = new byte[ClusterKey.Length + 3];
        return Convert.TryFromBase64String(text, buffer, out var written) ? buffer[..written] : null;
    }
}

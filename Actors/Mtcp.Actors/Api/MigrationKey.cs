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

    /// <summary>The authenticator under the cluster key derived from the configured key, as <c>MigrationSupport</c> takes it, or null when the key is empty (migration off).</summary>
    /// <exception cref="ConfigurationException">the key is neither 64 hex digits nor base64 of 32 bytes.</exception>
    public static MigrationAuthenticator? ReadAuthenticator(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var text = config.HasPath(Path) ? config.GetString(Path)?.Trim() ?? "" : "";
        if (text.Length == 0)
        {
            return null;
        }

        var key = TryHex(text) ?? TryBase64(text);
        if (key is not { Length: ClusterKey.Length })
        {
            throw new ConfigurationException($"{Path} must be {ClusterKey.Length} bytes as {2 * ClusterKey.Length} hex digits or base64, got a value of {text.Length} characters");
        }

        return MigrationAuthenticator.FromServiceKey(key);
    }

    /// <summary>A fresh random key in the form <see cref="Path"/> takes (hex).</summary>
    public static string Generate() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(ClusterKey.Length));

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

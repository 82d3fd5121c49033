using Akka.Configuration;
using DotNetty.Common;
using Mtcp.Actors.Api;

namespace Mtcp.Hosting;

/// <summary>
/// DotNetty's leak detection of the pooled buffers Akka.Remote's transport sends and receives the control plane in
/// (<c>mtcp.hosts.remote-buffer-leak-detection</c>). At its default level (simple) DotNetty draws a random number for
/// every buffer allocated and tracks one in 128 with a finalizable object, which was 2 % of a server node's CPU
/// samples during the scale benchmark's migrations (perf, README "Scale, CPU per migration") to watch for a bug in
/// Akka.Remote's own buffer handling. DotNetty reads its level once, from the environment variable
/// <c>io.netty.leakDetection.level</c> (its port of Java's system property), and also takes it through the public
/// <see cref="ResourceLeakDetector.Level"/>, which this sets: the level is then one key of the host's configuration,
/// documented and checked like the others, where an environment variable with dots in its name cannot even be
/// exported from a POSIX shell.
/// </summary>
public static class RemoteBufferLeakDetection
{
    public const string Path = "mtcp.hosts.remote-buffer-leak-detection";

    private static readonly Dictionary<string, ResourceLeakDetector.DetectionLevel> Levels = new(StringComparer.Ordinal)
    {
        ["disabled"] = ResourceLeakDetector.DetectionLevel.Disabled,
        ["simple"] = ResourceLeakDetector.DetectionLevel.Simple,
        ["advanced"] = ResourceLeakDetector.DetectionLevel.Advanced,
        ["paranoid"] = ResourceLeakDetector.DetectionLevel.Paranoid,
    };

    /// <summary>Applies <c>mtcp.hosts.remote-buffer-leak-detection</c> to every buffer DotNetty allocates from now on, in the whole process.</summary>
    /// <exception cref="ConfigurationException">the value is none of disabled, simple, advanced, paranoid.</exception>
    public static void Configure(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        ResourceLeakDetector.Level = HoconValues.Choice(config, Path, Levels);
    }
}

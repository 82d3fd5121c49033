using Akka.Configuration;

namespace Mtcp.Actors.Api;

/// <summary>
/// The reference configuration of the MTCP runtime (HOCON/mtcp-reference.conf, embedded in this
/// assembly), in the way Akka.NET modules ship theirs: every default lives in that file, and a node's
/// own configuration is layered over it.
/// </summary>
public static class MtcpConfig
{
    /// <summary>Manifest resource name of the embedded reference file (set by LogicalName in the project).</summary>
    internal const string ReferenceResourceName = "Mtcp.Actors.mtcp-reference.conf";

    private static readonly Lazy<Config> LazyReference = new(LoadReference);

    /// <summary>The parsed reference configuration; parsed once per process.</summary>
    public static Config Reference => LazyReference.Value;

    /// <summary>
    /// <paramref name="config"/> with the MTCP reference configuration as its fallback: keys set in
    /// <paramref name="config"/> win, every other key takes its documented default.
    /// </summary>
    public static Config WithFallback(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.WithFallback(Reference);
    }

    private static Config LoadReference()
    {
        using var stream = typeof(MtcpConfig).Assembly.GetManifestResourceStream(ReferenceResourceName)
            ?? throw new InvalidOperationException($"embedded resource {ReferenceResourceName} is missing from {typeof(MtcpConfig).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}

using Akka.Configuration;
using Mtcp.Actors.Api;

namespace Mtcp.Hosting;

/// <summary>
/// Loads a host's configuration in layers, highest priority first: the files given with <c>--config</c> (the
/// last one wins), the host's own configuration (server-node.conf or agent.conf, embedded in its assembly), and
/// the reference configuration of the runtime, which documents and defaults every key. Each file given with
/// <c>--config</c> is checked strictly: well-formed HOCON (<see cref="HoconSyntax"/>) and only documented keys under
/// <c>mtcp</c> (<see cref="KnownKeys"/>).
/// </summary>
public static class HostConfig
{
    /// <exception cref="ConfigurationException">a file is missing, not valid HOCON, or sets an unknown <c>mtcp</c> key; the message names it.</exception>
    public static Config Load(System.Reflection.Assembly hostAssembly, string hostResourceName, IEnumerable<FileInfo> overrideFiles)
    {
        ArgumentNullException.ThrowIfNull(hostAssembly);
        ArgumentNullException.ThrowIfNull(overrideFiles);
        using var resource = hostAssembly.GetManifestResourceStream(hostResourceName)
            ?? throw new InvalidOperationException($"embedded resource {hostResourceName} is missing from {hostAssembly.GetName().Name}");
        using var reader = new StreamReader(resource);
        var hostConfig = ConfigurationFactory.ParseString(reader.ReadToEnd());
        var knownKeys = new KnownKeys([MtcpConfig.Reference, hostConfig]);
        var config = MtcpConfig.WithFallback(hostConfig);
        foreach (var file in overrideFiles)
        {
            config = Parse(file, knownKeys).WithFallback(config);
        }

        return config;
    }

    private static Config Parse(FileInfo file, KnownKeys knownKeys)
    {
        if (!file.Exists)
        {
            throw new ConfigurationException($"configuration file {file.FullName} does not exist");
        }

        var source = $"configuration file {file.FullName}";
        var text = File.ReadAllText(file.FullName);
        HoconSyntax.Check(text, source);
        Config config;
        try
        {
            config = ConfigurationFactory.ParseString(text);
        }
        catch (Exception e) when (e is not ConfigurationException and not IOException)
        {
            throw new ConfigurationException($"{source} is not valid HOCON: {e.Message}", e);
        }

        knownKeys.Check(config, source);
        return config;
    }
}

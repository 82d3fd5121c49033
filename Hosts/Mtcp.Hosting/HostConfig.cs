using Akka.Configuration;
using Mtcp.Actors.Api;

namespace Mtcp.Hosting;

/// <summary>
/// Loads a host's configuration in layers, highest priority first: the files given with <c>--config</c> (the
/// last one wins), the host's own configuration (server-node.conf or agent.conf, embedded in its assembly), and
/// the reference configuration of the runtime, which documents and defaults every key.
/// </summary>
public static class HostConfig
{
    /// <exception cref="ConfigurationException">a file is missing or not valid HOCON; the message names it.</exception>
    public static Config Load(System.Reflection.Assembly hostAssembly, string hostResourceName, IEnumerable<FileInfo> overrideFiles)
    {
        ArgumentNullException.ThrowIfNull(hostAssembly);
        ArgumentNullException.ThrowIfNull(overrideFiles);
        using var resource = hostAssembly.GetManifestResourceStream(hostResourceName)
            ?? throw new InvalidOperationException($"embedded resource {hostResourceName} is missing from {hostAssembly.GetName().Name}");
        using var reader = new StreamReader(resource);
        var config = MtcpConfig.WithFallback(ConfigurationFactory.ParseString(reader.ReadToEnd()));
        foreach (var file in overrideFiles)
        {
            config = Parse(file).WithFallback(config);
        }

        return config;
    }

    private static Config Parse(FileInfo file)
    {
        if (!file.Exists)
        {
            throw new ConfigurationException($"configuration file {file.FullName} does not exist");
        }

        try
        {
            return ConfigurationFactory.ParseString(File.ReadAllText(file.FullName));
        }
        catch (Exception e) when (e is not ConfigurationException and not IOException)
        {
            throw new ConfigurationException($"configuration file {file.FullName} is not valid HOCON: {e.Message}", e);
        }
    }
}

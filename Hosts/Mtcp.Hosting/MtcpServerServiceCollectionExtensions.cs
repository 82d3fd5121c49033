using Akka.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mtcp.Hosting;

/// <summary>Registering a migrating MTCP server with a Generic Host.</summary>
public static class MtcpServerServiceCollectionExtensions
{
    /// <summary>
    /// Adds an <see cref="MtcpServerService"/> running the node of <paramref name="config"/> (with
    /// <see cref="HostConfig"/>'s layering, or any HOCON: <c>akka.*</c> for the cluster, <c>mtcp.*</c> for the
    /// runtime, migration and <c>mtcp.security</c>; the reference configuration is the fallback) as a member of the
    /// actor system named <paramref name="systemName"/> (every node of a cluster uses the same name). Map each port
    /// to its handler on the returned builder.
    /// </summary>
    public static MtcpServerBuilder AddMtcpServer(this IServiceCollection services, string systemName, Config config)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(systemName);
        ArgumentNullException.ThrowIfNull(config);
        var builder = new MtcpServerBuilder();
        services.AddSingleton(provider => new MtcpServerService(
            systemName,
            config,
            builder.Handlers,
            provider.GetRequiredService<ILogger<MtcpServerService>>(),
            provider.GetRequiredService<IHostApplicationLifetime>()));
        services.AddHostedService(provider => provider.GetRequiredService<MtcpServerService>());
        return builder;
    }
}

/// <summary>The ports an <see cref="MtcpServerService"/> serves, each with its application.</summary>
public sealed class MtcpServerBuilder
{
    private readonly Dictionary<ushort, MtcpConnectionHandler> _handlers = [];

    internal IReadOnlyDictionary<ushort, MtcpConnectionHandler> Handlers => _handlers;

    /// <summary>Serves <paramref name="port"/> with <paramref name="handler"/>, one call per accepted connection.</summary>
    public MtcpServerBuilder MapConnections(ushort port, MtcpConnectionHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (port == 0 || !_handlers.TryAdd(port, handler))
        {
            throw new ArgumentException(port == 0 ? "port 0 is not a service port" : $"port {port} is mapped twice", nameof(port));
        }

        return this;
    }
}

using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors;
using Mtcp.Actors.Api;
using Mtcp.Hosting;

namespace Mtcp.Agent;

/// <summary>No endpoint of the service pool answered.</summary>
public sealed class ServiceUnavailableException(string message) : IOException(message);

/// <summary>The agent's actor system and MTCP runtime, and connecting to the service pool through them.</summary>
public sealed class AgentRuntime : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly TimeSpan _connectTimeout;

    private AgentRuntime(ActorSystem system, MtcpRuntime runtime, TimeSpan connectTimeout)
    {
        _system = system;
        Runtime = runtime;
        _connectTimeout = connectTimeout;
    }

    public MtcpRuntime Runtime { get; }

    /// <summary>
    /// Starts the runtime on <c>mtcp.runtime</c> and logs the transport it chose; with a
    /// <c>mtcp.migration.cluster-key</c> the connections it opens can migrate.
    /// </summary>
    public static async Task<AgentRuntime> StartAsync(Config config, AgentSettings settings)
    {
        var tags = MigrationKey.ReadTags(config);
        var system = ActorSystem.Create("mtcp-agent", config);
        try
        {
            var runtime = MtcpRuntime.Start(system);
            ConsoleLog.Info($"transport: {runtime.TransportDescription} (mtcp.runtime.transport = {runtime.Settings.Transport.ToString().ToLowerInvariant()})");
            if (tags is not null)
            {
                await runtime.EnableMigrationAsync(new MigrationSupport(tags)).ConfigureAwait(false);
            }

            return new AgentRuntime(system, runtime, settings.ConnectTimeout);
        }
        catch
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Connects to the first of <paramref name="services"/> that answers within the connect timeout.</summary>
    /// <exception cref="ServiceUnavailableException">none answered; the message says what each did.</exception>
    public async Task<(MtcpClient Client, MtcpStream Stream, IPEndPoint Service)> ConnectAsync(IReadOnlyList<IPEndPoint> services, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var service in services)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_connectTimeout);
            var client = new MtcpClient(Runtime);
            try
            {
                return (client, await client.ConnectAsync(service, timeout.Token).ConfigureAwait(false), service);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                client.Dispose();
                failures.Add($"{service}: no answer within {_connectTimeout.TotalSeconds:0.#} s (mtcp.agent.connect-timeout)");
            }
            catch (IOException e)
            {
                client.Dispose();
                failures.Add($"{service}: {e.Message}");
            }
        }

        throw new ServiceUnavailableException($"no service endpoint answered: {string.Join("; ", failures)}");
    }

    public async ValueTask DisposeAsync()
    {
        await Runtime.DisposeAsync().ConfigureAwait(false);
        await _system.Terminate().ConfigureAwait(false);
    }
}

using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Hosting;
using Mtcp.Policies;

namespace Mtcp.Agent;

/// <summary>No endpoint of the service pool answered.</summary>
public sealed class ServiceUnavailableException(string message) : IOException(message);

/// <summary>The agent's actor system and MTCP runtime, and connecting to the service pool through them.</summary>
public sealed class AgentRuntime : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly AgentSettings _settings;

    private AgentRuntime(ActorSystem system, MtcpRuntime runtime, AgentSettings settings)
    {
        _system = system;
        Runtime = runtime;
        _settings = settings;
    }

    public MtcpRuntime Runtime { get; }

    /// <summary>
    /// Starts the runtime on <c>mtcp.runtime</c> and logs the transport it chose; with a
    /// <c>mtcp.agent.migration = on</c> the connections it opens can migrate (no key needed).
    /// </summary>
    public static async Task<AgentRuntime> StartAsync(Config config, AgentSettings settings)
    {
        var system = HostActorSystem.Create("mtcp-agent", config);
        try
        {
            var runtime = MtcpRuntime.Start(system);
            ConsoleLog.Info($"transport: {runtime.TransportDescription} (mtcp.runtime.transport = {runtime.ConfiguredTransport})");
            if (settings.Migration)
            {
                // A client holds no cluster secret: each connection's comes on its SYN+ACK (docs/threat-model.md).
                await runtime.EnableClientMigrationAsync().ConfigureAwait(false);
            }

            if (settings.Policy is { } policy)
            {
                ConsoleLog.Info(runtime.MigrationEnabled
                    ? $"client policy: {string.Join("; ", policy.Triggers.Select(trigger => Describe(trigger, policy)))}; destination {policy.DestinationChoice}; watches every connection"
                    : "client policy: off, as migration is (mtcp.agent.migration = off)");
            }

            return new AgentRuntime(system, runtime, settings);
        }
        catch
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>One trigger of the agent's policy and the parameters that decide when it fires, for the start-up line.</summary>
    private static string Describe(PolicyKind trigger, ClientPolicySettings policy) => trigger switch
    {
        PolicyKind.Throughput => $"throughput (alpha {policy.Throughput.Alpha}, trigger ratio {policy.Throughput.TriggerRatio})",
        PolicyKind.ResponseTime => $"response-time (alpha {policy.ResponseTime.Alpha}, baseline multiplier {policy.ResponseTime.BaselineMultiplier}, floor {policy.ResponseTime.BaselineFloor.TotalMilliseconds} ms, fixed bound {policy.ResponseTime.FixedBound.TotalMilliseconds} ms, {policy.ResponseTime.ConsecutiveRequests} slow requests in a row)",
        PolicyKind.Latency => $"latency (a gap in an answer above {policy.Latency.FixedBound.TotalMilliseconds} ms, {policy.Latency.ConsecutiveSegments} in a row)",
        _ => trigger.ToString(),
    };

    /// <summary>Connects to the first of <paramref name="services"/> that answers within the connect timeout.</summary>
    /// <exception cref="ServiceUnavailableException">none answered; the message says what each did.</exception>
    public async Task<(MtcpClient Client, MtcpStream Stream, IPEndPoint Service)> ConnectAsync(IReadOnlyList<IPEndPoint> services, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var service in services)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_settings.ConnectTimeout);
            var client = new MtcpClient(Runtime);
            try
            {
                return (client, await client.ConnectAsync(service, timeout.Token).ConfigureAwait(false), service);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                client.Dispose();
                failures.Add($"{service}: no answer within {_settings.ConnectTimeout.TotalSeconds:0.#} s (mtcp.agent.connect-timeout)");
            }
            catch (IOException e)
            {
                client.Dispose();
                failures.Add($"{service}: {e.Message}");
            }
        }

        throw new ServiceUnavailableException($"no service endpoint answered: {string.Join("; ", failures)}");
    }

    /// <summary>
    /// Puts <paramref name="client"/>, connected to <paramref name="service"/>, under the agent's client policy (thesis
    /// 5.3.2): reads through the driver's stream are its observations, and each migration it decides is noted in
    /// <paramref name="causes"/> with its reason before it starts. Its destinations are those the server announced with
    /// the same port, else the pool's (<see cref="AgentSettings.DestinationsOf"/>). Null when the policy is off,
    /// migration is off, or there is no other endpoint of the same service to move to.
    /// </summary>
    internal async Task<ClientPolicyDriver?> WatchWithPolicyAsync(MtcpClient client, IPEndPoint service, MigrationCauses causes, string name)
    {
        if (_settings.Policy is not { } policy || !Runtime.MigrationEnabled)
        {
            return null;
        }

        var alternates = _settings.DestinationsOf(service, await client.GetAlternateServersAsync().ConfigureAwait(false));
        if (alternates.Count == 0)
        {
            ConsoleLog.Warning($"{name}: no client policy: neither the server nor {AgentSettings.ServiceEndpointsPath} names another endpoint with port {service.Port} to migrate to");
            return null;
        }

        var driver = ClientPolicyDriver.Start(_system, client, policy, [.. alternates.Prepend(MigrationCauses.Endpoint(service))]);
        driver.Decided += (_, decision) =>
        {
            // The policy decides only with a destination; a null one is held back as NoDestination.
            if (decision.Destination is { } destination)
            {
                var cause = new MigrationCause(MigrationCause.Policy, $"{decision.Reason}: {decision.Detail}");
                causes.Requested(destination, cause);
                ConsoleLog.Info($"{name}: the client policy migrates it to {destination} ({cause.Reason})");
            }
        };
        return driver;
    }

    public async ValueTask DisposeAsync()
    {
        await Runtime.DisposeAsync().ConfigureAwait(false);
        await _system.Terminate().ConfigureAwait(false);
    }
}

using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Agent;
using Mtcp.Hosting;
using Spectre.Console;

// Exit codes: 0 success, 1 the operation failed, 2 bad configuration or arguments.
const int Failed = 1;
const int BadConfiguration = 2;

var configOption = new Option<FileInfo[]>("--config", "-c")
{
    Description = "A HOCON file layered over agent.conf and the reference configuration; repeatable, the last wins.",
    Recursive = true,
};
var localAddressOption = new Option<string?>("--local-address")
{
    Description = "Overrides mtcp.runtime.local-address: the agent's MTCP address (each process on one machine needs its own).",
    Recursive = true,
};
var controlOption = new Option<string?>("--control")
{
    Description = "Overrides mtcp.agent.control-endpoint: where serve answers status and migrate, unix:<path> (the default is unix:mtcp-agent.sock) or address:port.",
    Recursive = true,
};

var serve = new Command("serve", "Listen on a local kernel-TCP port and relay each connection over MTCP to the service (for curl, nc, redis-cli).");
var listenOption = new Option<string?>("--listen") { Description = "Overrides mtcp.agent.serve.listen, e.g. 127.0.0.1:8080." };
var serviceOption = new Option<string[]>("--service") { Description = "Overrides mtcp.agent.service-endpoints; repeatable, tried in order." };
serve.Options.Add(listenOption);
serve.Options.Add(serviceOption);

var fetch = new Command("fetch", "Download a file over MTCP with HTTP GET, showing progress, and print its SHA-256.");
var targetArgument = new Argument<string>("url-or-path") { Description = "http://<service address>:<port>/<file>, or /<file> for the configured service pool." };
var outputOption = new Option<FileInfo?>("--output", "-o") { Description = "Where the body is written; the URL's last segment by default." };
var noProgressOption = new Option<bool>("--no-progress") { Description = "Do not draw the progress bar." };
var migrateEveryOption = new Option<int>("--migrate-every-mib") { Description = "Migrate the connection to the next service endpoint each time this many MiB arrived (0: never)." };
fetch.Arguments.Add(targetArgument);
fetch.Options.Add(outputOption);
fetch.Options.Add(noProgressOption);
fetch.Options.Add(migrateEveryOption);
fetch.Options.Add(serviceOption);

var status = new Command("status", "Show the running agent's transport and relayed connections (asks its control endpoint).");
var jsonOption = new Option<bool>("--json") { Description = "Print the raw status document." };
status.Options.Add(jsonOption);

var migrate = new Command("migrate", "Migrate a relayed connection to another server of the service.");
var connectionOption = new Option<long?>("--connection") { Description = "The relay id shown by status; all connections when omitted." };
var destinationOption = new Option<string?>("--to") { Description = "The destination service endpoint; when omitted, the next endpoint with the same port in mtcp.agent.service-endpoints (the same application on another node)." };
migrate.Options.Add(connectionOption);
migrate.Options.Add(destinationOption);

var root = new RootCommand("MTCP client agent: gives unmodified TCP clients connections to an MTCP service.") { serve, fetch, status, migrate };
root.Options.Add(configOption);
root.Options.Add(localAddressOption);
root.Options.Add(controlOption);

serve.SetAction(async (parseResult, _) =>
{
    if (!TryLoad(parseResult, out var config, out var settings))
    {
        return BadConfiguration;
    }

    PrometheusEndpoint? metricsEndpoint;
    try
    {
        metricsEndpoint = settings.MetricsEndpoint is { } endPoint ? PrometheusEndpoint.Start(endPoint, AgentSettings.MetricsEndpointPath) : null;
    }
    catch (InvalidOperationException e)
    {
        ConsoleLog.Error($"cannot start: {e.Message}");
        return Failed;
    }

    using var metrics = metricsEndpoint;
    using var stopping = new ShutdownSignals();
    return await RunWithRuntimeAsync(config, settings, async agent =>
    {
        await new RelayServer(agent, settings).RunAsync(stopping.Token);
        return 0;
    });
});

fetch.SetAction(async (parseResult, cancellationToken) =>
{
    if (!TryLoad(parseResult, out var config, out var settings))
    {
        return BadConfiguration;
    }

    var target = parseResult.GetRequiredValue(targetArgument);
    var output = parseResult.GetValue(outputOption) ?? new FileInfo(Path.GetFileName(target.Split('?')[0]) is { Length: > 0 } name ? name : "index.html");
    return await RunWithRuntimeAsync(config, settings, async agent =>
    {
        try
        {
            var migrateEvery = (long)Math.Max(0, parseResult.GetValue(migrateEveryOption)) << 20;
            var result = await new Fetcher(agent, settings).FetchAsync(target, output, !parseResult.GetValue(noProgressOption), migrateEvery, cancellationToken);
            var seconds = Math.Max(result.Elapsed.TotalSeconds, 1e-6);
            Console.WriteLine($"{result.Sha256}  {output.FullName}");
            ConsoleLog.Info($"received {result.Bytes} bytes of {result.Path} from {result.Service} in {seconds:0.000} s ({result.Bytes / seconds / 1e6:0.0} MB/s) across {result.Migrations} migrations ({result.PolicyMigrations} by the client policy); SHA-256 {result.Sha256}");
            return 0;
        }
        catch (Exception e) when (e is FetchFailedException or IOException)
        {
            ConsoleLog.Error($"fetch failed: {e.Message}");
            return Failed;
        }
    });
});

status.SetAction(async (parseResult, cancellationToken) =>
{
    if (!TryLoad(parseResult, out _, out var settings))
    {
        return BadConfiguration;
    }

    string document;
    try
    {
        document = await AskAgentAsync(settings.ControlEndpoint, "status", cancellationToken);
    }
    catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
    {
        ConsoleLog.Error($"no agent answers at {settings.ControlEndpoint} (mtcp.agent.control-endpoint): {e.Message}; is \"serve\" running?");
        return Failed;
    }

    if (parseResult.GetValue(jsonOption))
    {
        Console.WriteLine(document);
        return 0;
    }

    var agentStatus = JsonSerializer.Deserialize(document, AgentJson.Default.AgentStatus)!;
    var console = AnsiConsole.Console;
    console.MarkupLineInterpolated($"[bold]transport[/]  {agentStatus.Transport}");
    console.MarkupLineInterpolated($"[bold]listening[/]  {agentStatus.Listen}, relaying to {string.Join(", ", agentStatus.Services)}");
    console.MarkupLineInterpolated($"[bold]relays[/]     {agentStatus.Connections.Count} open (at most {agentStatus.MaxConnections}), {agentStatus.Accepted} accepted, {agentStatus.Failed} failed, {agentStatus.Refused} refused at the cap");
    console.MarkupLineInterpolated($"[bold]migration[/]  {(agentStatus.MigrationAvailable ? "enabled" : $"off ({AgentSettings.MigrationPath} = off)")}");
    if (agentStatus.Connections.Count > 0)
    {
        console.Write(StatusView.Relays(agentStatus.Connections));
        foreach (var line in StatusView.Unreplicated(agentStatus.Connections))
        {
            console.WriteLine(line);
        }
    }
    if (agentStatus.RecentlyClosed.Count > 0)
    {
        console.MarkupLine("[bold]recently closed[/]");
        console.Write(StatusView.Relays(agentStatus.RecentlyClosed));
    }

    var migrations = agentStatus.Connections.Concat(agentStatus.RecentlyClosed)
        .SelectMany(relay => relay.Migrations.Select(migration => (relay.Id, migration)))
        .OrderBy(entry => entry.migration.At)
        .ToList();
    if (migrations.Count > 0)
    {
        console.MarkupLine("[bold]migrations[/] (relay, time, from -> to, outcome, client's wait, received before)");
        foreach (var (id, migration) in migrations)
        {
            console.WriteLine(StatusView.Migration(id, migration));
        }
    }

    return 0;
});

migrate.SetAction(async (parseResult, cancellationToken) =>
{
    if (!TryLoad(parseResult, out _, out var settings))
    {
        return BadConfiguration;
    }

    var destination = parseResult.GetValue(destinationOption);
    if (destination is not null && (!IPEndPoint.TryParse(destination, out var endPoint) || endPoint.Port == 0))
    {
        ConsoleLog.Error($"--to {destination} must be address:port");
        return BadConfiguration;
    }

    var relay = parseResult.GetValue(connectionOption)?.ToString(CultureInfo.InvariantCulture) ?? "*";
    string document;
    try
    {
        document = await AskAgentAsync(settings.ControlEndpoint, $"migrate {relay} {destination ?? "*"}", cancellationToken);
    }
    catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
    {
        ConsoleLog.Error($"no agent answers at {settings.ControlEndpoint} (mtcp.agent.control-endpoint): {e.Message}; is \"serve\" running?");
        return Failed;
    }

    var result = JsonSerializer.Deserialize(document, AgentJson.Default.MigrateResult)!;
    if (result.Error is { } error)
    {
        ConsoleLog.Error($"migrate: {error}");
        return Failed;
    }

    foreach (var outcome in result.Outcomes)
    {
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"relay {outcome.Relay}: {outcome.From} -> {outcome.To} {(outcome.Completed ? "completed" : $"failed: {outcome.FailureReason}")} in {outcome.DurationMs:0.000} ms"));
    }

    if (result.Outcomes.Count == 0)
    {
        ConsoleLog.Warning("migrate: the agent has no open relay");
    }

    return result.Outcomes.All(outcome => outcome.Completed) ? 0 : Failed;
});

return await HostCommandLine.InvokeAsync(root, args);

bool TryLoad(ParseResult parseResult, out Config config, out AgentSettings settings)
{
    try
    {
        config = HostConfig.Load(typeof(AgentSettings).Assembly, "Mtcp.Agent.agent.conf", parseResult.GetValue(configOption) ?? []);
        var overrides = new List<string>();
        if (parseResult.GetValue(localAddressOption) is { } localAddress)
        {
            overrides.Add($"mtcp.runtime.local-address = \"{localAddress}\"");
        }

        if (parseResult.GetValue(controlOption) is { } control)
        {
            overrides.Add($"mtcp.agent.control-endpoint = \"{control}\"");
        }

        if (parseResult.GetValue(listenOption) is { } listen)
        {
            overrides.Add($"mtcp.agent.serve.listen = \"{listen}\"");
        }

        if (parseResult.GetValue(serviceOption) is { Length: > 0 } services)
        {
            overrides.Add($"{AgentSettings.ServiceEndpointsPath} = [{string.Join(", ", services.Select(service => $"\"{service}\""))}]");
        }

        config = ConfigurationFactory.ParseString(string.Join("\n", overrides)).WithFallback(config);
        ConsoleLog.Configure(config);
        settings = AgentSettings.Create(config);
        MtcpRuntime.ValidateSettings(config);
        if (MigrationKey.ReadAuthenticator(config) is not null)
        {
            ConsoleLog.Warning($"{MigrationKey.Path} is set, but the agent does not use it (each connection's secret comes on its SYN+ACK): remove it from this host, since whoever holds it can forge every migration of the service");
        }

        return true;
    }
    catch (ConfigurationException e)
    {
        ConsoleLog.Error($"configuration error: {e.Message}");
        config = Config.Empty;
        settings = null!;
        return false;
    }
}

static async Task<int> RunWithRuntimeAsync(Config config, AgentSettings settings, Func<AgentRuntime, Task<int>> run)
{
    AgentRuntime agent;
    try
    {
        agent = await AgentRuntime.StartAsync(config, settings);
    }
    catch (ConfigurationException e)
    {
        ConsoleLog.Error($"configuration error: {e.Message}");
        return BadConfiguration;
    }
    catch (Exception e) when (e is Mtcp.Transports.PacketTransportException or InvalidOperationException)
    {
        ConsoleLog.Error($"cannot start the MTCP runtime: {e.Message}");
        return Failed;
    }

    await using (agent)
    {
        try
        {
            return await run(agent);
        }
        catch (ConfigurationException e)
        {
            ConsoleLog.Error($"configuration error: {e.Message}");
            return BadConfiguration;
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            ConsoleLog.Error(e.Message);
            return Failed;
        }
    }
}

// One request line to the running serve's control endpoint; its answer is one JSON document.
static async Task<string> AskAgentAsync(EndPoint controlEndpoint, string request, CancellationToken cancellationToken)
{
    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

    // A migration waits for the new server's SYN+ACK, bounded by the runtime's migration timeouts.
    timeout.CancelAfter(TimeSpan.FromSeconds(30));
    using var stream = new NetworkStream(await ControlSocket.ConnectAsync(controlEndpoint, timeout.Token), ownsSocket: true);
    await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request + "\n"), timeout.Token);
    using var reader = new StreamReader(stream);
    return (await reader.ReadToEndAsync(timeout.Token)).Trim();
}

using System.CommandLine;
using System.ComponentModel;
using Akka.Configuration;
using Mtcp.Demo;
using Mtcp.Hosting;

// Exit codes: 0 everything verified, 1 a check failed (the reason is printed), 2 the demo could not run.
var configOption = new Option<FileInfo[]>("--config", "-c") { Description = "A HOCON file layered over demo.conf (mtcp.demo); repeatable, the last wins." };
var networkOption = new Option<string?>("--network") { Description = "Overrides mtcp.demo.network: servers at <network>.2-.4, the agent at <network>.9; with --ipv6, mtcp.demo.ipv6-network (a /64 prefix such as fd00:6d74:6370::)." };
var ipv6Option = new Option<bool>("--ipv6") { Description = "Sets mtcp.demo.family = ipv6: every node, agent and download on IPv6 (needs root: it adds the nodes' addresses to the loopback interface for the run)." };
var transportOption = new Option<string?>("--transport") { Description = "Overrides mtcp.demo.transport: auto, raw or udp." };
var sizeOption = new Option<int?>("--size-mib") { Description = "Overrides mtcp.demo.file-size, in MiB." };
var migrationsOption = new Option<int?>("--migrations") { Description = "Overrides mtcp.demo.migrations." };
var rateOption = new Option<int?>("--rate-mib") { Description = "Overrides mtcp.demo.rate, in MiB/s." };
var seedOption = new Option<int?>("--seed") { Description = "Overrides mtcp.demo.seed." };
var root = new RootCommand("MTCP demo: three server nodes and a client agent on this machine; curl downloads a file through the agent while its connection migrates, a node leaves and the serving node crashes; prints a timeline and verifies the SHA-256.")
{
    configOption, networkOption, ipv6Option, transportOption, sizeOption, migrationsOption, rateOption, seedOption,
};
root.SetAction(async (parseResult, cancellationToken) =>
{
    DemoOptions options;
    try
    {
        var overrides = new List<string>();
        void Override(string key, string? value)
        {
            if (value is not null)
            {
                overrides.Add($"mtcp.demo.{key} = {value}");
            }
        }

        var ipv6 = parseResult.GetValue(ipv6Option);
        Override("family", ipv6 ? "ipv6" : null);
        Override(ipv6 ? "ipv6-network" : "network", parseResult.GetValue(networkOption) is { } network ? $"\"{network}\"" : null);
        Override("transport", parseResult.GetValue(transportOption));
        Override("file-size", parseResult.GetValue(sizeOption) is { } size ? $"{size}MiB" : null);
        Override("migrations", parseResult.GetValue(migrationsOption)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Override("rate", parseResult.GetValue(rateOption) is { } rate ? $"{rate}MiB" : null);
        Override("seed", parseResult.GetValue(seedOption)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var config = ConfigurationFactory.ParseString(string.Join("\n", overrides))
            .WithFallback(HostConfig.Load(typeof(DemoOptions).Assembly, "Mtcp.Demo.demo.conf", parseResult.GetValue(configOption) ?? []));
        options = DemoOptions.Create(config);
    }
    catch (ConfigurationException e)
    {
        Console.WriteLine($"configuration error: {e.Message}");
        return 2;
    }

    using var stopping = new ShutdownSignals(cancellationToken);
    using var demo = new DemoScenario(options);
    try
    {
        return await demo.RunAsync(stopping.Token);
    }
    catch (DemoFailedException e)
    {
        Console.WriteLine($"demo FAILED: {e.Message}");
        return 1;
    }
    catch (OperationCanceledException)
    {
        Console.WriteLine("demo interrupted; stopping every process it started");
        return 1;
    }
    catch (DemoSetupException e)
    {
        Console.WriteLine($"demo could not run: {e.Message}");
        return 2;
    }
    catch (Win32Exception e)
    {
        Console.WriteLine($"demo could not run: {e.Message} (it needs dotnet and curl on the PATH)");
        return 2;
    }
});

return await HostCommandLine.InvokeAsync(root, args);

using System.CommandLine;
using System.ComponentModel;
using System.Runtime.InteropServices;
using Mtcp.Demo;

// Exit codes: 0 everything verified, 1 a check failed (the reason is printed), 2 the demo could not run.
var networkOption = new Option<string>("--network") { Description = "First three octets of the loopback addresses: servers at .2-.4, the agent at .9.", DefaultValueFactory = _ => "127.0.0" };
var sizeOption = new Option<int>("--size-mib") { Description = "Size of the generated file in MiB.", DefaultValueFactory = _ => 64 };
var migrationsOption = new Option<int>("--migrations") { Description = "Operator-triggered migrations, evenly spaced over the download (at least 2).", DefaultValueFactory = _ => 6 };
var rateOption = new Option<int>("--rate") { Description = "curl's download rate limit in MB/s, so that the download can be watched.", DefaultValueFactory = _ => 4 };
var seedOption = new Option<int>("--seed") { Description = "Seed of the generated file's bytes.", DefaultValueFactory = _ => 1 };
var root = new RootCommand("MTCP demo: three server nodes and a client agent on this machine; curl downloads a file through the agent while its connection migrates and a node leaves; prints a timeline and verifies the SHA-256.")
{
    networkOption, sizeOption, migrationsOption, rateOption, seedOption,
};
root.SetAction(async (parseResult, cancellationToken) =>
{
    var options = new DemoOptions(
        parseResult.GetRequiredValue(networkOption),
        Math.Max(1, parseResult.GetValue(sizeOption)),
        Math.Max(2, parseResult.GetValue(migrationsOption)),
        Math.Max(1, parseResult.GetValue(rateOption)),
        parseResult.GetValue(seedOption));
    using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    void Stop(PosixSignalContext context)
    {
        context.Cancel = true;
        stopping.Cancel();
    }

    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
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
    catch (Win32Exception e)
    {
        Console.WriteLine($"demo could not run: {e.Message} (it needs dotnet and curl on the PATH)");
        return 2;
    }
});

return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

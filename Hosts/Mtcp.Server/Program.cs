using System.CommandLine;
using Akka.Configuration;
using Mtcp.Hosting;
using Mtcp.Server;

var configOption = new Option<FileInfo[]>("--config", "-c")
{
    Description = "A HOCON file layered over server-node.conf and the reference configuration; repeatable, the last wins.",
    AllowMultipleArgumentsPerToken = false,
};
var root = new RootCommand("MTCP server node: joins the cluster and serves the sample applications over MTCP.") { configOption };
root.SetAction(async (parseResult, _) =>
{
    ServerNode node;
    using var metrics = new ServerMetrics();
    try
    {
        var config = HostConfig.Load(typeof(ServerNode).Assembly, "Mtcp.Server.server-node.conf", parseResult.GetValue(configOption) ?? []);
        node = ServerNode.Create(config, metrics);
    }
    catch (ConfigurationException e)
    {
        ConsoleLog.Error($"configuration error: {e.Message}");
        return 2;
    }

    using var stopping = new ShutdownSignals();
    try
    {
        await node.RunAsync(stopping.Token);
        return 0;
    }
    catch (ConfigurationException e)
    {
        ConsoleLog.Error($"configuration error: {e.Message}");
        return 2;
    }
    catch (Exception e) when (e is Mtcp.Transports.PacketTransportException or Akka.Actor.AskTimeoutException or InvalidOperationException)
    {
        ConsoleLog.Error($"cannot start: {e.Message}");
        return 1;
    }
});

return await HostCommandLine.InvokeAsync(root, args);

using System.CommandLine;
using Akka.Configuration;
using Mtcp.Hosting;
using Mtcp.Server;

var configOption = new Option<FileInfo[]>("--config", "-c")
{
    Description = "A HOCON file layered over server-node.conf and the reference configuration; repeatable, the last wins.",
    AllowMultipleArgumentsPerToken = false,
};
var outOption = new Option<DirectoryInfo>("--out") { Description = "The directory the files are written to (created if missing).", Required = true };
var daysOption = new Option<int>("--days") { Description = "How many days the certificate is valid.", DefaultValueFactory = _ => 365 };
var caOption = new Option<DirectoryInfo>("--ca") { Description = "The directory holding the cluster's ca.crt and ca.key (made by certs init).", Required = true };
var nameOption = new Option<string>("--name") { Description = "The node's name: the certificate's subject (CN) and the files' name (<name>.crt, <name>.key).", Required = true };
var sanOption = new Option<string[]>("--san") { Description = "An IP address or host name of the node for the certificate's subject alternative names; repeatable." };

var init = new Command("init", "Create the cluster's own certificate authority: ca.crt (give it to every node) and ca.key (keep it off the nodes).")
{
    outOption, daysOption,
};
init.SetAction(parseResult => RunCertificateCommand(() =>
{
    var files = ClusterCertificates.CreateAuthority(parseResult.GetValue(outOption)!.FullName, "mtcp-cluster-ca", TimeSpan.FromDays(parseResult.GetValue(daysOption)));
    Console.WriteLine($"cluster CA: {files.CertificatePath} (mtcp.security.ca-certificate of every node), key {files.KeyPath}");
}));

var issue = new Command("issue", "Issue a node's certificate under the cluster's CA: <name>.crt and <name>.key, for mtcp.security.node-certificate and node-key.")
{
    caOption, nameOption, outOption, daysOption, sanOption,
};
issue.SetAction(parseResult => RunCertificateCommand(() =>
{
    var files = ClusterCertificates.IssueNode(
        parseResult.GetValue(caOption)!.FullName,
        parseResult.GetValue(nameOption)!,
        parseResult.GetValue(sanOption) ?? [],
        parseResult.GetValue(outOption)!.FullName,
        TimeSpan.FromDays(parseResult.GetValue(daysOption)));
    Console.WriteLine($"node certificate: {files.CertificatePath} (mtcp.security.node-certificate), key {files.KeyPath} (mtcp.security.node-key)");
}));

var certs = new Command("certs", "Make the certificates of the control plane's mutual TLS (docs/threat-model.md).") { init, issue };
var root = new RootCommand("MTCP server node: joins the cluster and serves the sample applications over MTCP.") { configOption, certs };
root.SetAction(async (parseResult, _) =>
{
    Config ReadConfiguration() => HostConfig.Load(typeof(ServerNode).Assembly, "Mtcp.Server.server-node.conf", parseResult.GetValue(configOption) ?? []);

    ServerNode node;
    using var metrics = new ServerMetrics();
    try
    {
        var config = ReadConfiguration();
        ConsoleLog.Configure(config);
        RemoteBufferLeakDetection.Configure(config);
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
        await node.RunAsync(ReadConfiguration, stopping.Token);
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

// Exit codes: 0 written, 1 the files could not be written (one exists already, or no access), 2 bad arguments.
static int RunCertificateCommand(Action write)
{
    try
    {
        write();
        return 0;
    }
    catch (ArgumentException e)
    {
        ConsoleLog.Error(e.Message);
        return 2;
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
    {
        ConsoleLog.Error($"cannot write the certificate: {e.Message}");
        return 1;
    }
}

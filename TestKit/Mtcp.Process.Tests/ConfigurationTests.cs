using Mtcp.Hosting;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class ConfigurationTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Theory]
    [InlineData("mtcp.hosts.server.file.port = 70000", "mtcp.hosts.server.file.port must be an integer from 1 to 65535")]
    [InlineData("mtcp.hosts.server.shutdown-timeout = soon", "mtcp.hosts.server.shutdown-timeout must be a duration")]
    [InlineData("mtcp.hosts.server.file.root = \"/no/such/directory\"", "mtcp.hosts.server.file.root must be an existing directory")]
    [InlineData("mtcp.hosts.server { file.enabled = off, request.enabled = off }", "no application is enabled")]
    [InlineData("mtcp.runtime.transport = carrier-pigeon", "mtcp.runtime.transport")]
    [InlineData("mtcp.cluster.service-endpoints = [\"0.0.0.0:80\"]", "mtcp.cluster.service-endpoints")]
    [InlineData("mtcp.hosts.system-name = ${undefined.key}", "is not valid HOCON: Unresolved substitution: undefined.key")]
    [InlineData("mtcp.hosts.server.file.pace.max-slowdown = 0.5", "mtcp.hosts.server.file.pace.max-slowdown must be a number from 1 to 1000")]
    [InlineData("mtcp.hosts.server.metrics.prometheus-endpoint = \"everywhere\"", "mtcp.hosts.server.metrics.prometheus-endpoint must be \"address:port\"")]
    [InlineData("mtcp.hosts.log-level = loud", "mtcp.hosts.log-level must be trace, debug, info, warning, error or off")]
    public async Task Server_node_must_reject_a_bad_configuration_naming_the_key(string hocon, string expected)
    {
        // Should the node start after all, it must not do so on the addresses of a real node.
        var address = ProcessTestbed.NextAddress();
        var config = _testbed.WriteConfig("bad.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = 0 }
            mtcp.runtime.local-address = "{{address}}"
            {{hocon}}
            """);
        var server = _testbed.Track(HostProcess.Start("server", ProcessTestbed.ServerDll, ["--config", config], output, _testbed.Directory.FullName));

        var exitCode = await server.WaitForExitAsync(ExitTimeout);

        Assert.Equal(2, exitCode);
        Assert.Contains(server.Lines, line => line.Contains("configuration error", StringComparison.Ordinal) && line.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("mtcp.migration.cluster-kee = \"00\"", "unknown key mtcp.migration.cluster-kee (did you mean mtcp.migration.cluster-key?)")]
    [InlineData("mtcp.hosts.server.file = on", "mtcp.hosts.server.file is a section, not a value")]
    [InlineData("{{{ unbalanced", "is not valid HOCON: line 5: '{' is never closed")]
    [InlineData("mtcp.hosts.server {\n  file.enabled = on\n}\n}", "is not valid HOCON: line 8: '}' closes nothing")]
    [InlineData("mtcp.hosts.system-name = \"mtcp", "is not valid HOCON: line 5: a quoted string is never closed")]
    [InlineData("akka.remote.dot-netty.tcp.port = \"x\"", "Akka.NET refused the akka configuration: The input string 'x' was not in a correct format")]
    public async Task Server_node_must_stop_on_an_unknown_key_a_syntax_error_or_a_bad_akka_value_without_a_stack_trace(string hocon, string expected)
    {
        var address = ProcessTestbed.NextAddress();
        var config = _testbed.WriteConfig("strict.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = 0 }
            mtcp.runtime { local-address = "{{address}}", transport = udp }
            mtcp.security.insecure-control-plane = on
            akka.cluster.seed-nodes = ["akka.tcp://mtcp@{{address}}:2552"]
            {{hocon}}
            """);
        var server = _testbed.Track(HostProcess.Start("server", ProcessTestbed.ServerDll, ["--config", config], output, _testbed.Directory.FullName));

        var exitCode = await server.WaitForExitAsync(ExitTimeout);

        Assert.Equal(2, exitCode);
        Assert.Contains(server.Lines, line => line.Contains("configuration error", StringComparison.Ordinal) && line.Contains(expected, StringComparison.Ordinal));
        AssertNoStackTrace(server);
    }

    [Theory]
    [InlineData("server", "--bogus")]
    [InlineData("agent", "serve", "--listen")]
    [InlineData("agent", "no-such-command")]
    [InlineData("demo", "--migrations", "many")]
    public async Task Hosts_must_exit_2_on_a_command_line_they_cannot_parse(string host, params string[] arguments)
    {
        var dll = host switch { "server" => ProcessTestbed.ServerDll, "agent" => ProcessTestbed.AgentDll, _ => ProcessTestbed.DemoDll };
        var process = _testbed.Track(HostProcess.Start(host, dll, arguments, output, _testbed.Directory.FullName));

        Assert.Equal(2, await process.WaitForExitAsync(ExitTimeout));
        Assert.Contains(process.Lines, line => line.Contains("command line:", StringComparison.Ordinal));
        AssertNoStackTrace(process);
    }

    [Theory]
    [InlineData("mtcp.agent.serve.idle-timout = 1m", "unknown key mtcp.agent.serve.idle-timout (did you mean mtcp.agent.serve.idle-timeout?)")]
    [InlineData("mtcp.demo.migrations = 3", "unknown key mtcp.demo.migrations")]
    [InlineData("mtcp.agent {\n  policy = off\n", "is not valid HOCON: line 1: '{' is never closed")]
    public async Task Agent_must_stop_on_an_unknown_key_or_a_syntax_error(string hocon, string expected)
    {
        var config = _testbed.WriteConfig("strict-agent.conf", hocon);

        var (exitCode, agent) = await _testbed.RunAgentAsync("agent", ExitTimeout, "--config", config, "serve");

        Assert.Equal(2, exitCode);
        Assert.Contains(agent.Lines, line => line.Contains("configuration error", StringComparison.Ordinal) && line.Contains(expected, StringComparison.Ordinal));
        AssertNoStackTrace(agent);
    }

    [Theory]
    [InlineData("mtcp.demo.migratoins = 3", "unknown key mtcp.demo.migratoins (did you mean mtcp.demo.migrations?)")]
    [InlineData("mtcp.demo [", "is not valid HOCON: line 1: '[' is never closed")]
    public async Task Demo_must_stop_on_an_unknown_key_or_a_syntax_error(string hocon, string expected)
    {
        var config = _testbed.WriteConfig("strict-demo.conf", hocon);
        var demo = _testbed.Track(HostProcess.Start("demo", ProcessTestbed.DemoDll, ["--config", config], output, _testbed.Directory.FullName));

        Assert.Equal(2, await demo.WaitForExitAsync(ExitTimeout));
        Assert.Contains(demo.Lines, line => line.Contains("configuration error", StringComparison.Ordinal) && line.Contains(expected, StringComparison.Ordinal));
        AssertNoStackTrace(demo);
    }

    [Theory]
    [InlineData("--size-mib", "16")]
    [InlineData("--migrations", "20")]
    public async Task Demo_must_refuse_a_file_too_small_for_its_migration_plan_naming_the_smallest(string option, string value)
    {
        var demo = _testbed.Track(HostProcess.Start("demo", ProcessTestbed.DemoDll, [option, value], output, _testbed.Directory.FullName));

        Assert.Equal(2, await demo.WaitForExitAsync(ExitTimeout));
        Assert.Contains(demo.Lines, line => line.Contains("configuration error: mtcp.demo.file-size must be at least", StringComparison.Ordinal));
        AssertNoStackTrace(demo);
    }

    [Fact]
    public async Task Server_node_must_reject_a_missing_config_file()
    {
        var server = _testbed.Track(HostProcess.Start("server", ProcessTestbed.ServerDll, ["--config", "/no/such/node.conf"], output, _testbed.Directory.FullName));

        Assert.Equal(2, await server.WaitForExitAsync(ExitTimeout));
        Assert.Contains(server.Lines, line => line.Contains("/no/such/node.conf does not exist", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Server_node_must_exit_with_a_clear_error_when_its_transport_cannot_open()
    {
        var address = ProcessTestbed.NextAddress();
        using var occupant = new System.Net.Sockets.UdpClient(new System.Net.IPEndPoint(address, 5253));
        var config = _testbed.WriteConfig("udp-taken.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = 0 }
            akka.cluster.seed-nodes = []
            mtcp.runtime { transport = udp, local-address = "{{address}}", udp.port = 5253 }
            mtcp.hosts.server.file.root = "{{_testbed.Files.FullName}}"
            {{_testbed.SecurityConfig("server", address)}}
            """);
        var server = _testbed.Track(HostProcess.Start("server", ProcessTestbed.ServerDll, ["--config", config], output, _testbed.Directory.FullName));

        Assert.Equal(1, await server.WaitForExitAsync(ExitTimeout));
        Assert.Contains(server.Lines, line => line.Contains("cannot start:", StringComparison.Ordinal) && line.Contains($"{address}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Server_node_without_tls_must_refuse_to_start_unless_explicitly_insecure_and_then_warn()
    {
        var address = ProcessTestbed.NextAddress();
        var plain = $$"""
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = 0 }
            akka.cluster.seed-nodes = []
            mtcp.runtime.local-address = "{{address}}"
            mtcp.hosts.server.file.root = "{{_testbed.Files.FullName}}"
            """;
        var refused = _testbed.Track(HostProcess.Start("refused", ProcessTestbed.ServerDll, ["--config", _testbed.WriteConfig("plain.conf", plain)], output, _testbed.Directory.FullName));
        Assert.Equal(2, await refused.WaitForExitAsync(ExitTimeout));
        Assert.Contains(refused.Lines, line => line.Contains("configuration error: the control plane has no TLS", StringComparison.Ordinal) && line.Contains("mtcp.security.insecure-control-plane = on", StringComparison.Ordinal));

        var insecure = _testbed.Track(HostProcess.Start(
            "insecure", ProcessTestbed.ServerDll, ["--config", _testbed.WriteConfig("insecure.conf", plain + "\nmtcp.security.insecure-control-plane = on")], output, _testbed.Directory.FullName));
        await insecure.WaitForLineAsync("server node ready", ExitTimeout);
        Assert.Contains(insecure.Lines, line => line.Contains("WARN", StringComparison.Ordinal) && line.Contains("control plane WITHOUT TLS", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Certs_commands_must_make_a_ca_and_node_certificates_that_a_node_starts_with()
    {
        var certificates = Path.Combine(_testbed.Directory.FullName, "cli-certificates");
        var address = ProcessTestbed.NextAddress();
        var init = _testbed.Track(HostProcess.Start("init", ProcessTestbed.ServerDll, ["certs", "init", "--out", certificates], output, _testbed.Directory.FullName));
        Assert.Equal(0, await init.WaitForExitAsync(ExitTimeout));
        var issue = _testbed.Track(HostProcess.Start(
            "issue", ProcessTestbed.ServerDll, ["certs", "issue", "--ca", certificates, "--name", "node1", "--san", address.ToString(), "--out", certificates], output, _testbed.Directory.FullName));
        Assert.Equal(0, await issue.WaitForExitAsync(ExitTimeout));
        var again = _testbed.Track(HostProcess.Start("again", ProcessTestbed.ServerDll, ["certs", "init", "--out", certificates], output, _testbed.Directory.FullName));
        Assert.Equal(1, await again.WaitForExitAsync(ExitTimeout));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(certificates, "node1.key")));
        }

        var config = _testbed.WriteConfig("cli-node.conf", $$"""
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = 0 }
            akka.cluster.seed-nodes = []
            mtcp.runtime.local-address = "{{address}}"
            mtcp.hosts.server.file.root = "{{_testbed.Files.FullName}}"
            mtcp.security { ca-certificate = "{{certificates}}/ca.crt", node-certificate = "{{certificates}}/node1.crt", node-key = "{{certificates}}/node1.key" }
            """);
        var node = _testbed.Track(HostProcess.Start("node1", ProcessTestbed.ServerDll, ["--config", config], output, _testbed.Directory.FullName));
        await node.WaitForLineAsync("control plane: mutual TLS as CN=node1", ExitTimeout);
        await node.WaitForLineAsync("server node ready", ExitTimeout);
    }

    [Theory]
    [InlineData("mtcp.agent.connect-timeout = fast", "mtcp.agent.connect-timeout must be a duration")]
    [InlineData("mtcp.agent.service-endpoints = [\"localhost\"]", "mtcp.agent.service-endpoints entry localhost")]
    [InlineData("mtcp.agent.serve.listen = \"127.0.0.1\"", "mtcp.agent.serve.listen must be \"address:port\"")]
    [InlineData("mtcp.agent.service-endpoints = []", "mtcp.agent.service-endpoints is empty")]
    [InlineData("mtcp.agent.policy = latency", "mtcp.agent.policy names latency, which the agent judges by mtcp.policies.client.latency.fixed-bound only")]
    [InlineData("mtcp.agent.policy = fastest", "mtcp.agent.policy must be off, one of throughput, response-time, latency, or a list of them")]
    [InlineData("mtcp.agent.policy = [throughput, fastest]", "mtcp.agent.policy must list only throughput, response-time, latency, got fastest")]
    [InlineData("mtcp.policies.client.throughput.alpha = 1.5", "mtcp.policies.client.throughput.alpha")]
    public async Task Agent_must_reject_a_bad_configuration_naming_the_key(string hocon, string expected)
    {
        var config = _testbed.WriteConfig("bad-agent.conf", hocon);

        var (exitCode, agent) = await _testbed.RunAgentAsync("agent", ExitTimeout, "--config", config, "serve");

        Assert.Equal(2, exitCode);
        Assert.Contains(agent.Lines, line => line.Contains("configuration error", StringComparison.Ordinal) && line.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Agent_migrate_must_fail_clearly_when_no_agent_serves()
    {
        var control = $"127.0.0.1:{ListenPorts.PickUnused(System.Net.IPAddress.Loopback)}";

        var (exitCode, agent) = await _testbed.RunAgentAsync("agent", ExitTimeout, "--control", control, "migrate");

        Assert.Equal(1, exitCode);
        Assert.Contains(agent.Lines, line => line.Contains($"no agent answers at {control}", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("mtcp.migration.cluster-key = \"00ff\"")]
    [InlineData("mtcp.migration.cluster-key = \"not a key\"")]
    public async Task Agent_must_reject_a_cluster_key_that_is_not_32_bytes(string hocon)
    {
        var config = _testbed.WriteConfig("bad-key.conf", hocon);

        var (exitCode, agent) = await _testbed.RunAgentAsync("agent", ExitTimeout, "--config", config, "fetch", "http://127.0.0.2:8080/x");

        Assert.Equal(2, exitCode);
        Assert.Contains(agent.Lines, line => line.Contains("mtcp.migration.cluster-key must be 32 bytes", StringComparison.Ordinal));
    }

    public void Dispose() => _testbed.Dispose();

    private static void AssertNoStackTrace(HostProcess process) =>
        Assert.DoesNotContain(process.Lines, line => line.TrimStart().StartsWith("at ", StringComparison.Ordinal) || line.Contains("Unhandled exception", StringComparison.Ordinal));
}

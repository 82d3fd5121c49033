using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Hosting;

namespace Mtcp.Process.Tests;

/// <summary>The hosts' strict configuration loading, in-process: the checks each host process runs at start.</summary>
[Trait("Category", "Process")]
public sealed class HostConfigTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("mtcp-config-");

    [Theory]
    [InlineData("Mtcp.Server.dll", "Mtcp.Server.server-node.conf")]
    [InlineData("Mtcp.Agent.dll", "Mtcp.Agent.agent.conf")]
    [InlineData("Mtcp.Demo.dll", "Mtcp.Demo.demo.conf")]
    public void Every_key_of_the_reference_and_of_the_hosts_own_file_must_be_accepted(string hostAssembly, string resource)
    {
        var assembly = System.Reflection.Assembly.LoadFrom(HostDll(hostAssembly));
        using var stream = assembly.GetManifestResourceStream(resource)!;
        var hostText = new StreamReader(stream).ReadToEnd();
        using var referenceStream = typeof(MtcpConfig).Assembly.GetManifestResourceStream("Mtcp.Actors.mtcp-reference.conf")!;
        var referenceText = new StreamReader(referenceStream).ReadToEnd();

        // Both files as override files: every key they document passes, and both are well formed.
        var config = HostConfig.Load(assembly, resource, [Write("reference.conf", referenceText), Write("host.conf", hostText)]);

        Assert.Equal(config.GetString("mtcp.runtime.transport"), MtcpConfig.Reference.GetString("mtcp.runtime.transport"));
    }

    [Theory]
    [InlineData("mtcp.tcp.min-rot = 1s", "mtcp.tcp.min-rto")]
    [InlineData("mtcp.control { state-request-timeout = 1s, reply-chunk-sise = 64KiB }", "mtcp.control.reply-chunk-size")]
    [InlineData("mtcp.agent.fetch.stall-timeout.seconds = 3", "mtcp.agent.fetch.stall-timeout")]
    public void An_unknown_mtcp_key_must_be_named_with_the_nearest_known_key(string hocon, string nearest)
    {
        var file = Write("node.conf", hocon);

        var error = Assert.Throws<ConfigurationException>(() => Load(file));

        Assert.Contains($"{file.FullName}: unknown key", error.Message, StringComparison.Ordinal);
        Assert.EndsWith($"(did you mean {nearest}?)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Keys_outside_mtcp_and_documented_keys_must_pass()
    {
        var file = Write("node.conf", """
            akka.loglevel = DEBUG
            some-application.setting = 1
            mtcp.tcp.min-rto = 300ms
            mtcp.cluster.service-endpoints = ["127.0.0.2:80"]
            """);

        Assert.Equal(TimeSpan.FromMilliseconds(300), Load(file).GetTimeSpan("mtcp.tcp.min-rto"));
    }

    [Theory]
    [InlineData("a = \"}\" # }\nb = \"\"\"\n{ ]\n\"\"\"\nc = \"a//b\" // {\nd = ${a}\ne = [ { f = 1 } ]\n")]
    [InlineData("url = \"akka.tcp://mtcp@127.0.0.2:2552\"\nquoted = \"a \\\" { b\"\n")]
    public void Well_formed_text_must_pass_the_syntax_check(string text) =>
        HoconSyntax.Check(text, "text");

    [Theory]
    [InlineData("{{{ unbalanced", "line 1: '{' is never closed")]
    [InlineData("a {\n  b = [1, 2}\n}", "line 2: '}' does not match the '[' opened on line 2")]
    [InlineData("a = 1\n\nb = ]", "line 3: ']' closes nothing")]
    [InlineData("a = 1\nb = \"\"\"never closed\n", "line 2: a \"\"\" string is never closed")]
    [InlineData("a = ${b\n", "line 1: '{' is never closed")]
    public void Malformed_text_must_be_refused_naming_the_line(string text, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => HoconSyntax.Check(text, "f.conf"));

        Assert.Equal($"f.conf is not valid HOCON: {expected}", error.Message);
    }

    [Fact]
    public void Remote_buffer_leak_detection_must_follow_the_key_and_refuse_a_level_DotNetty_has_not()
    {
        var before = DotNetty.Common.ResourceLeakDetector.Level;
        try
        {
            // The shipped value: off, whatever DotNetty started with.
            DotNetty.Common.ResourceLeakDetector.Level = DotNetty.Common.ResourceLeakDetector.DetectionLevel.Simple;
            RemoteBufferLeakDetection.Configure(MtcpConfig.Reference);
            Assert.Equal(DotNetty.Common.ResourceLeakDetector.DetectionLevel.Disabled, DotNetty.Common.ResourceLeakDetector.Level);

            RemoteBufferLeakDetection.Configure(Load(Write("node.conf", $"{RemoteBufferLeakDetection.Path} = paranoid")));
            Assert.Equal(DotNetty.Common.ResourceLeakDetector.DetectionLevel.Paranoid, DotNetty.Common.ResourceLeakDetector.Level);

            // DotNetty's own spelling of a level is not one of ours, and garbage leaves the level as it was.
            foreach (var garbage in new[] { "Disabled", "off", "0", "\"\"" })
            {
                var error = Assert.Throws<ConfigurationException>(() => RemoteBufferLeakDetection.Configure(Load(Write("node.conf", $"{RemoteBufferLeakDetection.Path} = {garbage}"))));
                Assert.Contains(RemoteBufferLeakDetection.Path, error.Message, StringComparison.Ordinal);
                Assert.Equal(DotNetty.Common.ResourceLeakDetector.DetectionLevel.Paranoid, DotNetty.Common.ResourceLeakDetector.Level);
            }
        }
        finally
        {
            DotNetty.Common.ResourceLeakDetector.Level = before;
        }
    }

    [Fact]
    public void A_key_left_without_a_value_must_be_refused()
    {
        var file = Write("node.conf", "mtcp.tcp.min-rto =\n");

        var error = Assert.Throws<ConfigurationException>(() => Load(file));

        Assert.Contains("mtcp.tcp.min-rto has no value", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "", 0)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("mtcp.migration.cluster-kee", "mtcp.migration.cluster-key", 1)]
    [InlineData("abc", "", 3)]
    public void Edit_distance_must_count_insertions_deletions_and_substitutions(string a, string b, int distance)
    {
        Assert.Equal(distance, KnownKeys.EditDistance(a, b));
        Assert.Equal(distance, KnownKeys.EditDistance(b, a));
    }

    public void Dispose() => _directory.Delete(recursive: true);

    private static Config Load(FileInfo file) =>
        HostConfig.Load(System.Reflection.Assembly.LoadFrom(ProcessTestbed.AgentDll), "Mtcp.Agent.agent.conf", [file]);

    private static string HostDll(string name) => name switch
    {
        "Mtcp.Server.dll" => ProcessTestbed.ServerDll,
        "Mtcp.Agent.dll" => ProcessTestbed.AgentDll,
        _ => ProcessTestbed.DemoDll,
    };

    private FileInfo Write(string name, string text)
    {
        var file = new FileInfo(Path.Combine(_directory.FullName, name));
        File.WriteAllText(file.FullName, text);
        return file;
    }
}

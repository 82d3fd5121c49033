using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The README's sample (Hosts/Mtcp.Sample): a migrating file server on a Generic Host through <c>AddMtcpServer</c>,
/// run as two real processes in one cluster with mutual TLS, a client through the agent.
/// </summary>
[Trait("Category", "Process")]
[Collection(ProcessCollection.Name)]
public sealed class SampleServerTests(ITestOutputHelper output) : IDisposable
{
    // Larger than what the sockets and windows between the node and the client buffer while the client pauses, so
    // that the node is still writing at SIGTERM.
    private const int FileBytes = 64 << 20;
    private const int ReadBeforeStop = 1 << 20;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_sample_node_stopped_mid_download_must_drain_its_client_to_the_other_node_and_the_file_arrive_intact()
    {
        var expected = _testbed.WriteRandomFile("sample.bin", FileBytes, seed: 21);
        var sample1 = await _testbed.StartSampleAsync("sample1", extraConfig: ProcessTestbed.MigrationConfig);
        var sample2 = await _testbed.StartSampleAsync("sample2", sample1, ProcessTestbed.MigrationConfig);
        foreach (var node in new[] { sample1, sample2 })
        {
            await node.Process.WaitForLineAsync("cluster view: 2 service endpoints", Bound);
        }

        var agent = await _testbed.StartAgentAsync("agent", [sample1.Service(ProcessTestbed.FilePort)], ProcessTestbed.MigrationConfig);
        using var client = new TcpClient();
        await client.ConnectAsync(agent.Listen);
        var stream = client.GetStream();
        await stream.WriteAsync("sample.bin\n"u8.ToArray());
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        using var cancellation = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var received = 0L;
        while (received < ReadBeforeStop)
        {
            var read = await stream.ReadAsync(buffer, cancellation.Token);
            Assert.True(read > 0, $"the stream ended after {received} bytes");
            hash.AppendData(buffer, 0, read);
            received += read;
        }

        // The Generic Host's SIGTERM: MtcpServerService.StopAsync asks the client to migrate to sample2 and waits.
        sample1.Process.Terminate();
        int more;
        while ((more = await stream.ReadAsync(buffer, cancellation.Token)) > 0)
        {
            hash.AppendData(buffer, 0, more);
            received += more;
        }

        Assert.Equal(FileBytes, received);
        Assert.Equal(expected, Convert.ToHexStringLower(hash.GetHashAndReset()));
        Assert.Equal(0, await sample1.Process.WaitForExitAsync(Bound));
        Assert.Contains(sample1.Process.Lines, line => line.Contains("drain: asked the clients of 1 of 1 connections to migrate", StringComparison.Ordinal));
        Assert.Contains(sample1.Process.Lines, line => line.Contains("migrated away", StringComparison.Ordinal));
        Assert.Contains(sample1.Process.Lines, line => line.Contains("left the cluster", StringComparison.Ordinal));
        Assert.False(sample2.Process.HasExited);
    }

    [Fact]
    public async Task A_request_naming_a_file_outside_the_root_must_get_nothing_and_the_node_go_on_serving()
    {
        var secret = Path.Combine(_testbed.Directory.FullName, "outside.bin");
        await File.WriteAllTextAsync(secret, "not for clients");
        var expected = _testbed.WriteRandomFile("inside.bin", 4096, seed: 22);
        var sample = await _testbed.StartSampleAsync("sample", extraConfig: ProcessTestbed.MigrationConfig);
        var agent = await _testbed.StartAgentAsync("agent", [sample.Service(ProcessTestbed.FilePort)], ProcessTestbed.MigrationConfig);

        foreach (var request in new[] { "../outside.bin", Path.GetFullPath(secret), "..", new string('a', 300) })
        {
            Assert.Empty(await FetchAsync(agent, request));
        }

        Assert.Equal(expected, Convert.ToHexStringLower(SHA256.HashData(await FetchAsync(agent, "inside.bin"))));
        Assert.False(sample.Process.HasExited);
    }

    [Fact]
    public void The_README_must_show_the_sample_as_it_is_built()
    {
        var repository = ProcessTestbed.BuildLayout().Repository.FullName;
        var readme = File.ReadAllText(Path.Combine(repository, "README.md"));
        var section = readme[readme.IndexOf("## A migration-aware server", StringComparison.Ordinal)..];
        var block = section[(section.IndexOf("```csharp\n", StringComparison.Ordinal) + 10)..section.IndexOf("\n```\n", StringComparison.Ordinal)];
        var program = File.ReadAllText(Path.Combine(repository, "Hosts", "Mtcp.Sample", "Program.cs"));

        // Every line shown is in the program, in the same order; "..." stands for the helpers left out.
        var position = 0;
        foreach (var line in block.Split('\n').Where(line => line.Trim() is not ("" or "...")))
        {
            var found = program.IndexOf(line + "\n", position, StringComparison.Ordinal);
            Assert.True(found >= 0, $"README.md shows a line Hosts/Mtcp.Sample/Program.cs does not have (there): {line}");
            position = found + line.Length;
        }
    }

    private static async Task<byte[]> FetchAsync(AgentHandle agent, string name)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(agent.Listen);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(name + "\n"));
        using var content = new MemoryStream();
        using var cancellation = new CancellationTokenSource(Bound);
        await stream.CopyToAsync(content, cancellation.Token);
        return content.ToArray();
    }

    public void Dispose() => _testbed.Dispose();
}

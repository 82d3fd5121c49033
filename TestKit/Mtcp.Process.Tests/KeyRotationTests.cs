using System.Text.Json;
using Mtcp.Hosting;
using Mtcp.Stack.Migration.Authentication;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The rotation procedure of docs/threat-model.md run under a live download through the agent: the cluster key in two
/// phases and the cluster's CA by a two-CA bundle, each step an edit of every node's --config file and a SIGHUP, no
/// restart. The download migrates after every step and arrives intact.
/// </summary>
[Trait("Category", "Security")]
[Collection(ProcessCollection.Name)]
public sealed class KeyRotationTests(ITestOutputHelper output) : IDisposable
{
    private const int FileBytes = 32 * 1000 * 1000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task Cluster_key_and_CA_must_rotate_by_SIGHUP_under_a_live_download_that_keeps_migrating()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, seed: 4711);
        var oldKey = MigrationKeyHex();
        var newKey = MigrationKeyHex();
        var oldGeneration = Generation(oldKey);
        var newGeneration = Generation(newKey);
        if (oldGeneration == newGeneration)
        {
            // One pair in 256 shares a generation byte, which the nodes refuse; the procedure says to draw again.
            newKey = MigrationKeyHex();
            newGeneration = Generation(newKey);
        }

        var server1 = await _testbed.StartServerAsync("server1", extraConfig: Keys(oldKey, accepted: null) + "\n" + Paced);
        var server2 = await _testbed.StartServerAsync("server2", server1, Keys(oldKey, accepted: null) + "\n" + Paced);
        (string, ServerHandle)[] servers = [("server1", server1), ("server2", server2)];
        foreach (var server in new[] { server1, server2 })
        {
            await server.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
            await server.Process.WaitForLineAsync($"migration keys: cluster key generation {oldGeneration}, no other key accepted", Bound);
        }

        var agent = await _testbed.StartAgentAsync("agent", [server1.Service(ProcessTestbed.FilePort)], "mtcp.agent.policy = off");
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");
        var curl = Curl.RunAsync("-sS", "--max-time", "120", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        var relay = await agent.OpenRelayAsync(Bound);
        await MigrateAsync(agent, relay, server2);

        // Phase 1: every node accepts the new key; the old one still signs.
        await ReloadAsync(servers, Keys(oldKey, accepted: newKey), $"migration keys now cluster key generation {oldGeneration}, also accepting generation {newGeneration}");
        await MigrateAsync(agent, relay, server1);

        // Phase 2: the new key signs and derives; the old one, from which this connection's secret came, is accepted.
        await ReloadAsync(servers, Keys(newKey, accepted: oldKey), $"migration keys now cluster key generation {newGeneration}, also accepting generation {oldGeneration}");
        await MigrateAsync(agent, relay, server2);

        // The CA: every node trusts the old and the new CA; a node with a certificate of the new CA then joins and
        // takes the connection.
        var newAuthority = Path.Combine(_testbed.Directory.FullName, "new-ca");
        var bundle = Path.Combine(_testbed.Directory.FullName, "ca-bundle.crt");
        ClusterCertificates.CreateAuthority(newAuthority, "mtcp-test-ca-2", TimeSpan.FromDays(1));
        await File.WriteAllTextAsync(bundle, await File.ReadAllTextAsync(TestAuthority) + await File.ReadAllTextAsync(ClusterCertificates.FilesOf(newAuthority, ClusterCertificates.AuthorityName).CertificatePath));
        await ReloadAsync(servers, Keys(newKey, accepted: oldKey) + $"\nmtcp.security.ca-certificate = \"{bundle}\"", "trusted CAs now [CN=mtcp-test-ca; CN=mtcp-test-ca-2]");
        var server3Certificate = ClusterCertificates.IssueNode(newAuthority, "server3", [], newAuthority, TimeSpan.FromDays(1));
        var server3 = await _testbed.StartServerAsync("server3", server1, Keys(newKey, accepted: oldKey) + "\n" + Paced + $$"""

            mtcp.security { ca-certificate = "{{bundle}}", node-certificate = "{{server3Certificate.CertificatePath}}", node-key = "{{server3Certificate.KeyPath}}" }
            """);
        foreach (var server in new[] { server1, server2, server3 })
        {
            await server.Process.WaitForLineAsync("cluster view: 6 service endpoints", Bound);
        }

        await MigrateAsync(agent, relay, server3);

        // A CA file without the CA of the node's own certificate is refused; the CAs in force stay.
        await ReloadAsync([("server1", server1)], Keys(newKey, accepted: oldKey) + $"\nmtcp.security.ca-certificate = \"{ClusterCertificates.FilesOf(newAuthority, ClusterCertificates.AuthorityName).CertificatePath}\"", "CAs refused, [CN=mtcp-test-ca; CN=mtcp-test-ca-2] stay");
        await MigrateAsync(agent, relay, server1);

        var (curlExit, curlOutput) = await curl;
        Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
        Assert.Equal(expected, ProcessTestbed.Sha256Of(downloaded));
    }

    /// <summary>
    /// The file servers' pace: the 32 MB download lasts about 30 s, longer than the steps take on a loaded machine (at
    /// 4 MiB/s it ended while the third node was still joining; curl's --limit-rate alone does not slow the sender).
    /// </summary>
    private static string Paced => ProcessTestbed.PacedFileServer("1MiB");

    public void Dispose() => _testbed.Dispose();

    private static string MigrationKeyHex() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private static int Generation(string hexKey) => ClusterKey.FromServiceKey(Convert.FromHexString(hexKey)).Generation;

    private static string Keys(string current, string? accepted) =>
        $"mtcp.migration {{ cluster-key = \"{current}\", accepted-cluster-key = \"{accepted ?? ""}\" }}";

    /// <summary>The CA file the nodes started with: the testbed writes one CA for all its nodes.</summary>
    private string TestAuthority =>
        ClusterCertificates.FilesOf(Path.Combine(_testbed.Directory.FullName, "certificates"), ClusterCertificates.AuthorityName).CertificatePath;

    /// <summary>Appends <paramref name="settings"/> to each node's --config file (later lines win), sends SIGHUP and waits for <paramref name="logged"/>.</summary>
    private async Task ReloadAsync(IEnumerable<(string Name, ServerHandle Server)> servers, string settings, string logged)
    {
        foreach (var (name, server) in servers)
        {
            var path = Path.Combine(_testbed.Directory.FullName, $"{name}.conf");
            await File.AppendAllTextAsync(path, "\n" + settings + "\n");
            server.Process.Reload();
            await server.Process.WaitForLineAsync(logged, Bound);
        }
    }

    private static async Task MigrateAsync(AgentHandle agent, long relay, ServerHandle destination)
    {
        using var result = JsonDocument.Parse(await agent.AskAsync($"migrate {relay} {destination.Service(ProcessTestbed.FilePort)}", Bound));
        var outcome = result.RootElement.GetProperty("outcomes").EnumerateArray().Single();
        Assert.True(outcome.GetProperty("completed").GetBoolean(), $"migration to {destination.Service(ProcessTestbed.FilePort)} failed: {outcome}");
    }
}

using System.Net;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Hosting;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// The attacks on the control plane (docs/threat-model.md, "The attacker on the control network"), run against two
/// real server nodes with mutual TLS and a cluster key while curl downloads a file through the agent: an Akka.NET
/// system named "mtcp" in this process tries to join, to stop the nodes' runtime, listener and control actors, to
/// down a node and to announce a fake endpoint. After each attack the download must finish with its SHA-256, a
/// migration must still complete, and no node may have left or listed the fake endpoint.
/// </summary>
[Trait("Category", "Security")]
[Collection(ProcessCollection.Name)]
public sealed class ControlPlaneAttackTests(ITestOutputHelper output) : IDisposable
{
    // Large enough that the relay's service side stays open through every attack and the migration after it: the
    // agent takes the bytes from the node faster than the rate-limited curl reads them.
    private const int FileBytes = 64 << 20;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>How long an attacker is given to become a member or to get an answer; the nodes form a cluster in ~2 s.</summary>
    private static readonly TimeSpan AttackPatience = TimeSpan.FromSeconds(8);

    private readonly ProcessTestbed _testbed = new(output);

    [Fact]
    public async Task A_system_without_a_certificate_must_not_associate_join_stop_or_down_anything()
    {
        var service = await StartServiceAsync();
        var address = ProcessTestbed.NextAddress();
        using var attacker = ActorSystem.Create("mtcp", Plain(address, $"akka.tcp://mtcp@{service.First.ControlEndPoint}"));

        await AttackWithoutMembershipAsync(attacker, service, scheme: "akka.tcp");

        await service.AssertIntactAsync();
    }

    [Fact]
    public async Task A_node_with_a_certificate_of_another_CA_must_be_refused()
    {
        var service = await StartServiceAsync();
        var address = ProcessTestbed.NextAddress();
        using var certificate = ImpostorCertificate(address);
        var config = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = true")
            .WithFallback(Plain(address, $"akka.ssl.tcp://mtcp@{service.First.ControlEndPoint}"));

        // The impostor accepts any certificate itself: only the nodes' validation can keep it out.
        using var attacker = ActorSystem.Create("mtcp", BootstrapSetup.Create().WithConfig(config)
            .And(new DotNettySslSetup(certificate, suppressValidation: true, requireMutualAuthentication: true)));

        await AttackWithoutMembershipAsync(attacker, service, scheme: "akka.ssl.tcp");

        Assert.Contains(service.First.Process.Lines, line => line.Contains("tls-peer-refused: refused the TLS association", StringComparison.Ordinal) && line.Contains("CN=impostor", StringComparison.Ordinal));
        await service.AssertIntactAsync();
    }

    [Fact]
    public async Task A_flood_of_TLS_handshakes_without_a_cluster_certificate_must_cost_bounded_log_lines_on_both_ports()
    {
        const int AttemptsPerKind = 40;
        var service = await StartServiceAsync();
        var channelLine = await service.First.Process.WaitForLineAsync("replication: direct channel on ", Bound);
        var channel = IPEndPoint.Parse(channelLine[(channelLine.IndexOf(" on ", StringComparison.Ordinal) + 4)..].Split(';')[0]);
        using var impostor = ImpostorCertificate(ProcessTestbed.NextAddress());
        var linesBefore = service.First.Process.Lines.Count;

        // Sequential handshakes, so the channel's bound on handshakes at once refuses none of them before TLS does.
        foreach (var port in new[] { service.First.ControlEndPoint, channel })
        {
            for (var attempt = 0; attempt < AttemptsPerKind; attempt++)
            {
                await HandshakeAsync(port, impostor);
                await HandshakeAsync(port, clientCertificate: null);
            }
        }

        // Every refusal counted (the summary's total), in a few lines: not one per handshake.
        var total = 4 * AttemptsPerKind;
        await service.First.Process.WaitForLineAsync("tls-peer-refused: ", Bound);
        var deadline = DateTime.UtcNow + Bound;
        while (RefusedSinceStart(service.First.Process.Lines) < total && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250);
        }

        Assert.True(RefusedSinceStart(service.First.Process.Lines) >= total, $"the node counted {RefusedSinceStart(service.First.Process.Lines)} refused TLS peers of {total}");
        var floodLines = service.First.Process.Lines.Skip(linesBefore).ToList();
        Assert.Contains(floodLines, line => line.Contains("CN=impostor", StringComparison.Ordinal));
        Assert.True(floodLines.Count(line => line.Contains("tls-", StringComparison.Ordinal)) <= 12, "a line per refused handshake:\n" + string.Join('\n', floodLines));
        Assert.True(floodLines.Count <= 40, $"{floodLines.Count} node lines for {total} refused handshakes:\n" + string.Join('\n', floodLines));
        await service.AssertIntactAsync();

        static long RefusedSinceStart(IEnumerable<string> lines) => lines
            .Where(line => line.Contains("tls-peer-refused: ", StringComparison.Ordinal) && line.Contains(" since start", StringComparison.Ordinal))
            .Select(line => line[..line.IndexOf(" since start", StringComparison.Ordinal)])
            .Select(head => long.Parse(head[(head.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture))
            .DefaultIfEmpty(0)
            .Max();
    }

    [Fact]
    public async Task A_member_without_the_cluster_key_must_not_stop_actors_nor_announce_a_fake_endpoint()
    {
        var service = await StartServiceAsync();

        // A host holding a certificate of the cluster's CA but not the cluster key joins as a member (TLS lets it in);
        // untrusted mode and the signed announcements must still keep it from doing harm.
        using var attacker = await _testbed.JoinAsMemberAsync("intruder", service.First, Bound);
        var address = IPAddress.Parse(Akka.Cluster.Cluster.Get(attacker).SelfAddress.Host!);

        var identified = service.Nodes.Select(node => AssertNoIdentityAsync(attacker, $"akka.ssl.tcp://mtcp@{node.ControlEndPoint}")).ToList();
        foreach (var node in service.Nodes)
        {
            var root = $"akka.ssl.tcp://mtcp@{node.ControlEndPoint}";
            foreach (var path in new[] { "/user/mtcp", $"/user/mtcp/listener-{ProcessTestbed.FilePort}-1", "/user/mtcp-control", "/user/mtcp-directory" })
            {
                attacker.ActorSelection(root + path).Tell(PoisonPill.Instance);
                var resolved = ((ExtendedActorSystem)attacker).Provider.ResolveActorRef(root + path);
                resolved.Tell(PoisonPill.Instance);
                resolved.Tell(Kill.Instance);
            }

            // A fake endpoint, unsigned, then signed under a guessed key; and one naming the other node.
            var fake = new ServiceAnnouncement([new ServerEndpoint(IpAddress.FromIPAddress(address), ProcessTestbed.FilePort)], Akka.Cluster.Cluster.Get(attacker).SelfAddress, replyRequested: false);
            var guessedKey = MigrationAuthenticator.FromServiceKey(new byte[ClusterKey.Length]);
            var directory = attacker.ActorSelection($"{root}/user/mtcp-directory");
            directory.Tell(fake);
            directory.Tell(SignedServiceAnnouncement.Sign(guessedKey, fake));
            var other = service.Nodes.First(n => n != node);
            directory.Tell(SignedServiceAnnouncement.Sign(guessedKey, new ServiceAnnouncement([new ServerEndpoint(IpAddress.FromIPAddress(address), ProcessTestbed.FilePort)], Address.Parse($"akka.ssl.tcp://mtcp@{other.ControlEndPoint}"), replyRequested: false)));
        }

        await Task.WhenAll(identified);
        foreach (var node in service.Nodes)
        {
            await node.Process.WaitForLineAsync("dropped: Unsigned", Bound);
            await node.Process.WaitForLineAsync("dropped: BadMac", Bound);
        }

        await CoordinatedShutdown.Get(attacker).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
        await service.AssertIntactAsync();
        Assert.All(service.Nodes, node => Assert.DoesNotContain(node.Process.Lines, line => line.Contains("cluster view", StringComparison.Ordinal) && line.Contains($"{address}:", StringComparison.Ordinal)));
    }

    public void Dispose() => _testbed.Dispose();

    /// <summary>A client's TLS handshake with <paramref name="clientCertificate"/> (or none), accepting any server; its outcome is the node's business.</summary>
    private static async Task HandshakeAsync(IPEndPoint endPoint, X509Certificate2? clientCertificate)
    {
        using var client = new System.Net.Sockets.TcpClient();
        using var timeout = new CancellationTokenSource(AttackPatience);
        try
        {
            await client.ConnectAsync(endPoint, timeout.Token);
            await using var tls = new System.Net.Security.SslStream(client.GetStream());
            await tls.AuthenticateAsClientAsync(
                new System.Net.Security.SslClientAuthenticationOptions
                {
                    TargetHost = "mtcp",
                    ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                },
                timeout.Token);

            // TLS 1.3 tells a client its certificate was refused only on its first read.
            _ = await tls.ReadAsync(new byte[1], timeout.Token);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
        {
            // Refused, as it must be.
        }
    }

    /// <summary>A node certificate for <paramref name="address"/> issued by a CA of its own, not the cluster's.</summary>
    private X509Certificate2 ImpostorCertificate(IPAddress address)
    {
        var otherCa = _testbed.Directory.CreateSubdirectory("other-ca").FullName;
        ClusterCertificates.CreateAuthority(otherCa, "another-ca", TimeSpan.FromDays(1));
        var files = ClusterCertificates.IssueNode(otherCa, "impostor", [address.ToString()], otherCa, TimeSpan.FromDays(1));
        using var pem = X509Certificate2.CreateFromPemFile(files.CertificatePath, files.KeyPath);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), password: null);
    }

    /// <summary>An Akka.NET cluster system on <paramref name="address"/> that only knows the nodes' seed: no MTCP configuration, no certificate.</summary>
    private static Config Plain(IPAddress address, string seed) => ConfigurationFactory.ParseString($$"""
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp { hostname = "{{address}}", port = 0 }
        akka.cluster.seed-nodes = ["{{seed}}"]
        akka.cluster.seed-node-timeout = 500ms
        akka.cluster.retry-unsuccessful-join-after = 250ms
        akka.loglevel = WARNING
        """);

    /// <summary>Join, Identify, PoisonPill and Kill to the runtime, its listener and the control actor, and Down of each node.</summary>
    private static async Task AttackWithoutMembershipAsync(ActorSystem attacker, LiveService service, string scheme)
    {
        var cluster = Akka.Cluster.Cluster.Get(attacker);
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        var identified = service.Nodes.Select(node => AssertNoIdentityAsync(attacker, $"{scheme}://mtcp@{node.ControlEndPoint}")).ToList();
        foreach (var node in service.Nodes)
        {
            var root = $"{scheme}://mtcp@{node.ControlEndPoint}";
            foreach (var path in new[] { "/user/mtcp", $"/user/mtcp/listener-{ProcessTestbed.FilePort}-1", "/user/mtcp-control" })
            {
                attacker.ActorSelection(root + path).Tell(PoisonPill.Instance);
                ((ExtendedActorSystem)attacker).Provider.ResolveActorRef(root + path).Tell(PoisonPill.Instance);
            }

            cluster.Down(Address.Parse(root));
        }

        Assert.NotSame(up.Task, await Task.WhenAny(up.Task, Task.Delay(AttackPatience)));
        await Task.WhenAll(identified);
    }

    /// <summary>
    /// Identify by actor selection to the node's runtime actor finds nothing: no answer (dropped by untrusted mode), or
    /// the attacker's own dead letters' empty answer (no association).
    /// </summary>
    private static async Task AssertNoIdentityAsync(ActorSystem attacker, string root)
    {
        try
        {
            var identity = await attacker.ActorSelection($"{root}/user/mtcp").Ask<ActorIdentity>(new Identify(1), AttackPatience);
            Assert.Null(identity.Subject);
        }
        catch (AskTimeoutException)
        {
            // Dropped by the node: the selection's path is not trusted.
        }
    }

    private async Task<LiveService> StartServiceAsync()
    {
        var expected = _testbed.WriteRandomFile("big.bin", FileBytes, seed: 12);
        var paced = ProcessTestbed.PacedFileServer("3MiB");
        var first = await _testbed.StartServerAsync("server1", extraConfig: ProcessTestbed.MigrationConfig + "\n" + paced);
        var second = await _testbed.StartServerAsync("server2", first, ProcessTestbed.MigrationConfig + "\n" + paced);
        foreach (var server in new[] { first, second })
        {
            await server.Process.WaitForLineAsync("cluster view: 4 service endpoints", Bound);
        }

        var agent = await _testbed.StartAgentAsync(
            "agent",
            [first.Service(ProcessTestbed.FilePort), second.Service(ProcessTestbed.FilePort)],
            ProcessTestbed.MigrationConfig + "\nmtcp.agent.policy = off");
        var downloaded = Path.Combine(_testbed.Directory.FullName, "downloaded.bin");

        // About 21 s at 3 MiB/s (paced file servers): the attacks, then a migration, run while the connection is live.
        var curl = Curl.RunAsync("-sS", "--max-time", "120", "--limit-rate", "2M", "-o", downloaded, $"http://{agent.Listen}/big.bin");
        await agent.Process.WaitForLineAsync("relay 1:", Bound);
        return new LiveService(_testbed, first, second, agent, curl, downloaded, expected);
    }

    /// <summary>Two nodes, the agent and the download in progress.</summary>
    private sealed record LiveService(
        ProcessTestbed Testbed, ServerHandle First, ServerHandle Second, AgentHandle Agent, Task<(int ExitCode, string Output)> Curl, string Downloaded, string Expected)
    {
        public ServerHandle[] Nodes => [First, Second];

        /// <summary>A migration completes, the download finishes with its SHA-256, a new connection is served, and no node left or stopped.</summary>
        public async Task AssertIntactAsync()
        {
            var (migrateExit, migrate) = await Testbed.RunAgentAsync("migrate", Bound, "--control", Agent.Control.ToString(), "migrate");
            Assert.True(migrateExit == 0, $"migrate exited with {migrateExit}:\n{migrate.Output}");
            Assert.Contains(migrate.Lines, line => line.Contains("completed", StringComparison.Ordinal));

            var (curlExit, curlOutput) = await Curl;
            Assert.True(curlExit == 0, $"curl exited with {curlExit}: {curlOutput}");
            Assert.Equal(Expected, ProcessTestbed.Sha256Of(Downloaded));

            var again = Downloaded + ".again";
            var (againExit, againOutput) = await Process.Tests.Curl.RunAsync("-sS", "--max-time", "60", "-o", again, $"http://{Agent.Listen}/big.bin");
            Assert.True(againExit == 0, $"a new download failed with {againExit}: {againOutput}");
            Assert.Equal(Expected, ProcessTestbed.Sha256Of(again));

            foreach (var node in Nodes)
            {
                Assert.False(node.Process.HasExited, "a node exited");
                // A stack frame is not an event: Akka.Remote's trace of a left member's failed association runs
                // through ActorCell.ReceivedTerminated.
                Assert.DoesNotContain(node.Process.Lines, line => !IsStackFrame(line) && (line.Contains("downed this node", StringComparison.Ordinal) || line.Contains("Terminated", StringComparison.Ordinal)));
            }
        }
    }

    private static bool IsStackFrame(string line) => line.TrimStart().StartsWith("at ", StringComparison.Ordinal);
}

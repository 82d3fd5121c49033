using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Hosting;

namespace Mtcp.Process.Tests;

/// <summary>
/// <see cref="ControlPlaneSecurity.ServerAuthentication"/> and <see cref="ControlPlaneSecurity.ClientAuthentication"/>:
/// a TLS connection of the node's own (the failover benchmark's direct round trip, a direct replication channel) lets
/// in, both ways, only a peer with a certificate of the cluster's CA, as the node's Akka.Remote associations do. In this
/// process, on loopback.
/// </summary>
[Trait("Category", "Security")]
public sealed class ControlPlaneTlsOptionsTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("mtcp-tls-options-");

    public void Dispose() => _directory.Delete(recursive: true);

    [Fact]
    public async Task Members_of_one_cluster_must_complete_the_mutual_handshake_and_exchange_bytes()
    {
        var (serverDone, client) = await ConnectAsync(Node("cluster", "server"), Node("cluster", "client"));
        await using (client)
        {
            await client.WriteAsync(new byte[] { 1, 2, 3 });
            await client.FlushAsync();
            var answer = new byte[3];
            await client.ReadExactlyAsync(answer);
            Assert.Equal([1, 2, 3], answer);
        }

        Assert.Null(await serverDone.WaitAsync(Patience));
    }

    [Fact]
    public async Task Client_with_a_certificate_of_another_CA_must_be_refused()
    {
        var server = Node("cluster", "server");
        var stranger = Node("stranger", "client");
        var (serverDone, client) = await ConnectAsync(server, stranger, expectClientFailure: true);
        await using (client)
        {
            Assert.IsAssignableFrom<AuthenticationException>(await serverDone.WaitAsync(Patience));
        }
    }

    [Fact]
    public async Task Client_without_a_certificate_must_be_refused()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1);
        var serverDone = ServeAsync(listener, Node("cluster", "server"));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "127.0.0.1" });
            await tls.ReadExactlyAsync(new byte[1]);
        });
        Assert.IsAssignableFrom<AuthenticationException>(await serverDone.WaitAsync(Patience));
    }

    [Fact]
    public async Task Server_with_a_certificate_of_another_CA_must_be_refused_by_the_client()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1);
        _ = ServeAsync(listener, Node("stranger", "server"));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        await using var tls = new SslStream(tcp.GetStream());
        await Assert.ThrowsAsync<AuthenticationException>(() => tls.AuthenticateAsClientAsync(Node("cluster", "client").ClientAuthentication("127.0.0.1")));
    }

    /// <summary>A node's security of the CA <paramref name="cluster"/> (made at its first use), with a certificate <paramref name="name"/> for 127.0.0.1.</summary>
    private ControlPlaneSecurity Node(string cluster, string name)
    {
        var certificates = Path.Combine(_directory.FullName, cluster);
        if (!File.Exists(ClusterCertificates.FilesOf(certificates, ClusterCertificates.AuthorityName).CertificatePath))
        {
            ClusterCertificates.CreateAuthority(certificates, $"mtcp-test-{cluster}-ca", TimeSpan.FromDays(1));
        }

        var node = ClusterCertificates.IssueNode(certificates, name, ["127.0.0.1"], certificates, TimeSpan.FromDays(1));
        return ControlPlaneSecurity.Read(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(ClusterCertificates.SecurityConfig(certificates, node))));
    }

    private static async Task<(Task<Exception?> ServerDone, SslStream Client)> ConnectAsync(ControlPlaneSecurity server, ControlPlaneSecurity client, bool expectClientFailure = false)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1);
        var serverDone = ServeAsync(listener, server);
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var tls = new SslStream(tcp.GetStream());
        try
        {
            await tls.AuthenticateAsClientAsync(client.ClientAuthentication("127.0.0.1"));
            if (expectClientFailure)
            {
                // TLS 1.3: the server's refusal of the client's certificate shows at the client's first read.
                await Assert.ThrowsAnyAsync<Exception>(() => tls.ReadExactlyAsync(new byte[1]).AsTask());
            }
        }
        catch (AuthenticationException) when (expectClientFailure)
        {
        }

        return (serverDone, tls);
    }

    /// <summary>Accepts one connection and echoes what it reads until it closes; the handshake's failure, or null.</summary>
    private static async Task<Exception?> ServeAsync(TcpListener listener, ControlPlaneSecurity security)
    {
        using var accepted = await listener.AcceptTcpClientAsync();
        await using var tls = new SslStream(accepted.GetStream());
        try
        {
            await tls.AuthenticateAsServerAsync(security.ServerAuthentication());
        }
        catch (AuthenticationException refused)
        {
            return refused;
        }

        var buffer = new byte[3];
        await tls.ReadExactlyAsync(buffer);
        await tls.WriteAsync(buffer);
        await tls.FlushAsync();
        return null;
    }
}

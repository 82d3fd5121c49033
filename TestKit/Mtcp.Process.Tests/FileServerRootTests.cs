using System.Net;
using System.Net.Sockets;
using System.Text;
using Mtcp.Apps;

namespace Mtcp.Process.Tests;

/// <summary>
/// The file server never serves a file outside its root: not through a symbolic link, <c>..</c> or an absolute
/// name, nor when the name arrives in a migrated-in snapshot. Run in-process over a kernel TCP connection.
/// </summary>
[Trait("Category", "Security")]
public sealed class FileServerRootTests : IDisposable
{
    private const string Secret = "outside the root\n";
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("mtcp-files-");
    private readonly DirectoryInfo _root;
    private readonly string _outsideFile;

    public FileServerRootTests()
    {
        _root = _directory.CreateSubdirectory("root");
        _outsideFile = Path.Combine(_directory.FullName, "secret.txt");
        File.WriteAllText(_outsideFile, Secret);
        File.WriteAllText(Path.Combine(_root.FullName, "inside.txt"), "inside\n");
        _root.CreateSubdirectory("sub");
        File.CreateSymbolicLink(Path.Combine(_root.FullName, "link-out.txt"), _outsideFile);
        Directory.CreateSymbolicLink(Path.Combine(_root.FullName, "sub", "up"), _directory.FullName);
        File.CreateSymbolicLink(Path.Combine(_root.FullName, "link-in.txt"), Path.Combine(_root.FullName, "inside.txt"));
    }

    [Theory]
    [InlineData("/inside.txt", "inside\n")]
    [InlineData("/link-in.txt", "inside\n")]
    public async Task A_file_below_the_root_must_be_served_even_through_a_link_that_stays_inside(string target, string body)
    {
        var response = await RequestAsync($"GET {target} HTTP/1.1\r\n\r\n", new NoMigrationState());

        Assert.StartsWith("HTTP/1.1 200 OK", response, StringComparison.Ordinal);
        Assert.EndsWith(body, response, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/link-out.txt")]
    [InlineData("/sub/up/secret.txt")]
    [InlineData("/../secret.txt")]
    [InlineData("/sub/%2e%2e/%2e%2e/secret.txt")]
    public async Task A_request_reaching_outside_the_root_must_get_400(string target)
    {
        var response = await RequestAsync($"GET {target} HTTP/1.1\r\n\r\n", new NoMigrationState());

        Assert.StartsWith("HTTP/1.1 400 Bad Request", response, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_absolute_path_in_a_request_must_be_looked_up_below_the_root()
    {
        var response = await RequestAsync($"GET /{Uri.EscapeDataString(_outsideFile)} HTTP/1.1\r\n\r\n", new NoMigrationState());

        Assert.StartsWith("HTTP/1.1 404 Not Found", response, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, response, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("link-out.txt")]
    [InlineData("sub/up/secret.txt")]
    [InlineData("../secret.txt")]
    [InlineData("ABSOLUTE")]
    public async Task A_migrated_in_snapshot_naming_a_file_outside_the_root_must_be_refused(string name)
    {
        var fileName = name == "ABSOLUTE" ? _outsideFile : name;
        var state = new MigratedState(new FileSnapshot(fileName, Offset: 0, HeadersWritten: false).Encode());

        var error = await Assert.ThrowsAsync<Mtcp.Apps.ProtocolViolationException>(() => RequestAsync("", state));

        Assert.Contains("not a file below the root", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, state.Exports);
    }

    [Fact]
    public async Task A_migrated_in_snapshot_naming_a_file_below_the_root_must_resume_at_its_offset()
    {
        var state = new MigratedState(new FileSnapshot("inside.txt", Offset: 3, HeadersWritten: true).Encode());

        Assert.Equal("ide\n", await RequestAsync("", state));
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0, 0, 9, (byte)'a', 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0, 0, 1, (byte)'a', 0x80, 0, 0, 0, 0, 0, 0, 0 })]
    public async Task A_migrated_in_snapshot_that_does_not_decode_must_be_refused(byte[] snapshot)
    {
        var error = await Assert.ThrowsAsync<Mtcp.Apps.ProtocolViolationException>(() => RequestAsync("", new MigratedState(snapshot)));

        Assert.Contains("not a file server snapshot", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _directory.Delete(recursive: true);

    /// <summary>Serves one connection whose client sends <paramref name="request"/>; returns all the client received.</summary>
    private async Task<string> RequestAsync(string request, IConnectionState state)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint, timeout.Token);
        using var accepted = await listener.AcceptTcpClientAsync(timeout.Token);
        var clientStream = client.GetStream();
        await clientStream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
        var server = new FileServer(new FileServerOptions(_root.FullName, 8192, 100, TimeSpan.FromSeconds(5), 4096));
        await using (var serverStream = accepted.GetStream())
        {
            await server.ServeAsync(serverStream, state, timeout.Token);
        }

        accepted.Close();
        using var reader = new StreamReader(clientStream, Encoding.UTF8);
        return await reader.ReadToEndAsync(timeout.Token);
    }

    private sealed class MigratedState(byte[] snapshot) : IConnectionState
    {
        public int Exports { get; private set; }

        public bool CanMigrate => true;

        public int LastSnapshotBytes { get; private set; }

        public ImportedState Import() => new(ConnectionKind.Migrated, snapshot);

        public void Export(ReadOnlySpan<byte> snapshot)
        {
            Exports++;
            LastSnapshotBytes = snapshot.Length;
        }
    }
}

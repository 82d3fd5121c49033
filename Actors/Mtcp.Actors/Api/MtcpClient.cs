using System.Net;
using Akka.Actor;
using Mtcp.Actors.Endpoints;
using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>
/// The client side of one MTCP connection, in the manner of <see cref="System.Net.Sockets.TcpClient"/>:
/// <see cref="ConnectAsync"/> opens it to a service endpoint and returns its stream.
/// </summary>
/// <remarks>
/// Client-initiated migration (thesis ch. 3.2) belongs to this object: the stream it returned keeps working
/// across migrations, so the reads and writes of the application never see one.
/// </remarks>
public sealed class MtcpClient : IDisposable
{
    private readonly MtcpRuntime _runtime;
    private MtcpStream? _stream;

    public MtcpClient(MtcpRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        _runtime = runtime;
    }

    /// <summary>The connected stream; null before <see cref="ConnectAsync"/> completes.</summary>
    public MtcpStream? Stream => _stream;

    /// <summary>Opens the connection (three-way handshake) to <paramref name="service"/>.</summary>
    /// <exception cref="IOException">the peer refused (RST) or did not answer within <c>mtcp.tcp.connect-timeout</c>.</exception>
    /// <exception cref="OperationCanceledException">cancelled before the handshake completed; the attempt is aborted.</exception>
    public async Task<MtcpStream> ConnectAsync(IPEndPoint service, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (_stream is not null)
        {
            throw new InvalidOperationException("this client is already connected");
        }

        if (service.Port is 0)
        {
            throw new ArgumentException("the service endpoint needs a port", nameof(service));
        }

        // The endpoint watches the token: cancelling aborts the handshake and fails the task with OperationCanceledException.
        var channel = await _runtime.ConnectAsync(IpAddress.FromIPAddress(service.Address), (ushort)service.Port, cancellationToken).ConfigureAwait(false);
        _stream = new MtcpStream(channel);
        return _stream;
    }

    public void Dispose() => _stream?.Dispose();
}

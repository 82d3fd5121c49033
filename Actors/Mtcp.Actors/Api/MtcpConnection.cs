using System.Net;
using Mtcp.Actors.Endpoints;

namespace Mtcp.Actors.Api;

/// <summary>
/// A server-side connection accepted by an <see cref="MtcpListener"/>. The application talks through
/// <see cref="Stream"/>; disposing the connection closes it gracefully.
/// </summary>
/// <remarks>
/// Migration (thesis ch. 4) adds the application's part here: exporting and importing its state snapshot and
/// learning that the connection migrated away; the stream stays the same object.
/// </remarks>
public sealed class MtcpConnection : IAsyncDisposable, IDisposable
{
    internal MtcpConnection(EndpointChannel channel) => Stream = new MtcpStream(channel);

    public MtcpStream Stream { get; }

    public IPEndPoint LocalEndPoint => Stream.LocalEndPoint;

    public IPEndPoint RemoteEndPoint => Stream.RemoteEndPoint;

    public void Dispose() => Stream.Dispose();

    public ValueTask DisposeAsync()
    {
        Stream.Dispose();
        return ValueTask.CompletedTask;
    }
}

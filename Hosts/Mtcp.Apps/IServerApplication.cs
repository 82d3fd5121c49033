namespace Mtcp.Apps;

/// <summary>
/// A server application in the thesis's programming model (6.1.2): it serves one accepted connection, importing
/// its state first and exporting a snapshot whenever its state matches what it has written.
/// </summary>
public interface IServerApplication
{
    /// <summary>Short name for logs and metrics, e.g. "file".</summary>
    string Name { get; }

    /// <summary>
    /// Serves <paramref name="connection"/> until the client is done or <paramref name="cancellationToken"/> asks
    /// the application to stop (the host is shutting down); the caller closes the connection afterwards.
    /// </summary>
    Task ServeAsync(Stream connection, IConnectionState state, CancellationToken cancellationToken);
}

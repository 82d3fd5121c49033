using System.Net;
using System.Net.Sockets;

namespace Mtcp.Agent;

/// <summary>
/// The agent's control endpoint (<c>mtcp.agent.control-endpoint</c>): "migrate" moves connections and nothing
/// authenticates a request, so by default it is a Unix socket that only the agent's user may open (mode 0600, set
/// between bind and listen, before anyone can connect); a TCP endpoint only when one is configured.
/// </summary>
internal static class ControlSocket
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <exception cref="IOException">another agent answers on the Unix socket.</exception>
    public static Socket Listen(EndPoint endpoint)
    {
        var socket = Create(endpoint);
        try
        {
            if (endpoint is UnixDomainSocketEndPoint unix)
            {
                RemoveStale(unix);
            }

            socket.Bind(endpoint);
            if (endpoint is UnixDomainSocketEndPoint bound)
            {
                if (OperatingSystem.IsWindows())
                {
                    throw new IOException("a Unix control socket cannot be limited to its owner on Windows: configure a TCP control endpoint");
                }

                File.SetUnixFileMode(bound.ToString(), OwnerOnly);
            }

            socket.Listen();
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A connected socket to a running agent's control endpoint.</summary>
    public static async Task<Socket> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = Create(endpoint);
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Stops listening and removes the Unix socket's file.</summary>
    public static void Close(Socket socket, EndPoint endpoint)
    {
        socket.Dispose();
        if (endpoint is UnixDomainSocketEndPoint unix)
        {
            File.Delete(unix.ToString());
        }
    }

    private static Socket Create(EndPoint endpoint) =>
        endpoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);

    /// <summary>A socket file left by an agent that did not stop cleanly is removed; one that still answers is not.</summary>
    private static void RemoveStale(UnixDomainSocketEndPoint endpoint)
    {
        var path = endpoint.ToString();
        if (!File.Exists(path))
        {
            return;
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(endpoint);
                throw new IOException($"another agent answers on {path}");
            }
            catch (SocketException)
            {
                // Nobody listens: a stale file.
            }
        }

        File.Delete(path);
    }
}

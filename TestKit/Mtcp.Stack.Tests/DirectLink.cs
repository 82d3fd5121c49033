using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Two engines wired back to back with no delay: every segment one emits is handed to the other at once, unless
/// <see cref="Drop"/> says otherwise. Enough to put an endpoint in an exact state for a unit test.
/// </summary>
internal sealed class DirectLink
{
    private readonly byte[] _payload = new byte[65536];

    public DirectLink(TcpConfig serverConfig, TcpConfig clientConfig)
    {
        Server = TcpConnection.Listen(serverConfig, 80, new SeqNumber(5_000));
        Client = TcpConnection.Connect(clientConfig, 40000, 80, new SeqNumber(90_000), Now);
        Exchange();
    }

    public Instant Now { get; set; } = Instant.FromMilliseconds(1);

    public TcpConnection Server { get; }

    public TcpConnection Client { get; }

    /// <summary>Segments for which this returns true are lost (sender, header).</summary>
    public Func<TcpConnection, TcpSegmentRepr, bool> Drop { get; set; } = (_, _) => false;

    /// <summary>Moves segments both ways until neither end has anything to send.</summary>
    public void Exchange()
    {
        bool moved;
        do
        {
            moved = Move(Client, Server) | Move(Server, Client);
        }
        while (moved);
    }

    /// <summary>Advances time by <paramref name="span"/>, fires due timers, then exchanges.</summary>
    public void Elapse(TimeSpan span)
    {
        Now += span;
        foreach (var end in new[] { Client, Server })
        {
            if (end.PollTimeout() is { } due && due <= Now)
            {
                end.HandleTimeout(Now);
            }
        }

        Exchange();
    }

    private bool Move(TcpConnection from, TcpConnection to)
    {
        var moved = false;
        while (from.PollTransmit(Now, _payload, out var header, out var length))
        {
            moved = true;
            if (!Drop(from, header))
            {
                to.HandleSegment(Now, header, _payload.AsSpan(0, length));
            }
        }

        return moved;
    }
}

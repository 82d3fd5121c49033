using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;

namespace Mtcp.Actors.Replication;

/// <summary>
/// A control connection's two direct replication channels with its peer (docs/failover.md), driven from the control
/// connection actor (not thread-safe): the one this node opens for its updates to the peer as buddy, on the first
/// update once the peer announces a port (and again <c>retry-interval</c> after it could not be opened or broke),
/// and the one the peer opened for its updates to this node, which this node's acks go back on. While a channel is
/// not open its messages go over the control connection; the first time that happens for want of a channel it is
/// logged (once per peer: a channel that keeps failing costs one line, and one per open, at most every retry-interval).
/// </summary>
/// <param name="self">this node's address: the channel leaves from its host.</param>
/// <param name="acks">where the peer's acks go: the reader of this node's channel delivers each to its endpoint itself.</param>
internal sealed class ReplicationChannelPath(Address self, Address peer, DirectReplication direct, IActorRef connection, ReplicaAckRoutes acks, ControlSealing sealing, RefusalLog refusals, ILoggingAdapter log)
{
    private ReplicationChannelLink? _toPeer;
    private ReplicationChannelLink? _fromPeer;
    private bool _connecting;
    private bool _disposed;
    private bool _fallbackLogged;
    private ushort _peerPort;

    /// <summary>A <see cref="Stopwatch"/> timestamp before which no new attempt to open the channel is made.</summary>
    private long _retryAt;

    /// <summary>The channel this node's updates go on; null while there is none (it is being opened when due).</summary>
    public ReplicationChannelLink? ForUpdates()
    {
        if (_toPeer is null)
        {
            OpenIfDue();
        }

        return _toPeer;
    }

    /// <summary>The channel this node's acks of the peer's updates go on; null while the peer has none open.</summary>
    public ReplicationChannelLink? ForAcks => _fromPeer;

    public ReplicationChannelState State => new(_toPeer is not null, _fromPeer is not null, (_toPeer?.FramesSent ?? 0) + (_fromPeer?.FramesSent ?? 0), (_toPeer?.FramesReceived ?? 0) + (_fromPeer?.FramesReceived ?? 0));

    /// <summary>The peer's announced port (0: none).</summary>
    public void PeerPort(ushort port) => _peerPort = port;

    public void Opened(ReplicationChannelLink link)
    {
        _connecting = false;
        if (_disposed)
        {
            link.Dispose();
            return;
        }

        var receiver = new ReplicationChannelReceiver(sealing, carriesUpdates: false, $"{peer} ({link.Remote})", refusals) { Connection = connection, Acks = acks };
        _toPeer = link;
        link.Start($"to {link.Remote}", receiver.Receive, (closed, reason) => connection.Tell(new ReplicationChannelBroken(closed, reason)));
        log.Info("replication channel to {0} ({1}) is open: this node's replica updates for it go on it", peer, link.Remote);
    }

    public void Unavailable(string reason)
    {
        _connecting = false;
        Fallback(reason);
    }

    public void Accepted(ReplicationChannelLink link)
    {
        if (_disposed)
        {
            link.Dispose();
            return;
        }

        _fromPeer?.Dispose();
        _fromPeer = link;
        log.Info("replication channel from {0} ({1}) is open: its replica updates and this node's acks go on it", peer, link.Remote);
    }

    /// <summary>A channel closed: true when it carried this node's updates, whose connections may have lost some of theirs on it.</summary>
    public bool Broken(ReplicationChannelLink link, string reason)
    {
        if (ReferenceEquals(link, _fromPeer))
        {
            _fromPeer = null;
            log.Info("replication channel from {0} closed ({1}): this node's acks go over the control connection", peer, reason);
            return false;
        }

        if (!ReferenceEquals(link, _toPeer))
        {
            return false;
        }

        _toPeer = null;
        Fallback(reason);
        return true;
    }

    public void Dispose()
    {
        _disposed = true;
        _toPeer?.Dispose();
        _fromPeer?.Dispose();
        _toPeer = _fromPeer = null;
    }

    private void OpenIfDue()
    {
        if (_connecting || _disposed || Stopwatch.GetTimestamp() < _retryAt)
        {
            return;
        }

        if (_peerPort == 0)
        {
            Fallback("it announces no replication channel");
            return;
        }

        _connecting = true;
        var port = _peerPort;
        var settings = direct.Settings;
        var security = direct.Security;
        var node = self;
        var target = connection;
        _ = Task.Run(async () =>
        {
            try
            {
                var local = await ResolveAsync(node.Host!).ConfigureAwait(false);
                var address = await ResolveAsync(peer.Host!).ConfigureAwait(false);
                var link = await ReplicationChannelLink.ConnectAsync(local, new IPEndPoint(address, port), peer.Host!, settings, security.Client(peer.Host!)).ConfigureAwait(false);
                target.Tell(new ReplicationChannelOpened(link), ActorRefs.NoSender);
            }
            catch (Exception e) when (e is IOException or SocketException or AuthenticationException or InvalidOperationException or ArgumentException)
            {
                target.Tell(new ReplicationChannelUnavailable(e.Message), ActorRefs.NoSender);
            }
        });
    }

    /// <summary>No channel for this node's updates: they go over the control connection until <c>retry-interval</c> has passed.</summary>
    private void Fallback(string reason)
    {
        _retryAt = Stopwatch.GetTimestamp() + (long)(direct.Settings.RetryInterval.TotalSeconds * Stopwatch.Frequency);
        if (!_fallbackLogged)
        {
            _fallbackLogged = true;
            log.Warning("replication channel to {0}: {1}; replica updates for it go over the control connection (tried again after {2})", peer, reason, direct.Settings.RetryInterval);
        }
    }

    /// <summary>The address of a node's host as its Akka address names it: an IP address, or a name resolved to its first address.</summary>
    public static async Task<IPAddress> ResolveAsync(string host)
    {
        if (IPAddress.TryParse(host, out var address))
        {
            return address;
        }

        var addresses = await Dns.GetHostAddressesAsync(host).ConfigureAwait(false);
        return addresses.Length > 0 ? addresses[0] : throw new IOException($"{host} resolves to no address");
    }
}

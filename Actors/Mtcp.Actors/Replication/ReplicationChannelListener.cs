using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Akka.Actor;
using Mtcp.Actors.Api;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Replication;

/// <summary>
/// The direct replication channel's port (docs/failover.md), beside the control endpoint on its host: the partners
/// whose buddy this node is open their channels here. A thread accepts (a small listen backlog); each connection must,
/// within <c>handshake-timeout</c>, complete mutual TLS 1.3 with a certificate of the cluster's CAs and send a first
/// frame whose envelope names a current member as sender, this node as receiver, opens under the cluster key for that
/// pair, and comes from that member's host. It is then the member's channel to this node, handed to the member's
/// control connection; at most <c>max-handshakes</c> connections are admitted at once, and every refusal is counted and
/// logged through the node's refusal log and changes nothing else.
/// </summary>
internal sealed class ReplicationChannelListener : IDisposable
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly Address _self;
    private readonly DirectReplication _direct;
    private readonly IMigrationAuthenticator _authenticator;
    private readonly ICanTell _controlManager;
    private readonly Func<Address, bool> _isMember;
    private readonly RefusalLog _refusals;
    private int _handshakes;
    private volatile bool _disposed;

    private ReplicationChannelListener(Socket socket, Address self, DirectReplication direct, IMigrationAuthenticator authenticator, ICanTell controlManager, Func<Address, bool> isMember, RefusalLog refusals)
    {
        _socket = socket;
        _self = self;
        _direct = direct;
        _authenticator = authenticator;
        _controlManager = controlManager;
        _isMember = isMember;
        _refusals = refusals;
        Port = (ushort)((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>The port bound: the configured one, or the one chosen when it is 0. Announced to the cluster.</summary>
    public ushort Port { get; }

    /// <summary>
    /// Binds the channel's port on the host of <paramref name="self"/> (this node's control address) and starts
    /// accepting. <paramref name="isMember"/> says whether an address is a current member of the cluster.
    /// </summary>
    /// <exception cref="SocketException">the port cannot be bound.</exception>
    /// <exception cref="IOException">the control host resolves to no address.</exception>
    public static ReplicationChannelListener Start(ActorSystem system, Address self, DirectReplication direct, IMigrationAuthenticator authenticator, ICanTell controlManager, Func<Address, bool> isMember)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(self);
        ArgumentNullException.ThrowIfNull(direct);
        var address = ReplicationChannelPath.ResolveAsync(self.Host!).GetAwaiter().GetResult();
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, direct.Settings.Port));
            socket.Listen(direct.Settings.ListenBacklog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var listener = new ReplicationChannelListener(socket, self, direct, authenticator, controlManager, isMember, RefusalLog.Get(system));
        new Thread(listener.AcceptLoop) { IsBackground = true, Name = $"mtcp-replication-listener {address}:{listener.Port}" }.Start();
        system.RegisterOnTermination(listener.Dispose);
        return listener;
    }

    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
    }

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket accepted;
            try
            {
                accepted = _socket.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                continue;
            }

            if (Interlocked.Increment(ref _handshakes) > _direct.Settings.MaxHandshakes)
            {
                Interlocked.Decrement(ref _handshakes);
                Refuse($"a connection from {Describe(accepted)} closed at once: {_direct.Settings.MaxHandshakes} handshakes (max-handshakes) are in progress");
                accepted.Dispose();
                continue;
            }

            _ = Task.Run(() => AdmitAsync(accepted));
        }
    }

    /// <summary>Handshake, first frame and peer check within the deadline; the admitted channel goes to the member's control connection.</summary>
    private async Task AdmitAsync(Socket socket)
    {
        var remote = Describe(socket);
        ReplicationChannelLink? link = null;
        var admitted = false;
        try
        {
            using var deadline = new CancellationTokenSource(_direct.Settings.HandshakeTimeout);
            link = await ReplicationChannelLink.AcceptAsync(socket, _direct.Settings, _direct.Security.Server(), deadline.Token).ConfigureAwait(false);
            ReadOnlyMemory<byte>? first;
            var reading = link;
            using (deadline.Token.Register(() => reading.Dispose()))
            {
                first = link.ReadEnvelope();
            }

            if (link.IsClosed || first is not { } envelope)
            {
                Refuse($"{remote} sent no first frame within handshake-timeout ({_direct.Settings.HandshakeTimeout})");
                return;
            }

            if (!TryIdentify(envelope.Span, link.Remote.Address, remote, out var peer))
            {
                return;
            }

            var receiver = new ReplicationChannelReceiver(new ControlSealing(_authenticator, _self, peer), carriesUpdates: true, $"{peer} ({remote})", _refusals);
            if (!receiver.TryOpen(envelope.Span, out var message))
            {
                return;
            }

            var connection = (await _controlManager.Ask<ControlConnectionFor>(new GetControlConnection(peer), AskTimeout).ConfigureAwait(false)).Connection;
            connection.Tell(new ReplicationChannelAccepted(link), ActorRefs.NoSender);
            connection.Tell(new ReceivedOnChannel(message), ActorRefs.NoSender);
            receiver.Connection = connection;
            admitted = true;
            link.Start($"from {remote}", receiver.Receive, (closed, reason) => connection.Tell(new ReplicationChannelBroken(closed, reason), ActorRefs.NoSender));
        }
        catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or InvalidDataException or ObjectDisposedException or SocketException or AskTimeoutException)
        {
            Refuse($"{remote}: {(e is OperationCanceledException ? $"no TLS handshake within handshake-timeout ({_direct.Settings.HandshakeTimeout})" : e.Message)}");
        }
        finally
        {
            if (!admitted)
            {
                link?.Dispose();
                socket.Dispose();
            }

            Interlocked.Decrement(ref _handshakes);
        }
    }

    /// <summary>
    /// The member the first frame's envelope names as its sender, if it is a current member other than this node, the
    /// envelope names this node as receiver, and the connection comes from that member's host; otherwise refused.
    /// </summary>
    private bool TryIdentify(ReadOnlySpan<byte> envelope, IPAddress from, string remote, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Address? peer)
    {
        peer = null;
        if (!ControlEnvelope.TryDecode(envelope, out var decoded, out var error))
        {
            Refuse($"{remote}: its first frame is no control envelope ({error})");
            return false;
        }

        Address named;
        try
        {
            named = Address.Parse(Encoding.UTF8.GetString(decoded.Sender));
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            Refuse($"{remote}: its first frame names no node address as sender");
            return false;
        }

        if (named.Equals(_self) || !_isMember(named))
        {
            Refuse($"{remote}: its first frame names {named}, not a member of the cluster");
            return false;
        }

        if (!HostAddresses(named.Host!).Contains(Normal(from)))
        {
            Refuse($"{remote}: its first frame names member {named}, whose host is not {from}");
            return false;
        }

        peer = named;
        return true;
    }

    private static IEnumerable<IPAddress> HostAddresses(string host)
    {
        if (IPAddress.TryParse(host, out var address))
        {
            return [Normal(address)];
        }

        try
        {
            return Dns.GetHostAddresses(host).Select(Normal);
        }
        catch (SocketException)
        {
            return [];
        }
    }

    private static IPAddress Normal(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static string Describe(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint?.ToString() ?? "an unknown peer";
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return "an unknown peer";
        }
    }

    private void Refuse(string detail)
    {
        _refusals.Refuse(RefusalClass.ReplicationChannelRefused, $"replication channel: {detail}");
    }
}
